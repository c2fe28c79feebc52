package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadinessDoesNotHoldAWorker: with one transfer and assets IMS takes 20 s to prepare,
// files written one after another are all uploaded while the first is still being prepared;
// none waits for another's readiness.
func TestReadinessDoesNotHoldAWorker(t *testing.T) {
	emu := startEmulator(t, "--ready-delay", "20s")
	m := startMount(t, emu, "", "--transfers", "1", "--small-transfers", "1")
	start := time.Now()
	var paths []string
	for i := range 5 {
		p := filepath.Join(m.Dir, "video", fmt.Sprintf("clip%d.mp4", i))
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for _, p := range paths {
		waitStatus(t, p, "uploaded", 60*time.Second)
	}
	took := time.Since(start)
	if s, _ := xattr(paths[0], "user.ims.status"); s != "uploaded" {
		t.Fatalf("the first file is %s: the others waited for its readiness", s)
	}
	figure(t, "5 files with --transfers 1 and --ready-delay 20s: all uploaded %v after the first write", took.Round(10*time.Millisecond))
}

// TestAnUploadedFileIsTreatedAsAReadyOne: its bytes are in the cloud, so rm keeps its asset
// (--on-delete keep), an overwrite makes a new asset and keeps the old, and a rename in its
// folder keeps its MediaId, exactly as for a ready file.
func TestAnUploadedFileIsTreatedAsAReadyOne(t *testing.T) {
	emu := startEmulator(t, "--ready-delay", "1h")
	m := startMount(t, emu, "")
	dir := filepath.Join(m.Dir, "video")
	for _, name := range []string{"gone.mp4", "over.mp4", "moved.mp4"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("first bytes of "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]string{}
	for _, name := range []string{"gone.mp4", "over.mp4", "moved.mp4"} {
		waitStatus(t, filepath.Join(dir, name), "uploaded", 30*time.Second)
		ids[name], _ = xattr(filepath.Join(dir, name), "user.ims.media_id")
	}

	if err := os.Remove(filepath.Join(dir, "gone.mp4")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "over.mp4"), []byte("second bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "moved.mp4"), filepath.Join(dir, "renamed.mp4")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, filepath.Join(dir, "over.mp4"), "uploaded", 30*time.Second)
	if id, _ := xattr(filepath.Join(dir, "renamed.mp4"), "user.ims.media_id"); id != ids["moved.mp4"] {
		t.Errorf("a rename in its folder gave the file MediaId %q, it had %q", id, ids["moved.mp4"])
	}
	if id, _ := xattr(filepath.Join(dir, "over.mp4"), "user.ims.media_id"); id == ids["over.mp4"] || id == "" {
		t.Errorf("an overwrite kept MediaId %q", id)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		titles := map[string]string{}
		for _, a := range emu.assets(t) {
			titles[a.MediaId] = a.Title
		}
		_, gone := titles[ids["gone.mp4"]]
		_, over := titles[ids["over.mp4"]]
		if !gone || !over {
			t.Fatalf("an asset of an uploaded file was deleted under the keep policies (deleted file: %v, overwritten: %v)", !gone, !over)
		}
		if titles[ids["moved.mp4"]] == "renamed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renamed file's asset is titled %q, want renamed", titles[ids["moved.mp4"]])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(m.output(), "asset deleted") {
		t.Errorf("the mount deleted an asset:\n%s", m.output())
	}
	if n := creates(t, emu); n != 4 {
		t.Errorf("%d assets made, want 4 (three files and one overwrite)", n)
	}
}

// TestAFileOfMorePartsThanOSSTakesIsUploaded: with OSS's part limit lowered to 10 (the
// emulator's --max-parts, told to the mount too), a file of more than 10 × the default part
// size gets bigger parts and is uploaded whole: the case of a file over 78 GiB, made small.
func TestAFileOfMorePartsThanOSSTakesIsUploaded(t *testing.T) {
	emu := startEmulator(t, "--max-parts", "10")
	m := startMount(t, emu, "", "--max-parts", "10")
	src := randomFile(t, "big.mp4", 90<<20) // 11.25 parts of 8 MiB
	run(t, "cp", src, filepath.Join(m.Dir, "video"))
	dst := filepath.Join(m.Dir, "video", "big.mp4")
	waitStatus(t, dst, "ready", 120*time.Second)
	id, _ := xattr(dst, "user.ims.media_id")
	for _, a := range emu.assets(t) {
		if a.MediaId == id {
			if a.MD5 != md5File(t, src) || a.Size != 90<<20 {
				t.Fatalf("the asset holds %d bytes with MD5 %s", a.Size, a.MD5)
			}
			parts := emu.stats(t).Requests["oss.part"]
			figure(t, "90 MiB with OSS limited to 10 parts: %d parts sent", parts)
			if parts > 10 {
				t.Errorf("%d parts sent, the limit is 10", parts)
			}
			return
		}
	}
	t.Fatalf("no asset %s", id)
}

// TestAMountThatCannotMountLeavesItsBacklogAlone: a bad mountpoint is refused before anything
// starts, with what is wrong; uploads waiting in the cache are not started by the failed mount.
func TestAMountThatCannotMountLeavesItsBacklogAlone(t *testing.T) {
	emu := startEmulator(t)
	cache := t.TempDir()
	m := startMount(t, emu, cache, "--upload-delay", "1h")
	if err := os.WriteFile(filepath.Join(m.Dir, "video", "waiting.mp4"), []byte("queued, not sent"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, filepath.Join(m.Dir, "video", "waiting.mp4"), "queued", 10*time.Second)
	m.cmd.Process.Signal(syscall.SIGKILL) // a drain would start it
	<-m.done
	exec.Command("umount", "-l", m.Dir).Run()

	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, nil, 0o644)
	for _, tc := range []struct{ mountpoint, says string }{
		{filepath.Join(t.TempDir(), "missing"), "does not exist; make it with: mkdir -p"},
		{notADir, "is not a directory"},
	} {
		p := start(t, "bad-mount", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret"},
			"mount", "--endpoint", emu.URL, "--cache-dir", cache, tc.mountpoint)
		if err := p.waitExit(t, 30*time.Second); err == nil {
			t.Fatalf("mount on %s succeeded", tc.mountpoint)
		}
		if out := p.output(); !strings.Contains(out, tc.mountpoint) || !strings.Contains(out, tc.says) {
			t.Errorf("mount on %s says:\n%s\nwant the mountpoint and %q", tc.mountpoint, out, tc.says)
		}
	}
	if n := emu.stats(t).Requests["ims.create"]; n != 0 {
		t.Errorf("a mount that failed made %d CreateUploadMedia calls", n)
	}
}
