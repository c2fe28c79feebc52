package cache

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestKeptAttributesAsExt4KeepsThem: set, replace, remove; XATTR_CREATE and XATTR_REPLACE;
// names over 255 bytes; attributes over one 4 KiB block; kept through a rename and a reopen.
func TestKeptAttributesAsExt4KeepsThem(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	rec := mustCreate(t, s, "video/a.mp4", Ready)
	set := func(name, value string, f XattrFlags) error {
		return s.SetXattr(rec.ID, name, []byte(value), false, f)
	}
	if err := set("user.DOSATTRIB", "0x20", XattrFlags{}); err != nil {
		t.Fatal(err)
	}
	if err := set("user.DOSATTRIB", "0x21", XattrFlags{Create: true}); !errors.Is(err, ErrXattrExists) {
		t.Errorf("XATTR_CREATE of one there is: %v", err)
	}
	if err := set("user.xdg.origin.url", "https://x", XattrFlags{Replace: true}); !errors.Is(err, ErrNoXattr) {
		t.Errorf("XATTR_REPLACE of one not there: %v", err)
	}
	if err := set("user."+strings.Repeat("n", 251), "v", XattrFlags{}); !errors.Is(err, ErrXattrName) {
		t.Errorf("a name of 256 bytes: %v", err)
	}
	if err := set("user.big", strings.Repeat("v", 4000), XattrFlags{}); err != nil {
		t.Errorf("a value of 4,000 bytes fits a block: %v", err)
	}
	if err := set("user.more", strings.Repeat("v", 100), XattrFlags{}); !errors.Is(err, ErrXattrSpace) {
		t.Errorf("past one block: %v", err)
	}
	if err := s.SetXattr(rec.ID, "user.big", nil, true, XattrFlags{}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetXattr(rec.ID, "user.big", nil, true, XattrFlags{}); !errors.Is(err, ErrNoXattr) {
		t.Errorf("removing one not there: %v", err)
	}
	if _, err := s.Rename("video/a.mp4", "video/b.mp4", func(r Record) Event { return Event{Kind: Renamed, Type: r.Type, BusinessType: r.BusinessType} }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, dir)
	got, err := s.Get("video/b.mp4")
	if err != nil || len(got.Xattrs) != 1 || !bytes.Equal(got.Xattrs["user.DOSATTRIB"], []byte("0x20")) {
		t.Errorf("after a rename and a reopen: %v %v", got.Xattrs, err)
	}

	// A folder's, a fixed one's too; its mode and time set later keep them.
	if err := s.SetDirXattr("video", "user.DOSATTRIB", []byte("0x10"), false, XattrFlags{}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDirXattr("video/gone", "user.DOSATTRIB", []byte("0x10"), false, XattrFlags{}, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("a folder with no record that is not the mapping's: %v", err)
	}
	if err := s.PutDir(Dir{Path: "video", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if xs, err := s.DirXattrs("video"); err != nil || string(xs["user.DOSATTRIB"]) != "0x10" {
		t.Errorf("a folder's: %v %v", xs, err)
	}
}
