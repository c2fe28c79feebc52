package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSpoolIDTellsAChange: unchanged, written to, or replaced under its name.
func TestSpoolIDTellsAChange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "spool")
	if err := os.WriteFile(p, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := SpoolIDOf(f)
	if err != nil {
		t.Fatal(err)
	}
	if at, err := SpoolIDAt(p); err != nil || at != id {
		t.Errorf("SpoolIDAt %+v %v, SpoolIDOf %+v", at, err, id)
	}
	if why := id.ChangedSince(f); why != "" {
		t.Errorf("unchanged: %q", why)
	}
	if _, err := f.WriteAt([]byte("abcd"), 0); err != nil {
		t.Fatal(err)
	}
	if why := id.ChangedSince(f); !strings.Contains(why, "the spool changed (3 bytes") {
		t.Errorf("written: %q", why)
	}
	if err := os.WriteFile(p+".new", []byte("abcd"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	if why := id.ChangedSince(f); why != "the spool was replaced" {
		t.Errorf("replaced: %q", why)
	}
	if _, err := SpoolIDAt(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("the SpoolID of no file")
	}
}

// TestStatesSayWhatIsLeft: which states have work left, and which are finished.
func TestStatesSayWhatIsLeft(t *testing.T) {
	pending := map[State]bool{Writing: true, Queued: true, Creating: true, Uploading: true, Uploaded: true}
	for _, s := range States() {
		if s.Pending() != pending[s] {
			t.Errorf("%s: Pending %v", s, s.Pending())
		}
		if s.Finished() != (s == Uploaded || s == Ready) {
			t.Errorf("%s: Finished %v", s, s.Finished())
		}
	}
}

// TestCountByStateAndSidecarRefusals: counts from the index of unfinished records and the number of
// records; a refusal written in a sidecar is kept and cleared.
func TestCountByStateAndSidecarRefusals(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	a, err := s.Create("video/a.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("video/b.mp4", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Apply(a.ID, Event{Kind: Closed, Size: 1, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	counts, err := s.CountByState()
	if err != nil || counts[Queued] != 1 || counts[Writing] != 1 || counts[Ready] != 0 {
		t.Errorf("counts %v %v", counts, err)
	}
	if err := s.SetMetaRefused(a.ID, "title: too long"); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.GetID(a.ID); r.MetaRefused != "title: too long" {
		t.Errorf("refusal kept: %q", r.MetaRefused)
	}
	if err := s.SetMetaRefused(a.ID, "title: too long"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMetaRefused(a.ID, ""); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.GetID(a.ID); r.MetaRefused != "" {
		t.Errorf("refusal cleared: %q", r.MetaRefused)
	}
	if err := s.SetMetaRefused(999, "x"); err == nil {
		t.Error("a refusal kept for no record")
	}
}

// TestMetaFieldsByName: the fields by their attributes' names; another name is none.
func TestMetaFieldsByName(t *testing.T) {
	m := Meta{Title: "t", Description: "d", Tags: "a,b", CateID: "7"}
	for name, want := range map[string]string{"title": "t", "description": "d", "tags": "a,b", "cate_id": "7", "colour": ""} {
		if got := m.Field(name); got != want {
			t.Errorf("Field(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestChunksHasWhatItKept: a chunk kept is had, under its version only.
func TestChunksHasWhatItKept(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	c, err := s.Chunks()
	if err != nil {
		t.Fatal(err)
	}
	v := LibraryVersion("m1", 5, time.Unix(100, 0))
	if v != "m1.5.100" {
		t.Errorf("version %q", v)
	}
	if c.Has(v, 0) {
		t.Error("had before it was kept")
	}
	if err := c.Put(v, 0, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if !c.Has(v, 0) || c.Has(v, 1) || c.Has(LibraryVersion("m1", 6, time.Unix(100, 0)), 0) {
		t.Error("Has does not answer what was kept")
	}
}

// TestGroupedClosesShareCommits: the last closes of files closed together (a copy) are
// committed in shared transactions, each as it would be alone.
func TestGroupedClosesShareCommits(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	var ids []uint64
	for i := range 50 {
		rec, err := s.Create(fmt.Sprintf("video/f%02d.mp4", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	before := s.Commits()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Apply(id, Event{Kind: Closed, Size: 1, Now: time.Now(), Grouped: true}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.Commits() - before; n >= uint64(len(ids)) {
		t.Errorf("%d closes took %d commits", len(ids), n)
	}
	for _, id := range ids {
		if r, _ := s.GetID(id); r.State != Queued {
			t.Errorf("record %d is %s after its close", id, r.State)
		}
	}
}
