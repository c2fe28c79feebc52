package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTheAssetsFieldsAreSetFromTheFile: user.ims.title, description, tags and cate_id set with
// setfattr before the upload go with CreateUploadMedia; set after it, by UpdateMediaInfo
// (user.ims.update says pending, then done); values IMS would refuse are refused with EINVAL or
// E2BIG and a log line; setfattr -x gives the default back; they survive a restart and show in
// the sidecar.
func TestTheAssetsFieldsAreSetFromTheFile(t *testing.T) {
	emu := startEmulator(t)
	cacheDir := t.TempDir()
	m := startMount(t, emu, cacheDir, "--upload-delay", "3s")
	a := filepath.Join(m.Dir, "video", "a.mp4")
	if err := os.WriteFile(a, randomBytes(t, 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	// Before the upload (within the settle delay), with the tool users have.
	run(t, "setfattr", "-n", "user.ims.title", "-v", "Opening night, take 2", a)
	run(t, "setfattr", "-n", "user.ims.description", "-v", "首映 — the wide shot", a)
	run(t, "setfattr", "-n", "user.ims.tags", "-v", "premiere, wide", a)
	run(t, "setfattr", "-n", "user.ims.cate_id", "-v", "42", a)
	if s, _ := xattr(a, "user.ims.status"); s != "queued" && s != "writing" {
		t.Fatalf("the fields were not set before the upload: status %s", s)
	}
	waitStatus(t, a, "ready", 60*time.Second)
	got, _ := emu.asset(t, mediaIDOf(t, a))
	if got.Title != "Opening night, take 2" || got.Description != "首映 — the wide shot" || got.Tags != "premiere,wide" || got.CateId != 42 {
		t.Fatalf("the asset was made with %+v", got)
	}
	if n := emu.stats(t).Requests["ims.update"]; n != 0 {
		t.Errorf("fields set before the upload took %d UpdateMediaInfo calls, want none", n)
	}
	if v, err := xattr(a, "user.ims.tags"); v != "premiere,wide" || err != nil {
		t.Errorf("user.ims.tags reads %q, %v", v, err)
	}

	// Refused as IMS would refuse them: the writer gets the errno, the log the reason.
	for _, c := range []struct {
		name, value string
		want        syscall.Errno
		reason      string
	}{
		{"user.ims.title", strings.Repeat("长", 43), syscall.E2BIG, "129 bytes"},
		{"user.ims.description", strings.Repeat("d", 1025), syscall.E2BIG, "1025 bytes, UpdateMediaInfo takes at most 1024"},
		{"user.ims.tags", strings.Repeat("t,", 16) + "t", syscall.E2BIG, "17 tags"},
		{"user.ims.tags", "a,,b", syscall.EINVAL, "an empty tag"},
		{"user.ims.cate_id", "news", syscall.EINVAL, "not a category id"},
		{"user.ims.description", "\xff\xfe", syscall.EINVAL, "UTF-8"},
	} {
		if err := unix.Setxattr(a, c.name, []byte(c.value), 0); err != c.want {
			t.Errorf("setxattr %s (%.20q…): %v, want %v", c.name, c.value, err, c.want)
		}
		if !strings.Contains(m.output(), c.reason) {
			t.Errorf("no log line says why %s was refused (%q)", c.name, c.reason)
		}
	}
	if v, _ := xattr(a, "user.ims.cate_id"); v != "42" {
		t.Errorf("a refused value changed user.ims.cate_id to %q", v)
	}

	// After the upload: the asset follows, and the file says when it has.
	run(t, "setfattr", "-n", "user.ims.tags", "-v", "premiere,final", a)
	run(t, "setfattr", "-x", "user.ims.title", a)
	if v, _ := xattr(a, "user.ims.title"); v != "a" {
		t.Errorf("after setfattr -x the title is %q, want the name's, a", v)
	}
	waitXattr(t, a, "user.ims.update", "done", 30*time.Second)
	got, _ = emu.asset(t, mediaIDOf(t, a))
	if got.Title != "a" || got.Tags != "premiere,final" || got.CateId != 42 {
		t.Fatalf("after the update the asset is %+v", got)
	}
	if s, _ := xattr(a, "user.ims.status"); s != "ready" {
		t.Errorf("status after the update: %s", s)
	}

	// They survive a restart, and the sidecar shows them.
	run(t, "umount", m.Dir)
	if err := m.waitExit(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	m = startMount(t, emu, cacheDir)
	a = filepath.Join(m.Dir, "video", "a.mp4")
	if v, _ := xattr(a, "user.ims.description"); v != "首映 — the wide shot" {
		t.Errorf("after a restart user.ims.description is %q", v)
	}
	raw, err := os.ReadFile(a + ".ims.json")
	if err != nil {
		t.Fatal(err)
	}
	var side map[string]string
	if err := json.Unmarshal(raw, &side); err != nil {
		t.Fatalf("sidecar: %v\n%s", err, raw)
	}
	if side["title"] != "a" || side["tags"] != "premiere,final" || side["cate_id"] != "42" || side["description"] == "" || side["update"] != "done" {
		t.Errorf("the sidecar shows %s", raw)
	}
}

// waitXattr waits until attribute name of path reads want.
func waitXattr(t *testing.T, path, name, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, err := xattr(path, name)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s is %q (%v) after %v, want %q", name, path, v, err, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
