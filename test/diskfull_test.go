package test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imsfs/imsfs/test/testutil"
)

// smallVolume mounts a tmpfs of size bytes for the test and removes it afterwards.
func smallVolume(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testutil.SkipOutsideCI(t, fmt.Sprintf("cannot mount a tmpfs here (%v %s); the disk-full test needs root", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestCacheDiskFull fills the cache volume with a writer while earlier files are still being
// uploaded: the writer gets ENOSPC, the earlier files stay whole and reach ready, and the file
// that could not be written is not uploaded (no truncated object); once space is freed the
// mount takes files again.
func TestCacheDiskFull(t *testing.T) {
	cache := smallVolume(t, "48m")
	// Slow parts keep the earlier uploads going while the disk fills.
	emu := startEmulator(t, "--faults", "oss.part=0:latency=300ms")
	m := startMount(t, emu, cache)
	var earlier []string
	for _, name := range []string{"a.mp4", "b.mp4"} {
		src := randomFile(t, name, 12<<20)
		run(t, "cp", src, filepath.Join(m.Dir, "video", name))
		earlier = append(earlier, src)
	}

	big := filepath.Join(m.Dir, "video", "too-big.mp4")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = f.Write(chunk)
	}
	cerr := f.Close()
	if !errors.Is(werr, syscall.ENOSPC) && !errors.Is(cerr, syscall.ENOSPC) {
		t.Fatalf("filling the cache: write %v, close %v; want ENOSPC", werr, cerr)
	}
	waitStatus(t, big, "failed", 30*time.Second)
	if e, _ := xattr(big, "user.ims.error"); !strings.Contains(e, "no space left") {
		t.Errorf("user.ims.error %q does not say the disk was full", e)
	}
	if !strings.Contains(m.output(), "errno=ENOSPC") {
		t.Error("the mount log does not say ENOSPC")
	}

	for _, src := range earlier {
		p := filepath.Join(m.Dir, "video", filepath.Base(src))
		waitStatus(t, p, "ready", 120*time.Second)
		sameFile(t, src, p)
		if a, _ := emu.asset(t, mediaIDOf(t, p)); a.MD5 != md5File(t, src) {
			t.Errorf("%s: asset MD5 %s, want %s", p, a.MD5, md5File(t, src))
		}
	}
	if n := len(emu.assets(t)); n != len(earlier) {
		t.Errorf("the emulator holds %d assets, want only the %d earlier files: the half-written one went up", n, len(earlier))
	}

	// Free the space: the mount takes files again.
	if err := os.Remove(big); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(m.Dir, "video", "after.mp4")
	if err := os.WriteFile(p, []byte("there is room again"), 0o644); err != nil {
		t.Fatalf("writing after freeing space: %v", err)
	}
	waitStatus(t, p, "ready", 30*time.Second)
	got, _ := os.ReadFile(p)
	if string(got) != "there is room again" {
		t.Fatalf("read back %q", got)
	}
}
