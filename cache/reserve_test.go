package cache

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imsfs/imsfs/test/testutil"
)

// TestTheStoreCommitsOnAFullVolume: a writer fills the cache volume; the store's commits still
// go through, in the room its reserve frees, and the reserve is taken again once there is room.
func TestTheStoreCommitsOnAFullVolume(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		testutil.SkipOutsideCI(t, fmt.Sprintf("cannot mount a tmpfs here (%v %s): the test needs root", err, out))
		return
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	s := mustOpen(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "reserve")); err != nil {
		t.Fatalf("no reserve after Open: %v", err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	// Many commits, enough to grow the file past what it had.
	for i := range 2000 {
		if _, err := s.Create(fmt.Sprintf("video/f%04d-%s.mp4", i, string(chunk[:200])), nil); err != nil {
			t.Fatalf("commit %d on the full volume: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "reserve")); !os.IsNotExist(err) {
		t.Errorf("the reserve is still there after it was needed: %v", err)
	}
	os.Remove(filler)
	s.res.take()
	if _, err := os.Stat(filepath.Join(dir, "reserve")); err != nil {
		t.Errorf("the reserve is not taken again once there is room: %v", err)
	}
}
