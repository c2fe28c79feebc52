package cache

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func mustOpen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRecordRoundTripSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	mtime := time.Date(2026, 11, 27, 1, 2, 3, 4, time.UTC)
	rec, err := s.Create("video/clip.mp4", func(r *Record) {
		r.Type, r.BusinessType, r.Mode, r.Mtime = "video", "general", 0o644, mtime
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want, err := s.Update(rec.ID, func(r *Record) error {
		r.State = Queued
		r.Size = 3 << 20
		r.MediaID = "m-1"
		r.Upload = &Upload{Bucket: "b", Key: "k", MultipartID: "u", Parts: []Part{{Number: 1, ETag: `"E"`, Size: 5}}}
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	s.Close()

	s2 := mustOpen(t, dir)
	got, err := s2.GetID(rec.ID)
	if err != nil {
		t.Fatalf("GetID after reopen: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen got %+v, want %+v", got, want)
	}
	byPath, err := s2.Get("video/clip.mp4")
	if err != nil || byPath.ID != rec.ID {
		t.Fatalf("Get by path: %+v, %v", byPath, err)
	}
}

func TestUpdateRefusesATransitionTheTableDoesNotList(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	rec, err := s.Create("video/a.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(rec.ID, func(r *Record) error { r.State = Ready; return nil })
	if !errors.Is(err, ErrBadTransition) {
		t.Fatalf("writing → ready: got %v, want ErrBadTransition", err)
	}
	got, _ := s.GetID(rec.ID)
	if got.State != Writing {
		t.Fatalf("a refused update was written: state %s", got.State)
	}
}

func TestCreateRefusesAPathInUse(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	if _, err := s.Create("video/a.mp4", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("video/a.mp4", nil); !errors.Is(err, ErrExists) {
		t.Fatalf("got %v, want ErrExists", err)
	}
}

func TestRenameMovesAFolderWithEverythingBelowAndReplacesTheTarget(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	for _, d := range []string{"video/a", "video/a/b"} {
		if err := s.PutDir(Dir{Path: d, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	x, _ := s.Create("video/a/x.mp4", nil)
	y, _ := s.Create("video/a/b/y.mp4", nil)
	other, _ := s.Create("video/ab.mp4", nil) // shares the prefix "video/a" but is not below it

	var fixed []string
	if _, err := s.Rename("video/a", "image/c", func(r *Record) { fixed = append(fixed, r.Path); r.Type = "image" }); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	for id, want := range map[uint64]string{x.ID: "image/c/x.mp4", y.ID: "image/c/b/y.mp4", other.ID: "video/ab.mp4"} {
		got, err := s.GetID(id)
		if err != nil || got.Path != want {
			t.Errorf("record %d: path %q (%v), want %q", id, got.Path, err, want)
		}
	}
	if len(fixed) != 2 {
		t.Errorf("fix called for %v, want the two moved files", fixed)
	}
	dirs, _ := s.Dirs()
	var paths []string
	for _, d := range dirs {
		paths = append(paths, d.Path)
	}
	if !reflect.DeepEqual(paths, []string{"image/c", "image/c/b"}) {
		t.Errorf("dirs after rename: %v", paths)
	}

	// A rename over an existing file replaces it.
	replaced, err := s.Rename("image/c/x.mp4", "video/ab.mp4", nil)
	if err != nil || replaced == nil || replaced.ID != other.ID {
		t.Fatalf("rename over a file: replaced %+v, %v", replaced, err)
	}
	if _, err := s.GetID(other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replaced record still there: %v", err)
	}
}

func TestASecondOpenIsRefusedNotBlocked(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir)
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
}

func TestEveryStateHasTransitionsAndTheHappyPathIsAllowed(t *testing.T) {
	path := States()[:6] // writing … ready
	for i := 1; i < len(path); i++ {
		if err := Transition(path[i-1], path[i]); err != nil {
			t.Errorf("happy path: %v", err)
		}
	}
	for _, s := range States() {
		if !s.Valid() {
			t.Errorf("%s has no transitions", s)
		}
		if err := Transition(s, Writing); s != Writing && err != nil {
			t.Errorf("a reopen must be possible from every state: %v", err)
		}
	}
}

func TestChangesLeaveDisposals(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mk := func(path string, state State, media string) Record {
		t.Helper()
		r, err := s.Create(path, func(r *Record) {
			r.State, r.MediaID = state, media
			if media != "" && state != Ready {
				r.Upload = &Upload{Bucket: "b", Key: "k", MultipartID: "U" + media}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	uploading := mk("video/a.mp4", Uploading, "m1")
	ready := mk("video/b.mp4", Ready, "m2")
	gone := mk("video/c.mp4", Ready, "m3")
	over := mk("video/d.mp4", Ready, "m4")
	src := mk("video/e.mp4", Queued, "")
	plain := mk("video/f.mp4", Queued, "")

	if _, err := s.Update(uploading.ID, func(r *Record) error { r.State = Writing; r.NewGeneration(); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ready.ID, func(r *Record) error { r.State = Writing; r.NewGeneration(); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rename(src.Path, over.Path, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(plain.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(src.ID, func(r *Record) error { r.Mode = 0o600; return nil }); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Disposals()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		media     string
		why       Why
		after     uint64
		multipart string
	}{
		{"m1", Voided, 0, "Um1"},
		{"m2", Overwritten, ready.ID, ""},
		{"m3", Deleted, 0, ""},
		{"m4", Overwritten, src.ID, ""},
	}
	if len(ds) != len(want) {
		t.Fatalf("disposals %+v, want %d", ds, len(want))
	}
	for i, w := range want {
		d := ds[i]
		mp := ""
		if d.Upload != nil {
			mp = d.Upload.MultipartID
		}
		if d.MediaID != w.media || d.Why != w.why || d.After != w.after || mp != w.multipart {
			t.Errorf("disposal %d: %+v, want %+v", i, d, w)
		}
	}
	if err := s.DoneDisposal(ds[0].Seq); err != nil {
		t.Fatal(err)
	}
	ds[1].Attempts = 2
	if err := s.UpdateDisposal(ds[1]); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Disposals(); len(after) != 3 || after[0].Attempts != 2 {
		t.Errorf("after Done and Update: %+v", after)
	}
}
