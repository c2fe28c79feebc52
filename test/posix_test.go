package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// assetByID returns what the emulator holds under id, and whether it holds it.
func (e *emulatorProc) asset(t *testing.T, id string) (asset, bool) {
	t.Helper()
	for _, a := range e.assets(t) {
		if a.MediaId == id {
			return a, true
		}
	}
	return asset{}, false
}

func mediaIDOf(t *testing.T, p string) string {
	t.Helper()
	id, err := xattr(p, "user.ims.media_id")
	if err != nil || id == "" {
		t.Fatalf("%s has no media_id: %v", p, err)
	}
	return id
}

// TestPOSIXSemantics: what DESIGN.md's POSIX table promises, call by call.
func TestPOSIXSemantics(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	mnt := func(p string) string { return filepath.Join(m.Dir, p) }

	t.Run("two writers, a reader, fsync and fdatasync", func(t *testing.T) {
		p := mnt("video/shared.mp4")
		a, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		r, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		a.WriteAt([]byte("AAAA"), 0)
		b.WriteAt([]byte("BBBB"), 4)
		if err := a.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		if err := syscall.Fdatasync(int(b.Fd())); err != nil {
			t.Fatalf("fdatasync: %v", err)
		}
		got := make([]byte, 8)
		if n, _ := r.ReadAt(got, 0); n != 8 || string(got) != "AAAABBBB" {
			t.Fatalf("a reader beside two writers reads %q", got[:n])
		}
		if st, _ := os.Stat(p); st.Size() != 8 {
			t.Fatalf("stat while writing: %d bytes, want 8", st.Size())
		}
		a.Close()
		time.Sleep(300 * time.Millisecond)
		if s, _ := xattr(p, "user.ims.status"); s != "writing" {
			t.Fatalf("with a writer still open the status is %q, want writing", s)
		}
		b.Close()
		r.Close()
		waitStatus(t, p, "ready", 30*time.Second)
		if a, _ := emu.asset(t, mediaIDOf(t, p)); a.Size != 8 {
			t.Fatalf("asset %+v, want the 8 bytes of both writers", a)
		}
	})

	t.Run("O_TRUNC of a ready file is a new upload", func(t *testing.T) {
		p := mnt("video/trunc.mp4")
		os.WriteFile(p, []byte("long first version"), 0o644)
		waitStatus(t, p, "ready", 30*time.Second)
		first := mediaIDOf(t, p)
		os.WriteFile(p, []byte("short"), 0o644)
		waitStatus(t, p, "ready", 30*time.Second)
		if id := mediaIDOf(t, p); id == first {
			t.Fatal("the truncated file kept its old asset")
		} else if a, _ := emu.asset(t, id); a.Size != 5 {
			t.Fatalf("asset %+v, want 5 bytes", a)
		}
		if _, kept := emu.asset(t, first); !kept {
			t.Fatal("--on-overwrite keep (the default) deleted the old asset")
		}
	})

	t.Run("chown to the mounting user only", func(t *testing.T) {
		p := mnt("video/owned.mp4")
		os.WriteFile(p, []byte("x"), 0o644)
		if err := os.Chown(p, os.Getuid(), os.Getgid()); err != nil {
			t.Fatalf("chown to the mounting user: %v", err)
		}
		if err := os.Chown(p, 12345, -1); !isErrno(err, syscall.EPERM) {
			t.Fatalf("chown to another user: %v, want EPERM", err)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
			t.Fatalf("mode after chmod %v", st.Mode())
		}
	})

	t.Run("mknod and foreign xattrs are refused, and logged", func(t *testing.T) {
		if err := syscall.Mkfifo(mnt("video/pipe.mp4"), 0o644); !isErrno(err, syscall.EPERM) {
			t.Fatalf("mkfifo: %v, want EPERM", err)
		}
		if !strings.Contains(m.output(), `op=mknod path=video/pipe.mp4 errno=EPERM`) {
			t.Fatalf("no log line for the refused mknod:\n%s", m.output())
		}
		os.WriteFile(mnt("video/attrs.mp4"), []byte("x"), 0o644)
		if err := syscall.Setxattr(mnt("video/attrs.mp4"), "trusted.comment", []byte("hi"), 0); !isErrno(err, syscall.ENOTSUP) {
			t.Fatalf("setxattr trusted.comment: %v, want ENOTSUP", err)
		}
		if !strings.Contains(m.output(), `op=setxattr path=video/attrs.mp4 errno=ENOTSUP`) {
			t.Fatalf("no log line for the refused setxattr:\n%s", m.output())
		}
	})

	t.Run("statfs reports the cache volume", func(t *testing.T) {
		var a, b syscall.Statfs_t
		if err := syscall.Statfs(m.Dir, &a); err != nil {
			t.Fatal(err)
		}
		syscall.Statfs(m.CacheDir, &b)
		if a.Blocks != b.Blocks || a.Bsize != b.Bsize {
			t.Fatalf("statfs of the mount %d×%d, of the cache volume %d×%d", a.Blocks, a.Bsize, b.Blocks, b.Bsize)
		}
	})

	t.Run("a ready file renamed keeps its asset, retitled", func(t *testing.T) {
		p := mnt("video/draft.mp4")
		os.WriteFile(p, []byte("cut"), 0o644)
		waitStatus(t, p, "ready", 30*time.Second)
		id := mediaIDOf(t, p)
		q := mnt("video/opening/Final Title.mp4")
		if err := os.Rename(p, q); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			a, _ := emu.asset(t, id)
			if a.Title == "Final Title" && a.BusinessType == "opening" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the rename the asset is %+v, want Title \"Final Title\", opening", a)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := mediaIDOf(t, q); got != id {
			t.Fatalf("the renamed file has media_id %s, want %s", got, id)
		}
		if s, _ := xattr(q, "user.ims.status"); s != "ready" {
			t.Fatalf("status after the rename %q", s)
		}
	})

	t.Run("rename over a ready file replaces it atomically", func(t *testing.T) {
		dst := mnt("video/target.mp4")
		os.WriteFile(dst, []byte("old target"), 0o644)
		waitStatus(t, dst, "ready", 30*time.Second)
		old := mediaIDOf(t, dst)
		src := mnt("video/.target.mp4.tmp")
		os.WriteFile(src, []byte("new target"), 0o644)
		if err := os.Rename(src, dst); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dst); string(got) != "new target" {
			t.Fatalf("after the rename the target reads %q", got)
		}
		waitStatus(t, dst, "ready", 30*time.Second)
		if id := mediaIDOf(t, dst); id == old {
			t.Fatal("the replaced target kept its asset")
		}
		if _, kept := emu.asset(t, old); !kept {
			t.Fatal("--on-overwrite keep (the default) deleted the replaced asset")
		}
	})

	t.Run("a file renamed while open for writing uploads under its new name", func(t *testing.T) {
		p, q := mnt("video/open.mp4"), mnt("video/moved-open.mp4")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("before "))
		if err := os.Rename(p, q); err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("after"))
		f.Close()
		waitStatus(t, q, "ready", 30*time.Second)
		if a, _ := emu.asset(t, mediaIDOf(t, q)); a.Title != "moved-open" || a.Size != int64(len("before after")) {
			t.Fatalf("asset %+v, want \"moved-open\" with 12 bytes", a)
		}
	})

	t.Run("a folder renamed inside a mapped folder takes its files along", func(t *testing.T) {
		os.MkdirAll(mnt("video/ep1/raw"), 0o755)
		os.WriteFile(mnt("video/ep1/raw/take.mp4"), []byte("take"), 0o644)
		waitStatus(t, mnt("video/ep1/raw/take.mp4"), "ready", 30*time.Second)
		id := mediaIDOf(t, mnt("video/ep1/raw/take.mp4"))
		if err := os.Rename(mnt("video/ep1"), mnt("video/episode-1")); err != nil {
			t.Fatal(err)
		}
		q := mnt("video/episode-1/raw/take.mp4")
		if got := mediaIDOf(t, q); got != id {
			t.Fatalf("after the folder rename media_id %s, want %s", got, id)
		}
		if got, _ := os.ReadFile(q); string(got) != "take" {
			t.Fatalf("read back %q", got)
		}
	})

	t.Run("a temporary name is kept but skipped, until it is renamed", func(t *testing.T) {
		p := mnt("video/clip.mp4.part")
		os.WriteFile(p, []byte("download"), 0o644)
		waitStatus(t, p, "skipped", 30*time.Second)
		if e, _ := xattr(p, "user.ims.error"); !strings.Contains(e, "temporary") {
			t.Fatalf("user.ims.error %q does not say it is a temporary name", e)
		}
		q := mnt("video/downloaded.mp4")
		if err := os.Rename(p, q); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, q, "ready", 30*time.Second)
	})

	t.Run("a sparse file reads zeros in its hole", func(t *testing.T) {
		p := mnt("other/sparse.bin")
		f, _ := os.Create(p)
		f.WriteAt([]byte("end"), 5<<20)
		f.Close()
		waitStatus(t, p, "ready", 30*time.Second)
		got, _ := os.ReadFile(p)
		want := append(make([]byte, 5<<20), "end"...)
		if !bytes.Equal(got, want) {
			t.Fatal("a sparse file does not read back as zeros and its tail")
		}
		if a, _ := emu.asset(t, mediaIDOf(t, p)); a.Size != int64(len(want)) {
			t.Fatalf("asset %+v", a)
		}
	})
}

// TestUnlinkCancelsAnUpload: a file deleted while its multipart upload runs leaves nothing in
// the cloud: the multipart upload is aborted and the unfinished asset deleted.
func TestUnlinkCancelsAnUpload(t *testing.T) {
	emu := startEmulator(t, "--faults", "oss.part=0:latency=400ms")
	m := startMount(t, emu, "")
	p := filepath.Join(m.Dir, "video", "big.mp4")
	run(t, "cp", randomFile(t, "big.mp4", 40<<20), p)
	deadline := time.Now().Add(30 * time.Second)
	for emu.stats(t).Requests["oss.part"] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no part was sent")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	for {
		st := emu.stats(t)
		if len(emu.assets(t)) == 0 && st.Requests["oss.abort"] >= 1 && st.Requests["ims.delete"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the unlink the emulator holds %+v (requests %v)", emu.assets(t), st.Requests)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeletePolicies: --on-delete delete removes the asset of a deleted file; keep (the
// default) does not; --on-overwrite delete removes the old asset once the new one is ready.
func TestDeletePolicies(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "", "--on-delete", "delete", "--on-overwrite", "delete")
	p := filepath.Join(m.Dir, "video", "a.mp4")
	os.WriteFile(p, []byte("v1"), 0o644)
	waitStatus(t, p, "ready", 30*time.Second)
	v1 := mediaIDOf(t, p)
	os.WriteFile(p, []byte("v2"), 0o644)
	waitStatus(t, p, "ready", 30*time.Second)
	v2 := mediaIDOf(t, p)
	waitGone := func(id string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, held := emu.asset(t, id); !held {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("asset %s is still held", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitGone(v1)
	if _, held := emu.asset(t, v2); !held {
		t.Fatal("the new asset went too")
	}
	os.Remove(p)
	waitGone(v2)
}

// TestReaddirOfManyEntries lists a folder of 10,000 files.
func TestReaddirOfManyEntries(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	dir := filepath.Join(m.Dir, "other", "many")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	start := time.Now()
	for i := range n {
		// Temporary names: stored like any file, never uploaded, so that the test measures the
		// file system, not the emulator.
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%05d.tmp", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	figure(t, "created %d files in %v", n, time.Since(start).Round(time.Millisecond))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Each file and its sidecar, in name order.
	if len(entries) != 2*n || entries[0].Name() != "f00000.tmp" || entries[1].Name() != "f00000.tmp.ims.json" ||
		entries[2*n-2].Name() != fmt.Sprintf("f%05d.tmp", n-1) {
		t.Fatalf("readdir gave %d entries, want %d", len(entries), 2*n)
	}
}

// TestFallocate: plain preallocation works (rsync --preallocate, some recorders); punching a
// hole is refused with EOPNOTSUPP.
func TestFallocate(t *testing.T) {
	needTool(t, "fallocate")
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	p := filepath.Join(m.Dir, "other", "pre.bin")
	os.WriteFile(p, []byte("head"), 0o644)
	run(t, "fallocate", "-l", "1048576", p)
	if st, _ := os.Stat(p); st.Size() != 1<<20 {
		t.Fatalf("after fallocate -l 1M the size is %d", st.Size())
	}
	out, err := exec.Command("fallocate", "--punch-hole", "-o", "0", "-l", "4096", p).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unsupported") && !strings.Contains(string(out), "not supported") {
		t.Fatalf("punching a hole: %v %s, want EOPNOTSUPP", err, out)
	}
	waitStatus(t, p, "ready", 30*time.Second)
	got, _ := os.ReadFile(p)
	if len(got) != 1<<20 || string(got[:4]) != "head" {
		t.Fatalf("read back %d bytes starting %q", len(got), got[:4])
	}
}

// TestSidecars: NAME.ims.json beside each file says what the attributes say, exists exactly
// while its file does, goes with it, takes writes and keeps none, and unlinking it changes nothing (so
// rm -r works); --sidecars=false hides them.
func TestSidecars(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	p := filepath.Join(m.Dir, "video", "side.mp4")
	os.WriteFile(p, []byte("x"), 0o644)
	waitStatus(t, p, "ready", 30*time.Second)
	var side map[string]string
	data, err := os.ReadFile(p + ".ims.json")
	if err != nil || json.Unmarshal(data, &side) != nil {
		t.Fatalf("sidecar: %v %s", err, data)
	}
	if id, _ := xattr(p, "user.ims.media_id"); side["media_id"] != id || side["status"] != "ready" || side["path"] != "video/side.mp4" {
		t.Fatalf("the sidecar says %v; the attributes say media_id %s, ready", side, id)
	}
	// Writing a sidecar (a copy of the mount does) succeeds and changes nothing.
	if err := os.WriteFile(p+".ims.json", []byte("{}"), 0o644); err != nil {
		t.Fatalf("writing a sidecar: %v", err)
	}
	if again, _ := os.ReadFile(p + ".ims.json"); !bytes.Equal(again, data) {
		t.Fatalf("after a write the sidecar holds %s", again)
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "video", "mine.ims.json"), []byte("{}"), 0o644); err != nil {
		t.Fatalf("creating a name ending .ims.json: %v", err)
	}
	list, _ := os.ReadDir(filepath.Join(m.Dir, "video"))
	for _, e := range list {
		if e.Name() == "mine.ims.json" {
			t.Fatalf("a sidecar written for no file is listed")
		}
	}
	if err := os.Remove(p + ".ims.json"); err != nil {
		t.Fatalf("unlinking a sidecar: %v, want success", err)
	}
	if _, err := os.Stat(p + ".ims.json"); err != nil {
		t.Fatalf("after unlinking it the sidecar is gone: %v", err)
	}
	q := filepath.Join(m.Dir, "video", "moved.mp4")
	if err := os.Rename(p, q); err != nil {
		t.Fatal(err)
	}
	// The kernel may hold the old entry for a tick, until the mount's notice reaches it.
	deadline := time.Now().Add(time.Second)
	for _, err := os.Stat(p + ".ims.json"); !os.IsNotExist(err); _, err = os.Stat(p + ".ims.json") {
		if time.Now().After(deadline) {
			t.Fatalf("the old sidecar is still there a second after the rename: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := os.Stat(q + ".ims.json"); err != nil {
		t.Fatalf("no sidecar beside the renamed file: %v", err)
	}
	os.MkdirAll(filepath.Join(m.Dir, "video", "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(m.Dir, "video", "tree", "sub", "a.mp4"), []byte("a"), 0o644)
	run(t, "rm", "-r", filepath.Join(m.Dir, "video", "tree"))
	if _, err := os.Stat(filepath.Join(m.Dir, "video", "tree")); !os.IsNotExist(err) {
		t.Fatalf("rm -r of a folder with files: %v", err)
	}

	m2 := startMount(t, emu, "", "--sidecars=false")
	os.WriteFile(filepath.Join(m2.Dir, "video", "plain.mp4"), []byte("x"), 0o644)
	entries, _ := os.ReadDir(filepath.Join(m2.Dir, "video"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".ims.json") {
			t.Fatalf("--sidecars=false lists %s", e.Name())
		}
	}
}

// TestAWriterOpenedAsADirectOneClosesIsSeen: a file written straight to its spool (passthrough),
// opened again for writing while that first writer's close is still on its way, then truncated
// and rewritten by a third open: the kernel passes the later handles through too (go-fuse gives
// them the backing file still registered), so imsfs must take the size from the spool for any
// file with a writer open, or the file reads back empty. Many rounds, as it is a race.
func TestAWriterOpenedAsADirectOneClosesIsSeen(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	for i := range 200 {
		c := filepath.Join(m.Dir, "video", fmt.Sprintf("c%d.mov", i))
		if err := os.WriteFile(c, randomBytes(t, 46964), 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := os.OpenFile(c, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := randomBytes(t, 824)
		if err := os.WriteFile(c, want, 0o644); err != nil {
			t.Fatal(err)
		}
		h.Close()
		got, err := os.ReadFile(c)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: %s reads %d bytes (%v), want the %d just written", i, c, len(got), err, len(want))
		}
	}
}
