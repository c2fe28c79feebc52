package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileSystemBasics drives the mount with plain system calls and tools: what a file does
// after it is written, changed, renamed and removed, and what the mount refuses.
func TestFileSystemBasics(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	mnt := func(p string) string { return filepath.Join(m.Dir, p) }
	mediaID := func(p string) string { id, _ := xattr(mnt(p), "user.ims.media_id"); return id }
	assetOf := func(id string) asset {
		for _, a := range emu.assets(t) {
			if a.MediaId == id {
				return a
			}
		}
		t.Fatalf("the emulator has no asset %s", id)
		return asset{}
	}

	t.Run("an overwrite is a new upload and a new asset", func(t *testing.T) {
		p := "video/overwrite.mp4"
		if err := os.WriteFile(mnt(p), []byte("first version"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, mnt(p), "ready", 30*time.Second)
		first := mediaID(p)
		src := randomFile(t, "second.mp4", 200<<10)
		run(t, "cp", src, mnt(p))
		waitStatus(t, mnt(p), "ready", 30*time.Second)
		second := mediaID(p)
		if second == "" || second == first {
			t.Fatalf("media_id after overwrite %q, first %q: want a new one", second, first)
		}
		if a := assetOf(second); a.MD5 != md5File(t, src) {
			t.Fatalf("the new asset holds MD5 %s, want %s", a.MD5, md5File(t, src))
		}
		if a := assetOf(first); a.Size != int64(len("first version")) {
			t.Fatalf("the first asset changed: %+v", a)
		}
	})

	t.Run("truncate uploads the truncated bytes", func(t *testing.T) {
		p := "audio/cut.mp3"
		data := bytes.Repeat([]byte("0123456789"), 10000)
		if err := os.WriteFile(mnt(p), data, 0o644); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, mnt(p), "ready", 30*time.Second)
		before := mediaID(p)
		run(t, "truncate", "-s", "1234", mnt(p))
		waitStatus(t, mnt(p), "ready", 30*time.Second)
		if id := mediaID(p); id == before || assetOf(id).Size != 1234 {
			t.Fatalf("after truncate: asset %+v (was %s), want a new one of 1234 bytes", assetOf(id), before)
		}
		st, err := os.Stat(mnt(p))
		if err != nil || st.Size() != 1234 {
			t.Fatalf("stat after truncate: %v, %v", st, err)
		}
		got, _ := os.ReadFile(mnt(p))
		if !bytes.Equal(got, data[:1234]) {
			t.Fatal("read-back after truncate differs")
		}
	})

	t.Run("random writes land where they were written", func(t *testing.T) {
		p := "other/patched.bin"
		data := bytes.Repeat([]byte{'a'}, 3<<20)
		if err := os.WriteFile(mnt(p), data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(mnt(p), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int{0, 1 << 20, 3<<20 - 1, 3 << 20} {
			if _, err := f.WriteAt([]byte("Z"), int64(off)); err != nil {
				t.Fatal(err)
			}
			if off < len(data) {
				data[off] = 'Z'
			} else {
				data = append(data, 'Z')
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, mnt(p), "ready", 30*time.Second)
		want := filepath.Join(t.TempDir(), "want")
		os.WriteFile(want, data, 0o644)
		if a := assetOf(mediaID(p)); a.MD5 != md5File(t, want) {
			t.Fatalf("asset MD5 %s, want %s", a.MD5, md5File(t, want))
		}
		sameFile(t, want, mnt(p))
	})

	t.Run("a name without an extension is kept but skipped", func(t *testing.T) {
		p := "video/README"
		if err := os.WriteFile(mnt(p), []byte("notes"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, mnt(p), "skipped", 30*time.Second)
		if e, _ := xattr(mnt(p), "user.ims.error"); e == "" {
			t.Fatal("a skipped file does not say why")
		}
		if got, _ := os.ReadFile(mnt(p)); string(got) != "notes" {
			t.Fatalf("read back %q", got)
		}
	})

	t.Run("an empty file is kept, skipped, and uploaded once it has bytes", func(t *testing.T) {
		p := "video/placeholder.mp4"
		if err := exec.Command("touch", mnt(p)).Run(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, mnt(p), "skipped", 30*time.Second)
		if e, _ := xattr(mnt(p), "user.ims.error"); !strings.Contains(e, "is empty") {
			t.Fatalf("an empty file says %q", e)
		}
		if id, _ := xattr(mnt(p), "user.ims.media_id"); id != "" {
			t.Fatalf("an empty file has an asset: %s", id)
		}
		if err := os.WriteFile(mnt(p), []byte("now a clip"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, mnt(p), "ready", 30*time.Second)
		if a := assetOf(mediaID(p)); a.Size != int64(len("now a clip")) {
			t.Fatalf("the asset holds %d bytes", a.Size)
		}
	})

	t.Run("a rename across folders takes the new folder's mapping", func(t *testing.T) {
		if err := os.WriteFile(mnt("video/moved.png"), []byte("png"), 0o644); err != nil {
			t.Fatal(err)
		}
		// The upload may or may not have started; a queued file goes under its new name.
		if err := os.Rename(mnt("video/moved.png"), mnt("image/cover/moved.png")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(mnt("video/moved.png")); !os.IsNotExist(err) {
			t.Fatalf("the old name is still there: %v", err)
		}
		if b, _ := xattr(mnt("image/cover/moved.png"), "user.ims.business_type"); b != "cover" {
			t.Fatalf("business_type after the move %q, want cover", b)
		}
		waitStatus(t, mnt("image/cover/moved.png"), "ready", 30*time.Second)
		if a := assetOf(mediaID("image/cover/moved.png")); a.Type != "image" || a.BusinessType != "cover" || a.Title != "moved" {
			t.Fatalf("the asset of the moved file is %s/%s %q, want image/cover \"moved\"", a.Type, a.BusinessType, a.Title)
		}
	})

	t.Run("unlink removes the file", func(t *testing.T) {
		p := "video/gone.mp4"
		os.WriteFile(mnt(p), []byte("bye"), 0o644)
		if err := os.Remove(mnt(p)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(mnt(p)); !os.IsNotExist(err) {
			t.Fatalf("stat after unlink: %v", err)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		cases := []struct {
			what string
			err  error
			want syscall.Errno
		}{
			{"a file in text/", os.WriteFile(mnt("text/x.srt"), nil, 0o644), syscall.EACCES},
			{"a folder in material/", os.Mkdir(mnt("material/mine"), 0o755), syscall.EACCES},
			{"a folder at the root", os.Mkdir(mnt("mine"), 0o755), syscall.EACCES},
			{"removing video/opening", os.Remove(mnt("video/opening")), syscall.EACCES},
			{"renaming image/", os.Rename(mnt("image"), mnt("pictures")), syscall.EACCES},
			{"a symlink", os.Symlink("/etc/passwd", mnt("video/link.mp4")), syscall.EPERM},
			{"a hard link", os.Link(mnt("video/README"), mnt("video/README2")), syscall.EPERM},
			{"a trusted attribute", syscall.Setxattr(mnt("video/README"), "trusted.x", []byte("1"), 0), syscall.ENOTSUP},
		}
		for _, c := range cases {
			if !isErrno(c.err, c.want) {
				t.Errorf("%s: got %v, want %v", c.what, c.err, c.want)
			}
		}
	})

	t.Run("folders made in a mapped folder work and persist", func(t *testing.T) {
		if err := os.MkdirAll(mnt("video/ending/a/b"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(mnt("video/ending/a/b/credits.mp4"), []byte("roll"), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, _ := xattr(mnt("video/ending/a/b/credits.mp4"), "user.ims.business_type"); b != "ending" {
			t.Fatalf("business_type %q, want ending", b)
		}
		if err := os.Remove(mnt("video/ending/a")); !isErrno(err, syscall.ENOTEMPTY) {
			t.Fatalf("rmdir of a non-empty folder: %v, want ENOTEMPTY", err)
		}
		entries, err := os.ReadDir(mnt("video/ending/a/b"))
		if err != nil || len(entries) != 2 || entries[0].Name() != "credits.mp4" || entries[1].Name() != "credits.mp4.ims.json" {
			t.Fatalf("readdir: %v, %v; want the file and its sidecar", entries, err)
		}
	})
}

// TestRenameDuringUploadFollowsTheFile: a file renamed while its upload is under way ends as an
// asset with its final name and its final folder's mapping.
func TestRenameDuringUploadFollowsTheFile(t *testing.T) {
	emu := startEmulator(t, "--ready-delay", "2s") // holds each file in "uploaded" for 2 s
	m := startMount(t, emu, "")
	// GIF is a video format and an image format: the file is uploaded as a video first.
	from, to := filepath.Join(m.Dir, "video", "clip.gif"), filepath.Join(m.Dir, "image", "cover", "poster.png")
	if err := os.WriteFile(from, []byte("png bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, from, "uploaded", 30*time.Second)
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, to, "ready", 30*time.Second)
	id, _ := xattr(to, "user.ims.media_id")
	for _, a := range emu.assets(t) {
		if a.MediaId == id {
			if a.Type != "image" || a.BusinessType != "cover" || a.Title != "poster" {
				t.Fatalf("the asset is %s/%s %q, want image/cover \"poster\"", a.Type, a.BusinessType, a.Title)
			}
			return
		}
	}
	t.Fatalf("no asset %s", id)
}
