package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// sambaShare is the share section `imsfs samba-conf` prints: what macOS and Windows clients
// need of a Samba share of the mount. test/samba_test.go serves a mount with it, through smbd,
// to smbclient.
const sambaShare = `# imsfs: a Samba share of the mount at %[2]s, for Mac and Windows editors.
# Add it to /etc/samba/smb.conf, then: smbcontrol all reload-config (or systemctl reload smbd).
# Who may reach it: the users of 'valid users' (smbpasswd -a NAME), over the networks smbd
# listens on. smbd opens the files as those users: mount with --allow-other unless they are the
# user who mounted it (see the security note in imsfs's docs/samba.md).
[%[1]s]
   path = %[2]s
   read only = no
   browseable = yes
   # valid users = alice bob
   # Windows keeps DOS attributes (read-only, archive, hidden) in user.DOSATTRIB, and alternate
   # data streams in user.DosStream.* attributes: the mount keeps both with each file.
   store dos attributes = yes
   ea support = yes
   # macOS: Finder info as a stream, resource forks in AppleDouble ._ files (which the mount
   # keeps, shows no sidecar for and never uploads), names with characters Windows refuses
   # mapped back (catia).
   vfs objects = catia fruit streams_xattr
   fruit:metadata = stream
   fruit:resource = file
   fruit:veto_appledouble = no
   fruit:delete_empty_adfiles = yes
   fruit:wipe_intentionally_left_blank_rfork = yes
   fruit:encoding = native
   # A FUSE file system takes no kernel oplocks or share modes; Samba keeps its own.
   kernel oplocks = no
   kernel share modes = no
   posix locking = no
`

func newSambaConfCommand() *cli.Command {
	return &cli.Command{
		Name:      "samba-conf",
		Usage:     "print a Samba share of MOUNTPOINT for Mac and Windows editors (vfs_fruit, streams_xattr)",
		ArgsUsage: "MOUNTPOINT",
		Description: "A share section for /etc/samba/smb.conf: DOS attributes and streams kept with the files,\n" +
			"macOS Finder info and AppleDouble files, the settings a FUSE mount needs. `make test` serves a\n" +
			"mount with it through smbd to smbclient.",
		Flags: []cli.Flag{&cli.StringFlag{Name: "name", Value: "imsfs", Usage: "the share's `NAME`"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("imsfs samba-conf takes one MOUNTPOINT, got %d arguments (see: imsfs samba-conf --help)", c.NArg())
			}
			mountpoint, err := filepath.Abs(c.Args().First())
			if err != nil {
				return err
			}
			name := c.String("name")
			if name == "" || strings.ContainsAny(name, "[]\n") {
				return usagef("imsfs samba-conf --name %q: want a share name without [, ] or a line break", name)
			}
			_, err = fmt.Fprintf(c.App.Writer, sambaShare, name, mountpoint)
			return err
		},
	}
}
