package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// spool makes record id's spool file, as the mount does after Create.
func spool(t *testing.T, s *Store, id uint64) {
	t.Helper()
	if err := os.WriteFile(s.SpoolPath(id), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// kill leaves the store as a killed mount does: what reached the operating system stays, and
// nothing more is committed.
func kill(t *testing.T, s *Store) {
	t.Helper()
	close(s.stopSync)
	<-s.syncDone
	<-s.fillDone // a killed process makes no more files
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	s.cr.log.Close()
}

func TestANewFileSurvivesAKilledMountBeforeItsCommit(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	s.db.MaxBatchDelay = time.Hour // no commit comes: the log alone keeps them
	var ids []uint64
	// A name need not be UTF-8; one with no spool is a create that never returned.
	for _, p := range []string{"/video/a.mp4", "/video/b\xff\xfe.mp4", "/video/gone.mp4", "/video/old.mp4", "/video/no-spool.mp4"} {
		rec, err := s.Create(p, func(r *Record) { r.Type = "video" })
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
		if p != "/video/no-spool.mp4" {
			spool(t, s, rec.ID)
		} else if f := s.TakeSpool(rec.ID); f != nil {
			f.Close()
			os.Remove(s.SpoolPath(rec.ID))
		}
	}
	if n := s.cr.count.Load(); n != 5 {
		t.Fatalf("%d records pending, want 5: the test is not testing the log", n)
	}
	// Read before any commit: from memory.
	if rec, err := s.GetID(ids[0]); err != nil || rec.Path != "/video/a.mp4" || rec.State != Writing {
		t.Fatalf("GetID of a pending record: %+v, %v", rec, err)
	}
	if rec, err := s.Get("/video/b\xff\xfe.mp4"); err != nil || rec.ID != ids[1] {
		t.Fatalf("Get of a pending record: %+v, %v", rec, err)
	}
	// A removal commits the record first, then removes it: no log brings it back.
	if _, _, err := s.Apply(ids[2], Event{Kind: Unlinked}); err != nil {
		t.Fatal(err)
	}
	if n := s.cr.count.Load(); n != 0 {
		t.Fatalf("%d records pending after a write transaction, want 0", n)
	}
	if _, _, err := s.Apply(ids[3], Event{Kind: Unlinked}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Apply(ids[4], Event{Kind: Unlinked}); err != nil {
		t.Fatal(err)
	}
	later, err := s.Create("/video/later.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	spool(t, s, later.ID)
	files, err := s.Files() // a listing commits what is pending
	if err != nil || len(files) != 3 {
		t.Fatalf("Files: %d records, %v; want a, b and later", len(files), err)
	}
	late2, err := s.Create("/video/late2.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	spool(t, s, late2.ID)
	never, err := s.Create("/video/never-returned.mp4", nil) // killed before its spool was made
	if err != nil {
		t.Fatal(err)
	}
	kill(t, s)
	os.Remove(s.SpoolPath(never.ID)) // made ahead, maybe: as if it had not been

	s = mustOpen(t, dir)
	for _, want := range []struct {
		path string
		id   uint64
	}{{"/video/a.mp4", ids[0]}, {"/video/b\xff\xfe.mp4", ids[1]}, {"/video/later.mp4", later.ID}, {"/video/late2.mp4", late2.ID}} {
		rec, err := s.Get(want.path)
		if err != nil || rec.ID != want.id || rec.State != Writing || rec.Gen != 1 {
			t.Errorf("%s after the kill: %+v, %v; want ID %d, writing", want.path, rec, err, want.id)
		}
	}
	for _, p := range []string{"/video/gone.mp4", "/video/old.mp4", "/video/no-spool.mp4", "/video/never-returned.mp4"} {
		if _, err := s.Get(p); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s, removed before the kill, is back: %v", p, err)
		}
	}
	next, err := s.Create("/video/next.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if next.ID <= never.ID {
		t.Errorf("a new record's ID %d reuses one handed out before the kill (%d)", next.ID, never.ID)
	}
	if s.FromLog() != 1 {
		t.Errorf("FromLog %d, want 1 (late2: the rest were committed before the kill)", s.FromLog())
	}
	if _, err := s.Create("/video/next.mp4", nil); !errors.Is(err, ErrExists) {
		t.Errorf("a second create of a pending path: %v, want ErrExists", err)
	}
	if _, err := s.Create("/video/a.mp4", nil); !errors.Is(err, ErrExists) {
		t.Errorf("a second create of a committed path: %v, want ErrExists", err)
	}
}

func TestNewFilesShareCommits(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	s.Create("/video/first.mp4", nil) // reserves the IDs
	s.settle()
	before := s.Commits()
	for i := range 200 {
		if _, err := s.Create("/video/f"+string(rune('a'+i%26))+time.Now().Format("150405.000000000")+".mp4", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.settle(); err != nil {
		t.Fatal(err)
	}
	files, err := s.Files()
	if err != nil || len(files) != 201 {
		t.Fatalf("Files: %d, %v; want 201", len(files), err)
	}
	if n := s.Commits() - before; n >= 200 {
		t.Errorf("200 creates took %d commits: none was shared", n)
	}
}

func TestTheLogIsEmptiedOnceCommitted(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	for _, p := range []string{"/video/a.mp4", "/video/b.mp4"} {
		if _, err := s.Create(p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.settle(); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if s.cr.size != 0 {
		t.Errorf("the log holds %d bytes after its records were committed and synced", s.cr.size)
	}
}

// TestARemovedPathIsFreeAtOnce: a create of a path whose pending record was committed and
// removed (a lock file made again) is not refused while that commit's handlers have yet to run.
func TestARemovedPathIsFreeAtOnce(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	rec, err := s.Create("/video/lock.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Apply(rec.ID, Event{Kind: Unlinked}); err != nil {
		t.Fatal(err)
	}
	// As if the commit's OnCommit had not run yet: the record is still pending in memory.
	s.cr.mu.Lock()
	s.cr.pending[rec.ID] = rec
	s.cr.paths[rec.Path] = rec.ID
	s.cr.count.Store(int64(len(s.cr.pending)))
	s.cr.mu.Unlock()
	again, err := s.Create("/video/lock.mp4", nil)
	if err != nil {
		t.Fatalf("create again: %v", err)
	}
	if got, err := s.Get("/video/lock.mp4"); err != nil || got.ID != again.ID {
		t.Errorf("Get: %+v, %v; want the new record %d", got, err, again.ID)
	}
	if _, err := s.GetID(rec.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetID of the removed record: %v, want ErrNotFound", err)
	}
}

func TestALogOfGarbageIsSkipped(t *testing.T) {
	long := make([]byte, 3<<20)
	for i := range long {
		long[i] = 'x'
	}
	good := `{"p":"L3ZpZGVvL2EubXA0","r":{"ID":7,"State":"writing","Gen":1}}`
	in := string(long) + "\n" + good + "\n{\"p\":\"cut" // a long line, a good one, one cut off
	recs, err := readCreates(strings.NewReader(in))
	if err != nil || len(recs) != 1 || recs[0].ID != 7 || recs[0].Path != "/video/a.mp4" {
		t.Fatalf("readCreates: %+v, %v; want the one good record", recs, err)
	}
}

// TestSpoolFilesAreMadeAhead: the next IDs' spool files are made in the background and handed
// to their creates; those never handed out are removed at Close, and by the next Open after a
// kill.
func TestSpoolFilesAreMadeAhead(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	rec, err := s.Create("/video/a.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	next := rec.ID + 1
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.cr.mu.Lock()
		n := len(s.cr.ahead)
		s.cr.mu.Unlock()
		if n >= aheadFiles-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spool files made ahead, want %d", n, aheadFiles-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b, err := s.Create("/video/b.mp4", nil)
	if err != nil || b.ID != next {
		t.Fatalf("Create: %+v, %v; want ID %d", b, err, next)
	}
	f := s.TakeSpool(b.ID)
	if f == nil {
		t.Fatal("no spool file made ahead for the next ID")
	}
	if _, err := f.Write([]byte("bytes")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if s.TakeSpool(b.ID) != nil {
		t.Error("a spool file handed out twice")
	}
	kill(t, s)
	s = mustOpen(t, dir)
	if data, err := os.ReadFile(s.SpoolPath(b.ID)); err != nil || string(data) != "bytes" {
		t.Errorf("the spool of a file made: %q, %v", data, err)
	}
	if _, err := os.Stat(s.SpoolPath(b.ID + 5)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a spool file made ahead and never handed out is left after the kill: %v", err)
	}
	files, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// b's, and a's if it was made ahead before a was handed its ID (then a is a record again).
	keep := map[string]bool{}
	for _, f := range files {
		keep[filepath.Base(s.SpoolPath(f.ID))] = true
	}
	entries, _ := os.ReadDir(s.SpoolDir())
	for _, e := range entries {
		if !keep[e.Name()] {
			t.Errorf("spool file %s is left after Close, of no record", e.Name())
		}
	}
	if !keep[filepath.Base(s.SpoolPath(b.ID))] {
		t.Error("b is no record after the kill")
	}
}

// TestASpoolHandedOutStays: a record whose spool file was made ahead and which its caller
// writes by name (not through TakeSpool) keeps its bytes across Close.
func TestASpoolHandedOutStays(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	for i := range 50 {
		rec, err := s.Create(fmt.Sprintf("/video/f%d.mp4", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.SpoolPath(rec.ID), []byte("bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // let the spool files ahead be made
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir)
	files, err := s.Files()
	if err != nil || len(files) != 50 {
		t.Fatalf("Files: %d, %v", len(files), err)
	}
	for _, f := range files {
		if data, err := os.ReadFile(s.SpoolPath(f.ID)); err != nil || string(data) != "bytes" {
			t.Errorf("%s: spool %q, %v", f.Path, data, err)
		}
	}
}
