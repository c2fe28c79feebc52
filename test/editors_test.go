package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Editors on Mac and Windows, and the extras every copy tool carries (issue 19).

// TestCopyToolsKeepWhatTheyCarry: a browser download carries user.xdg.origin.url; rsync -aX
// into the mount, out of it and back exits 0; cp -a prints nothing; the foreign attributes are
// kept through a rename, a rename over another file and a restart; getfattr still shows the
// mount's status.
func TestCopyToolsKeepWhatTheyCarry(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	cache := t.TempDir()
	m := startMount(t, emu, cache)
	src := t.TempDir()
	dl := filepath.Join(src, "download.mp4")
	if err := os.WriteFile(dl, []byte("a downloaded video"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(dl, "user.xdg.origin.url", []byte("https://example.com/download.mp4"), 0); err != nil {
		t.Skipf("the temporary folder keeps no user attributes: %v", err)
	}
	rsync := func(from, to string) {
		t.Helper()
		if out, err := exec.Command("rsync", "-aX", from, to).CombinedOutput(); err != nil {
			t.Fatalf("rsync -aX %s %s: %v\n%s", from, to, err, out)
		}
	}
	in := filepath.Join(m.Dir, "video") + "/"
	rsync(dl, in)
	p := filepath.Join(in, "download.mp4")
	waitStatus(t, p, "ready", 30*time.Second)
	if v, _ := xattr(p, "user.xdg.origin.url"); v != "https://example.com/download.mp4" {
		t.Errorf("the browser's attribute after rsync -aX in: %q", v)
	}
	out := t.TempDir()
	rsync(p, out+"/")
	if v, _ := xattr(filepath.Join(out, "download.mp4"), "user.ims.status"); v != "ready" {
		t.Errorf("rsync -aX out of the mount carries user.ims.status %q", v)
	}
	// Back in, over itself and as a new file: the mount's own attributes come along.
	rsync(filepath.Join(out, "download.mp4"), in)
	rsync(filepath.Join(out, "download.mp4"), filepath.Join(in, "copy.mp4"))
	if o, err := exec.Command("cp", "-a", filepath.Join(out, "download.mp4"), filepath.Join(in, "cp-a.mp4")).CombinedOutput(); err != nil || len(o) != 0 {
		t.Errorf("cp -a into the mount: %v, said %q", err, o)
	}
	listed, _ := exec.Command("getfattr", "-d", "-m", "user.ims", p).CombinedOutput()
	if !strings.Contains(string(listed), `user.ims.status="ready"`) {
		t.Errorf("getfattr -d -m user.ims does not show the status:\n%s", listed)
	}

	// A rename, and a rename over another file, keep the moved file's attributes.
	if err := unix.Setxattr(p, "user.DOSATTRIB", []byte("0x20"), 0); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(m.Dir, "video", "opening", "moved.mp4")
	if err := os.Rename(p, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, filepath.Join(in, "copy.mp4")); err != nil {
		t.Fatal(err)
	}
	run(t, "umount", m.Dir)
	m.waitExit(t, 60*time.Second)
	m2 := startMount(t, emu, cache)
	final := filepath.Join(m2.Dir, "video", "copy.mp4")
	for name, want := range map[string]string{"user.xdg.origin.url": "https://example.com/download.mp4", "user.DOSATTRIB": "0x20"} {
		if v, err := xattr(final, name); v != want {
			t.Errorf("%s after a rename over and a restart: %q %v", name, v, err)
		}
	}
	for _, log := range []string{m.output(), m2.output()} {
		if strings.Contains(log, "msg=refused") {
			t.Errorf("a copy tool's attributes were refused:\n%s", log)
		}
	}
}

// TestJunkNamesStayLocal: what macOS, Windows and office programs leave beside files is kept
// (readable, writable) but never uploaded: status local with the reason, no sidecar, not in
// imsfs status; renamed to a real name, it is uploaded. A folder of the configuration file
// names its own.
func TestJunkNamesStayLocal(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte("folders:\n  video/raw:\n    ignore: [\"*.bak\"]\n"), 0o644)
	m := startMount(t, emu, "", "--config", cfg)
	os.Mkdir(filepath.Join(m.Dir, "video", "raw"), 0o755)
	junk := []string{".DS_Store", "._clip.mp4", "Thumbs.db", "desktop.ini", ".~lock.report.odt#", "~$budget.docx", "raw/take.bak"}
	for _, name := range junk {
		p := filepath.Join(m.Dir, "video", name)
		if err := os.WriteFile(p, []byte("junk of "+name), 0o644); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	os.WriteFile(filepath.Join(m.Dir, "video", "raw", "._kept.mp4"), []byte("a real name in raw/"), 0o644)
	waitStatus(t, filepath.Join(m.Dir, "video", "raw", "._kept.mp4"), "ready", 30*time.Second)
	for _, name := range junk {
		p := filepath.Join(m.Dir, "video", name)
		waitStatus(t, p, "local", 10*time.Second)
		if e, _ := xattr(p, "user.ims.error"); !strings.Contains(e, "never uploaded") {
			t.Errorf("%s: user.ims.error %q", name, e)
		}
		if _, err := os.Stat(p + ".ims.json"); !os.IsNotExist(err) {
			t.Errorf("%s shows a sidecar: %v", name, err)
		}
		if data, err := os.ReadFile(p); err != nil || string(data) != "junk of "+name {
			t.Errorf("%s reads %q %v", name, data, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(m.Dir, "video"))
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ".ims.json"); ok && slices.Contains(junk, base) {
			t.Errorf("the folder lists the sidecar %s", e.Name())
		}
	}
	status, _ := exec.Command(imsfsBin, "status", m.Dir).CombinedOutput()
	if strings.Contains(string(status), "DS_Store") {
		t.Errorf("imsfs status lists a junk name:\n%s", status)
	}
	if n := len(emu.assets(t)); n != 1 {
		t.Errorf("%d assets, want only raw/._kept.mp4's", n)
	}
	// Renamed to a real name, it is a file like any other.
	if err := os.Rename(filepath.Join(m.Dir, "video", "._clip.mp4"), filepath.Join(m.Dir, "video", "clip.mp4")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, filepath.Join(m.Dir, "video", "clip.mp4"), "ready", 30*time.Second)
}
