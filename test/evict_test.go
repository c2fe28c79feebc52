package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imsfs/imsfs/test/testutil"
	"golang.org/x/sys/unix"
)

func spoolBytes(t *testing.T, cacheDir string) (total int64, files int) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(cacheDir, "spool"))
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			total += info.Size()
			files++
		}
	}
	return total, files
}

// TestEvictedFilesReadBackFromTheirObjects bounds the cache below what is written: ready files
// are evicted, and reading them (whole, in part, after a remount), appending to them and moving
// them to another Type all still work, from their objects.
func TestEvictedFilesReadBackFromTheirObjects(t *testing.T) {
	emu := startEmulator(t)
	cacheDir := t.TempDir()
	m := startMount(t, emu, cacheDir, "--cache-max-size", "1MiB")
	names := []string{"one.mp4", "two.mp4", "three.mp4"}
	srcs := map[string]string{}
	for _, n := range names {
		srcs[n] = randomFile(t, n, 700<<10)
		run(t, "cp", srcs[n], filepath.Join(m.Dir, "video", n))
		waitStatus(t, filepath.Join(m.Dir, "video", n), "ready", 30*time.Second)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		total, _ := spoolBytes(t, cacheDir)
		if total <= 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spool still holds %d bytes with --cache-max-size 1MiB", total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := emu.stats(t).Requests["oss.get"]
	for _, n := range names {
		sameFile(t, srcs[n], filepath.Join(m.Dir, "video", n))
		if s, _ := xattr(filepath.Join(m.Dir, "video", n), "user.ims.status"); s != "ready" {
			t.Errorf("%s: status %q after eviction, want ready", n, s)
		}
	}
	if emu.stats(t).Requests["oss.get"] == before {
		t.Fatal("no read went to an object: nothing was evicted")
	}

	// A read in the middle, as a player seeks.
	part := filepath.Join(t.TempDir(), "part")
	run(t, "dd", "if="+filepath.Join(m.Dir, "video", "one.mp4"), "of="+part, "bs=4096", "skip=100", "count=3", "status=none")
	whole, _ := os.ReadFile(srcs["one.mp4"])
	got, _ := os.ReadFile(part)
	if string(got) != string(whole[100*4096:103*4096]) {
		t.Fatal("a read in the middle of an evicted file differs")
	}

	// Appending fetches the bytes back and uploads the whole new content.
	f, err := os.OpenFile(filepath.Join(m.Dir, "video", "one.mp4"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("appended"))
	f.Close()
	want := filepath.Join(t.TempDir(), "one-appended")
	os.WriteFile(want, append(whole, "appended"...), 0o644)
	p := filepath.Join(m.Dir, "video", "one.mp4")
	waitStatus(t, p, "ready", 30*time.Second)
	sameFile(t, want, p)
	if a, _ := emu.asset(t, mediaIDOf(t, p)); a.MD5 != md5File(t, want) {
		t.Fatalf("the appended file's asset has MD5 %s, want %s", a.MD5, md5File(t, want))
	}

	// Moving an evicted file to another Type uploads it again, so its bytes come back first.
	moved := filepath.Join(m.Dir, "image", "two.png") // a name an image may have
	if err := os.Rename(filepath.Join(m.Dir, "video", "two.mp4"), moved); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, moved, "ready", 30*time.Second)
	if a, _ := emu.asset(t, mediaIDOf(t, moved)); a.Type != "image" || a.MD5 != md5File(t, srcs["two.mp4"]) {
		t.Fatalf("the moved file's asset is %+v", a)
	}

	// After a remount an evicted file still reads back.
	run(t, "umount", m.Dir)
	if err := m.waitExit(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	m2 := startMount(t, emu, cacheDir, "--cache-max-size", "1MiB")
	before = emu.stats(t).Requests["oss.get"]
	sameFile(t, want, filepath.Join(m2.Dir, "video", "one.mp4"))
	sameFile(t, srcs["two.mp4"], filepath.Join(m2.Dir, "image", "two.png"))
	sameFile(t, srcs["three.mp4"], filepath.Join(m2.Dir, "video", "three.mp4"))
	if emu.stats(t).Requests["oss.get"] == before {
		t.Fatal("after the remount no read went to an object: the evictions were forgotten")
	}
}

// TestTheKernelReadsAheadFarOnTheMount: as root the mount raises the kernel's read-ahead of its
// device from FUSE's 128 KiB to 4 MiB, so that a sequential read goes in large requests.
func TestTheKernelReadsAheadFarOnTheMount(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOutsideCI(t, "only root may set a device's read-ahead")
		return
	}
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	var st unix.Stat_t
	if err := unix.Stat(m.Dir, &st); err != nil {
		t.Fatal(err)
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if got, err := os.ReadFile(p); err != nil || strings.TrimSpace(string(got)) != "4096" {
		t.Errorf("%s: %q (%v), want 4096", p, got, err)
	}
}
