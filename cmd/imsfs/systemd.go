package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// notify tells systemd (Type=notify) how the mount stands: READY=1 once it serves, STOPPING=1
// when it unmounts. Outside systemd (no NOTIFY_SOCKET) it does nothing.
func notify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if strings.HasPrefix(sock, "@") {
		sock = "\x00" + sock[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

func newSystemdUnitCommand() *cli.Command {
	return &cli.Command{
		Name:      "systemd-unit",
		Usage:     "print a systemd service that mounts MOUNTPOINT with these mount flags",
		ArgsUsage: "[MOUNT FLAGS] MOUNTPOINT",
		Description: "The unit runs `imsfs mount` as Type=notify: systemd counts it started once the mount\n" +
			"serves, and stops it with SIGTERM, which unmounts and lets the uploads under way finish.\n" +
			"Credentials come from /etc/imsfs/imsfs.env (ALIBABA_CLOUD_ACCESS_KEY_ID=…, _SECRET=…), a\n" +
			"file only root reads. Install it with:\n" +
			"  imsfs systemd-unit --region cn-beijing /srv/ims > /etc/systemd/system/imsfs-ims.service\n" +
			"  systemctl daemon-reload && systemctl enable --now imsfs-ims",
		SkipFlagParsing: true, // the flags are the mount's, passed on as they are
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 || strings.HasPrefix(args[len(args)-1], "-") {
				return usagef("imsfs systemd-unit takes the mount's flags and one MOUNTPOINT, last (see: imsfs systemd-unit --help)")
			}
			mountpoint, err := filepath.Abs(args[len(args)-1])
			if err != nil {
				return err
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			exec := []string{bin, "mount"}
			for _, a := range args[:len(args)-1] {
				exec = append(exec, quoteArg(a))
			}
			exec = append(exec, quoteArg(mountpoint))
			fmt.Fprintf(c.App.Writer, `[Unit]
Description=imsfs: the IMS media library at %[1]s
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
EnvironmentFile=-/etc/imsfs/imsfs.env
ExecStartPre=/bin/mkdir -p %[3]s
ExecStart=%[2]s
# SIGTERM unmounts; the uploads under way get --drain-timeout to finish.
KillMode=mixed
TimeoutStopSec=5min
Restart=on-failure
RestartSec=5s

[Install]
WantedBy=multi-user.target
`, mountpoint, strings.Join(exec, " "), quoteArg(mountpoint))
			return nil
		},
	}
}

// quoteArg quotes an argument for ExecStart when it holds what systemd would split or expand.
func quoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\"'\\$%;") {
		return a
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$", "%", "%%")
	return `"` + r.Replace(a) + `"`
}
