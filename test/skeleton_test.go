package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCopiedFilesBecomeAssets is the walking skeleton from outside: cp into two mapped folders,
// wait for ready, and compare what the emulator holds with what was written.
func TestCopiedFilesBecomeAssets(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")

	type want struct{ src, dst, typ, biz, title string }
	files := []want{
		{randomFile(t, "clip.mp4", 3<<20), "video", "video", "general", "clip"},
		{randomFile(t, "poster.png", 40<<20), "image/cover", "image", "cover", "poster"},
	}
	for _, f := range files {
		run(t, "cp", f.src, filepath.Join(m.Dir, f.dst)+"/")
	}

	byID := map[string]asset{}
	for _, f := range files {
		p := filepath.Join(m.Dir, f.dst, filepath.Base(f.src))
		waitStatus(t, p, "ready", 60*time.Second)
		id, err := xattr(p, "user.ims.media_id")
		if err != nil || id == "" {
			t.Fatalf("%s: no user.ims.media_id: %v", p, err)
		}
		for _, name := range []string{"media_url", "file_url"} {
			if v, err := xattr(p, "user.ims."+name); err != nil || !strings.HasPrefix(v, "http") {
				t.Errorf("%s: user.ims.%s = %q, %v", p, name, v, err)
			}
		}
		if v, _ := xattr(p, "user.ims.type"); v != f.typ {
			t.Errorf("%s: user.ims.type = %q, want %q", p, v, f.typ)
		}
		if v, _ := xattr(p, "user.ims.business_type"); v != f.biz {
			t.Errorf("%s: user.ims.business_type = %q, want %q", p, v, f.biz)
		}
		if _, err := xattr(p, "user.ims.error"); !isErrno(err, unix.ENODATA) {
			t.Errorf("%s: user.ims.error should be absent on a ready file, got err %v", p, err)
		}
		if byID[id].MediaId != "" {
			t.Fatalf("two files share MediaId %s", id)
		}
		for _, a := range emu.assets(t) {
			if a.MediaId == id {
				byID[id] = a
			}
		}
		a := byID[id]
		if a.MediaId == "" {
			t.Fatalf("%s: the emulator has no asset %s", p, id)
		}
		if a.MD5 != md5File(t, f.src) || a.Type != f.typ || a.BusinessType != f.biz || a.Title != f.title || a.Status != "Normal" {
			t.Errorf("%s: asset %+v; want MD5 %s, %s/%s, title %q, Normal", p, a, md5File(t, f.src), f.typ, f.biz, f.title)
		}
		sameFile(t, f.src, p) // read back through the mount
	}
	if n := len(emu.assets(t)); n != len(files) {
		t.Errorf("the emulator holds %d assets, want %d", n, len(files))
	}

	names := listXattrs(t, filepath.Join(m.Dir, "video", "clip.mp4"))
	wantNames := []string{"user.ims.business_type", "user.ims.file_url", "user.ims.input_url", "user.ims.media_id", "user.ims.media_url",
		"user.ims.progress", "user.ims.status", "user.ims.title", "user.ims.type"}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("listxattr = %v, want %v", names, wantNames)
	}

	// The root takes no files, and says so with EACCES.
	if err := os.WriteFile(filepath.Join(m.Dir, "at-root.txt"), []byte("x"), 0o644); !isErrno(err, syscall.EACCES) {
		t.Errorf("a file at the root: got %v, want EACCES", err)
	}
	if !strings.Contains(m.output(), "at-root.txt") {
		t.Errorf("the refusal of at-root.txt was not logged with its path:\n%s", m.output())
	}

	// SIGTERM unmounts, and the process ends with status 0.
	m.cmd.Process.Signal(syscall.SIGTERM)
	if err := m.waitExit(t, 60*time.Second); err != nil {
		t.Fatalf("imsfs mount after SIGTERM: %v\n%s", err, m.output())
	}
	if isMounted(m.Dir) {
		t.Fatal("still mounted after SIGTERM")
	}
}

// TestRemountShowsFilesAndTheirStatus: what was saved and uploaded is still there, with its
// status, after the mount ends and a new one starts on the same cache directory.
func TestRemountShowsFilesAndTheirStatus(t *testing.T) {
	emu := startEmulator(t)
	cacheDir := t.TempDir()
	m := startMount(t, emu, cacheDir)
	src := randomFile(t, "opening.mov", 1<<20)
	if err := os.Mkdir(filepath.Join(m.Dir, "video", "opening", "season 1"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(m.Dir, "video", "opening", "season 1", "opening.mov")
	run(t, "cp", src, dst)
	waitStatus(t, dst, "ready", 60*time.Second)
	id, _ := xattr(dst, "user.ims.media_id")
	run(t, "umount", m.Dir) // an external umount ends the mount process too
	if err := m.waitExit(t, 60*time.Second); err != nil {
		t.Fatalf("imsfs mount after umount: %v", err)
	}

	m2 := startMount(t, emu, cacheDir)
	dst2 := filepath.Join(m2.Dir, "video", "opening", "season 1", "opening.mov")
	if s, _ := xattr(dst2, "user.ims.status"); s != "ready" {
		t.Fatalf("after remount: status %q, want ready", s)
	}
	if id2, _ := xattr(dst2, "user.ims.media_id"); id2 != id {
		t.Fatalf("after remount: media_id %q, want %q", id2, id)
	}
	if b, _ := xattr(dst2, "user.ims.business_type"); b != "opening" {
		t.Fatalf("a folder made in video/opening/ should map to opening, got %q", b)
	}
	sameFile(t, src, dst2)
	if n := len(emu.assets(t)); n != 1 {
		t.Fatalf("the emulator holds %d assets after a remount, want 1 (no re-upload)", n)
	}
}

// startEmbedded mounts a new directory with `imsfs mount --emulator` and no credentials, as
// `make run` does, and waits until it is mounted.
func startEmbedded(t *testing.T) (*proc, string) {
	t.Helper()
	requireFUSE(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o755)
	p := start(t, "mount-emulator", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=", "ALIBABA_CLOUD_ACCESS_KEY_SECRET="},
		"mount", "--emulator", "--cache-dir", t.TempDir(), "--upload-delay", "0", dir)
	t.Cleanup(func() {
		if isMounted(dir) {
			exec.Command("umount", "-l", dir).Run()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !isMounted(dir) {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("mount --emulator did not come up:\n%s", p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p, dir
}

// TestTheEmbeddedEmulatorNeedsNoCredentials is `make run`'s mode: imsfs mount --emulator.
func TestTheEmbeddedEmulatorNeedsNoCredentials(t *testing.T) {
	p, dir := startEmbedded(t)
	src := randomFile(t, "clip.mp4", 100<<10)
	run(t, "cp", src, filepath.Join(dir, "video")+"/")
	waitStatus(t, filepath.Join(dir, "video", "clip.mp4"), "ready", 60*time.Second)
	if !strings.Contains(p.output(), "embedded emulator at http://127.0.0.1:") {
		t.Errorf("mount --emulator did not print the emulator's address:\n%s", p.output())
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.waitExit(t, 60*time.Second); err != nil {
		t.Fatalf("after SIGINT: %v", err)
	}
}

func listXattrs(t *testing.T, path string) []string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Listxattr(path, buf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	return names
}

// TestUnmountUploadsWhatWasWaiting: a file still inside its settle delay when the mount is told
// to stop is uploaded before the process exits, since nothing can change it any more.
func TestUnmountUploadsWhatWasWaiting(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "", "--upload-delay", "1h")
	src := randomFile(t, "late.mp4", 2<<20)
	dst := filepath.Join(m.Dir, "video", "late.mp4")
	run(t, "cp", src, dst)
	waitStatus(t, dst, "queued", 10*time.Second)
	m.cmd.Process.Signal(syscall.SIGTERM)
	if err := m.waitExit(t, 60*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	// The bytes are all there when the process has exited; IMS then prepares the asset (the
	// emulator takes its --ready-delay), which no mount needs to wait for.
	assets := emu.assets(t)
	if len(assets) != 1 || assets[0].MD5 != md5File(t, src) || assets[0].Size != 2<<20 {
		t.Fatalf("after unmount the emulator holds %+v, want the one file, complete, with its MD5", assets)
	}
	deadline := time.Now().Add(30 * time.Second)
	for assets[0].Status != "Normal" {
		if time.Now().After(deadline) {
			t.Fatalf("the asset uploaded at unmount is %s, not Normal", assets[0].Status)
		}
		time.Sleep(50 * time.Millisecond)
		assets = emu.assets(t)
	}
}

// TestTheDrainCountsFromTheUnmount: --drain-timeout is how long the uploads under way may take
// once the mount is unmounted, however long it was up before.
func TestTheDrainCountsFromTheUnmount(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	m := startMount(t, emu, "", "--upload-delay", "1h", "--drain-timeout", "3s")
	src := randomFile(t, "late.mp4", 2<<20)
	dst := filepath.Join(m.Dir, "video", "late.mp4")
	run(t, "cp", src, dst)
	waitStatus(t, dst, "queued", 10*time.Second)
	time.Sleep(4 * time.Second) // up for longer than the drain-timeout
	m.cmd.Process.Signal(syscall.SIGTERM)
	if err := m.waitExit(t, 60*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	if strings.Contains(m.output(), "uploads left for the next mount") {
		t.Errorf("the upload was cut short at the unmount:\n%s", m.output())
	}
	if assets := emu.assets(t); len(assets) != 1 || assets[0].MD5 != md5File(t, src) {
		t.Errorf("after unmount the emulator holds %+v, want the one file, complete", assets)
	}
}
