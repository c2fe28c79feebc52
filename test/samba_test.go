package test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imsfs/imsfs/test/testutil"
)

// smbServer is smbd serving a mount with the share `imsfs samba-conf` prints, on a port of its
// own, to guests (as the mount's user): what a Mac or Windows editor reaches.
type smbServer struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

// stop ends smbd and what it started.
func (s *smbServer) stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
}

func startSamba(t *testing.T, mountpoint string) *smbServer {
	t.Helper()
	for _, tool := range []string{"smbd", "smbclient"} {
		if _, err := exec.LookPath(tool); err != nil {
			testutil.SkipOutsideCI(t, tool+" is not installed (apt-get install samba smbclient samba-vfs-modules)")
		}
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	share, err := exec.Command(imsfsBin, "samba-conf", mountpoint).Output()
	if err != nil {
		t.Fatalf("imsfs samba-conf: %v", err)
	}
	var conf bytes.Buffer
	fmt.Fprintf(&conf, "[global]\n   server role = standalone server\n   map to guest = Bad User\n   smb ports = %d\n   interfaces = lo\n   bind interfaces only = yes\n", port)
	conf.WriteString("   disable netbios = yes\n   load printers = no\n   printing = bsd\n   printcap name = /dev/null\n   disable spoolss = yes\n   server min protocol = SMB2\n")
	for _, d := range []string{"pid directory", "lock directory", "state directory", "cache directory", "private dir"} {
		p := filepath.Join(dir, strings.ReplaceAll(d, " ", "-"))
		os.Mkdir(p, 0o755)
		fmt.Fprintf(&conf, "   %s = %s\n", d, p)
	}
	fmt.Fprintf(&conf, "   log file = %s\n", filepath.Join(dir, "smbd.log"))
	conf.Write(share)
	conf.WriteString("   guest ok = yes\n   force user = root\n") // the test's client is a guest
	confPath := filepath.Join(dir, "smb.conf")
	os.WriteFile(confPath, conf.Bytes(), 0o644)
	cmd := exec.Command("smbd", "--foreground", "--no-process-group", "--configfile="+confPath, "--debuglevel=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A group of its own: smbd ends by signalling its whole process group, which must not be
	// the test's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &smbServer{port: port, dir: dir, cmd: cmd}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "smbd.log"))
			t.Logf("--- smbd ---\n%s\n%s", out.String(), log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("smbd did not come up:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client runs smbclient commands in the share's folder dir, from local folder here.
func (s *smbServer) client(t *testing.T, here, dir, commands string) string {
	t.Helper()
	cmd := exec.Command("smbclient", "//127.0.0.1/imsfs", "-p", fmt.Sprint(s.port), "-N", "-c", "cd "+dir+"; "+commands)
	cmd.Dir = here
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "NT_STATUS_") {
		t.Fatalf("smbclient %q: %v\n%s", commands, err, out)
	}
	return string(out)
}

// afpInfo is a Finder info stream (AFP_AfpInfo) as a Mac writes it: 60 bytes, type and creator.
func afpInfo(typ, creator string) []byte {
	b := make([]byte, 60)
	binary.BigEndian.PutUint32(b[0:], 0x41465000) // "AFP\0"
	binary.BigEndian.PutUint32(b[4:], 0x00000100)
	binary.BigEndian.PutUint32(b[12:], 0x80000000)
	copy(b[16:], typ+creator)
	return b
}

// TestAMacAndAWindowsCopyOverSamba: smbd serves the mount with the share imsfs samba-conf prints;
// smbclient does what Mac and Windows copies do: put a file with its Finder info stream and a
// resource fork (fruit keeps it in an AppleDouble ._ file), set DOS attributes, drop .DS_Store,
// Thumbs.db and desktop.ini, write a sidecar as Notepad would, rename, get, delete. Only the media
// files become assets, the sidecar's title reaches the asset, nothing is refused in the log, and
// the streams and DOS attributes are still there after a restart.
func TestAMacAndAWindowsCopyOverSamba(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	cache := t.TempDir()
	m := startMount(t, emu, cache)
	smb := startSamba(t, m.Dir)
	here := t.TempDir()
	clip := randomBytes(t, 300<<10)
	os.WriteFile(filepath.Join(here, "clip.mp4"), clip, 0o644)
	os.WriteFile(filepath.Join(here, "poster.png"), randomBytes(t, 20<<10), 0o644)
	os.WriteFile(filepath.Join(here, "afpinfo"), afpInfo("MooV", "TVOD"), 0o644)
	os.WriteFile(filepath.Join(here, "rsrc"), randomBytes(t, 3000), 0o644)
	os.WriteFile(filepath.Join(here, "junk"), []byte("desktop droppings"), 0o644)
	os.WriteFile(filepath.Join(here, "side.json"), []byte(`{"title":"From Windows","tags":["smb","notepad"]}`), 0o644)

	smb.client(t, here, "video", "put clip.mp4 clip.mp4; put afpinfo clip.mp4:AFP_AfpInfo; put rsrc clip.mp4:AFP_Resource; "+
		"setmode clip.mp4 +a; setmode clip.mp4 +r; setmode clip.mp4 -r; put junk .DS_Store; put junk Thumbs.db; put junk desktop.ini; "+
		"put clip.mp4 gone.mp4; put side.json clip.mp4.ims.json")
	smb.client(t, here, "image", "put poster.png poster.png; put afpinfo poster.png:AFP_AfpInfo")
	smb.client(t, here, "video", "rename clip.mp4 final.mp4; del gone.mp4; get final.mp4 back.mp4")
	if back, _ := os.ReadFile(filepath.Join(here, "back.mp4")); !bytes.Equal(back, clip) {
		t.Errorf("get over SMB gave %d bytes, not the %d put", len(back), len(clip))
	}
	info := smb.client(t, here, "video", "allinfo final.mp4")
	if !strings.Contains(info, "[:AFP_AfpInfo:$DATA], 60 bytes") || !strings.Contains(info, "[:AFP_Resource:$DATA], 3000 bytes") {
		t.Errorf("the streams of final.mp4 over SMB:\n%s", info)
	}

	final := filepath.Join(m.Dir, "video", "final.mp4")
	waitStatus(t, final, "ready", 60*time.Second)
	waitStatus(t, filepath.Join(m.Dir, "image", "poster.png"), "ready", 60*time.Second)
	for _, junk := range []string{".DS_Store", "Thumbs.db", "desktop.ini", "._final.mp4"} {
		p := filepath.Join(m.Dir, "video", junk)
		if s, err := xattr(p, "user.ims.status"); s != "local" {
			t.Errorf("%s: status %q (%v), want local", junk, s, err)
		}
	}
	if v, _ := xattr(final, "user.ims.title"); v != "From Windows" {
		t.Errorf("the title the sidecar written over SMB set: %q", v)
	}
	deadline := time.Now().Add(30 * time.Second)
	for a, _ := emu.asset(t, mediaIDOf(t, final)); a.Title != "From Windows" || a.Tags != "smb,notepad"; a, _ = emu.asset(t, mediaIDOf(t, final)) {
		if time.Now().After(deadline) {
			t.Fatalf("the asset did not take the sidecar's fields: %+v", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, a := range emu.assets(t) {
		switch a.FileName {
		// final.mp4 was clip.mp4 (its asset made before the rename, or after it: uploads wait
		// for the writers to pause); gone.mp4's asset, if it was made, is kept (--on-delete keep).
		case "clip.mp4", "final.mp4", "gone.mp4", "poster.png":
		default:
			t.Errorf("an asset of %s (%s)", a.FileName, a.Title)
		}
	}
	for _, bad := range []string{"msg=refused", "level=WARN", "level=ERROR"} {
		if strings.Contains(m.output(), bad) {
			t.Errorf("the mount's log says %s:\n%s", bad, m.output())
		}
	}

	// A restart keeps what Samba stored in the attributes.
	dos, _ := xattr(final, "user.DOSATTRIB")
	smb.stop()
	run(t, "umount", m.Dir)
	m.waitExit(t, 60*time.Second)
	m2 := startMount(t, emu, cache)
	final = filepath.Join(m2.Dir, "video", "final.mp4")
	if v, _ := xattr(final, "user.DOSATTRIB"); v == "" || v != dos {
		t.Errorf("user.DOSATTRIB after a restart: %q, was %q", v, dos)
	}
	// streams_xattr ends the value with a NUL of its own.
	if v, _ := xattr(final, "user.DosStream.AFP_AfpInfo:$DATA"); !bytes.HasPrefix([]byte(v), afpInfo("MooV", "TVOD")) {
		t.Errorf("the Finder info stream after a restart: %q", v)
	}
}
