package test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/test/testutil"
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
		testutil.SkipOutsideCI(t, fmt.Sprintf("the temporary folder keeps no user attributes: %v", err))
		return
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
	// Folders keep theirs: a folder copied in with rsync -aX, a fixed folder a Finder tags, and
	// the mount's own read-only names on a folder copied back (they change nothing).
	shoot := filepath.Join(src, "shoot")
	os.Mkdir(shoot, 0o755)
	if err := unix.Setxattr(shoot, "user.xdg.comment", []byte("day one"), 0); err != nil {
		t.Fatal(err)
	}
	rsync(shoot, in)
	if err := unix.Setxattr(in, "user.com.apple.FinderInfo", []byte("tagged"), 0); err != nil {
		t.Errorf("an attribute on a fixed folder: %v", err)
	}
	if err := unix.Setxattr(in, "user.ims.status", []byte("ready"), 0); err != nil {
		t.Errorf("the mount's own name set on a folder: %v", err)
	}
	if err := unix.Removexattr(in, "user.ims.status"); err != nil {
		t.Errorf("the mount's own name removed from a folder: %v", err)
	}
	run(t, "umount", m.Dir)
	m.waitExit(t, 60*time.Second)
	m2 := startMount(t, emu, cache)
	for dir, want := range map[string][2]string{"video/shoot": {"user.xdg.comment", "day one"}, "video": {"user.com.apple.FinderInfo", "tagged"}} {
		if v, err := xattr(filepath.Join(m2.Dir, dir), want[0]); v != want[1] {
			t.Errorf("%s on the folder %s after a restart: %q %v", want[0], dir, v, err)
		}
	}
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

// TestASidecarWrittenAsJSONSetsTheFields: a Windows editor (Notepad over SMB) writes the
// sidecar: title, description, tags and cate_id are set as the attributes would be, other keys
// are ignored, a refused value (too long, not text) shows in the sidecar and in the log, bytes
// that are not JSON are dropped; a sidecar written before its file sets the file's fields when
// it comes.
func TestASidecarWrittenAsJSONSetsTheFields(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	m := startMount(t, emu, "", "--upload-delay", "3s")
	p := filepath.Join(m.Dir, "video", "clip.mp4")
	os.WriteFile(p, []byte("clip bytes"), 0o644)
	side := p + ".ims.json"
	if err := os.WriteFile(side, []byte(`{"title":"Opening night","description":"the wide shot","tags":["premiere","wide"],"cate_id":12,"status":"ready","media_id":"copied"}`), 0o644); err != nil {
		t.Fatalf("write the sidecar: %v", err)
	}
	for name, want := range map[string]string{"user.ims.title": "Opening night", "user.ims.description": "the wide shot", "user.ims.tags": "premiere,wide", "user.ims.cate_id": "12"} {
		if v, _ := xattr(p, name); v != want {
			t.Errorf("%s after the sidecar was written: %q, want %q", name, v, want)
		}
	}
	waitStatus(t, p, "ready", 30*time.Second)
	if a, _ := emu.asset(t, mediaIDOf(t, p)); a.Title != "Opening night" || a.Description != "the wide shot" || a.Tags != "premiere,wide" || a.CateId != 12 {
		t.Errorf("the asset: %+v", a)
	}

	// A refused value says so in the sidecar and the log; the others still hold.
	if err := os.WriteFile(side, []byte(`{"title":"`+strings.Repeat("t", 129)+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(side)
	if !strings.Contains(string(data), `"update": "refused: user.ims.title: title: too long`) || !strings.Contains(m.output(), "op=\"write .ims.json\"") {
		t.Errorf("a refused title is not said in the sidecar, or the log:\n%s", data)
	}
	if v, _ := xattr(p, "user.ims.title"); v != "Opening night" {
		t.Errorf("the refused title replaced the title: %q", v)
	}
	// What is not text is refused, not taken as its JSON.
	if err := os.WriteFile(side, []byte(`{"description":{"en":"the wide shot"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(side)
	if !strings.Contains(string(data), `"update": "refused: user.ims.description: description: not valid: an object`) {
		t.Errorf("a description given as an object is not refused:\n%s", data)
	}
	if v, _ := xattr(p, "user.ims.description"); v != "the wide shot" {
		t.Errorf("the refused description replaced the description: %q", v)
	}
	// Not JSON: dropped, and the write succeeds.
	if err := os.WriteFile(side, []byte("not json"), 0o644); err != nil {
		t.Errorf("a sidecar written with what is not JSON: %v", err)
	}

	// rsync writes a sidecar under a temporary name and renames it over: the fields are set.
	elsewhere := filepath.Join(t.TempDir(), "clip.mp4.ims.json")
	os.WriteFile(elsewhere, []byte(`{"title":"By rsync"}`), 0o644)
	if out, err := exec.Command("rsync", elsewhere, filepath.Dir(p)+"/").CombinedOutput(); err != nil {
		t.Errorf("rsync of a sidecar: %v\n%s", err, out)
	}
	if v, _ := xattr(p, "user.ims.title"); v != "By rsync" {
		t.Errorf("the title after rsync brought a sidecar: %q", v)
	}
	// A media file renamed onto a sidecar's name is refused and kept.
	other := filepath.Join(m.Dir, "video", "other.mp4")
	os.WriteFile(other, []byte("other bytes, not JSON"), 0o644)
	if err := os.Rename(other, side); !isErrno(err, syscall.EACCES) {
		t.Errorf("a media file renamed onto a sidecar's name: %v, want EACCES", err)
	}
	if data, err := os.ReadFile(other); string(data) != "other bytes, not JSON" {
		t.Errorf("the media file after its rename was refused: %q %v", data, err)
	}

	// Before its file.
	early := filepath.Join(m.Dir, "video", "later.mp4")
	if err := os.WriteFile(early+".ims.json", []byte(`{"title":"Came first"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(early, []byte("later bytes"), 0o644)
	if v, _ := xattr(early, "user.ims.title"); v != "Came first" {
		t.Errorf("the title of a sidecar written before its file: %q", v)
	}
}

// TestNamesTheKernelWasNotToldOfShowAtOnce: the kernel keeps a name it looked up and did not
// find for a second (an editor probes its swap and backup names again and again), but a name
// that comes without the kernel making it shows at once all the same: a file's sidecar, the
// mount's sidecar in place of one renamed over it, an asset in library/.
func TestNamesTheKernelWasNotToldOfShowAtOnce(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	m := startMount(t, emu, "", "--upload-delay", "1h", "--metrics-addr", "127.0.0.1:0", "--library-refresh", "1s")
	url := metricsURL.FindStringSubmatch(m.output())
	if url == nil {
		t.Fatalf("the mount does not say where its metrics are:\n%s", m.output())
	}
	enoent := func() float64 { return scrape(t, url[1])[`imsfs_fuse_operations_total{errno="ENOENT",op="lookup"}`] }

	// An editor's probes: the first reaches imsfs, the next ones are the kernel's.
	swap := filepath.Join(m.Dir, "video", ".clip.mp4.swp")
	before := enoent()
	for range 5 {
		if _, err := os.Stat(swap); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stat %s: %v", swap, err)
		}
	}
	if n := enoent() - before; n >= 5 {
		t.Errorf("5 probes of a missing name made %.0f lookups: the kernel keeps no missing name", n)
	}

	// A sidecar looked up before its file is made.
	clip := filepath.Join(m.Dir, "video", "clip.mp4")
	if _, err := os.Stat(clip + ".ims.json"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the sidecar of a file not made yet: %v", err)
	}
	if err := os.WriteFile(clip, []byte("clip bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(clip + ".ims.json"); err != nil {
		t.Errorf("the sidecar of a file just made: %v", err)
	}

	// A sidecar written under another name and renamed over the mount's (rsync, a safe save).
	tmp := filepath.Join(m.Dir, "video", ".clip.mp4.ims.json.tmp")
	if err := os.WriteFile(tmp, []byte(`{"title":"Renamed over"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, clip+".ims.json"); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(clip + ".ims.json"); err != nil || !strings.Contains(string(data), `"status"`) || !strings.Contains(string(data), "Renamed over") {
		t.Errorf("the sidecar right after one was renamed over it: %v\n%s", err, data)
	}

	// An asset made by another program, looked up until the mount has listed it (its metrics
	// say: a listing of the folder would make the kernel forget what it kept).
	direct := filepath.Join(m.Dir, "library", "video", "direct.mp4")
	src := filepath.Join(t.TempDir(), "direct.mp4")
	os.WriteFile(src, []byte("made elsewhere"), 0o644)
	directUpload(t, emu, src)
	eventually(t, 60*time.Second, "the mount lists the asset made elsewhere", func() bool {
		_, _ = os.Stat(direct) // a lookup just before the mount lists it
		return scrape(t, url[1])["imsfs_library_assets"] >= 1
	})
	if _, err := os.Stat(direct); err != nil {
		t.Errorf("an asset the mount lists in library/ is not found: %v", err)
	}
}
