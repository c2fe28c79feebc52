package test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTheMountTellsSystemdWhenItIsReady: a mount started as a Type=notify service sends
// READY=1 on NOTIFY_SOCKET once it serves, and STOPPING=1 when it is told to stop.
func TestTheMountTellsSystemdWhenItIsReady(t *testing.T) {
	emu := startEmulator(t)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := startMountEnv(t, emu, "", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret", "NOTIFY_SOCKET=" + sock})
	read := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil || !strings.Contains(string(buf[:n]), want) {
			t.Fatalf("systemd was told %q (%v), want %s", buf[:n], err, want)
		}
	}
	read("READY=1")
	if _, err := os.Stat(filepath.Join(m.Dir, "video")); err != nil {
		t.Fatalf("ready, but the mount does not serve: %v", err)
	}
	m.proc.cmd.Process.Signal(syscall.SIGTERM)
	read("STOPPING=1")
}

// TestTheSystemdUnitRunsTheMount: imsfs systemd-unit prints a Type=notify service whose
// ExecStart is this binary's mount with the flags given; systemd-analyze accepts it.
func TestTheSystemdUnitRunsTheMount(t *testing.T) {
	out, err := exec.Command(imsfsBin, "systemd-unit", "--region", "cn-beijing", "--transfers", "8", "/srv/ims media").Output()
	if err != nil {
		t.Fatal(err)
	}
	unit := string(out)
	for _, want := range []string{"Type=notify", "ExecStart=" + imsfsBin + ` mount --region cn-beijing --transfers 8 "/srv/ims media"`,
		`ExecStartPre=/bin/mkdir -p "/srv/ims media"`, "EnvironmentFile=-/etc/imsfs/imsfs.env", "WantedBy=multi-user.target"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q:\n%s", want, unit)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified by systemd")
		return
	}
	path := filepath.Join(t.TempDir(), "imsfs-media.service")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, msg)
	}
}
