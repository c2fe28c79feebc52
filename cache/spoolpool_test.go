package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSpoolsComeFromThePoolAndItsLeftoversGo: a new spool is empty and at its record's path
// whether the pool had one ready or not; a pool a stopped mount left is emptied at the next
// Open, and Close removes what it made.
func TestSpoolsComeFromThePoolAndItsLeftoversGo(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Admission: testAdmission{}})
	if err != nil {
		t.Fatal(err)
	}
	pool := filepath.Join(dir, "pool")
	deadline := time.Now().Add(30 * time.Second)
	for count(t, pool) < spoolPoolSize && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(t, pool); n != spoolPoolSize {
		t.Fatalf("the pool holds %d files, want %d", n, spoolPoolSize)
	}
	// More than the pool holds at once: the rest are made as they are asked for.
	for i := range 3 * spoolPoolSize {
		rec, err := s.Create(fmt.Sprintf("video/f%03d.mp4", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.CreateSpool(rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("bytes"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if b, err := os.ReadFile(s.SpoolPath(rec.ID)); err != nil || string(b) != "bytes" {
			t.Fatalf("spool %d holds %q, %v", rec.ID, b, err)
		}
	}
	if n := count(t, s.SpoolDir()); n != 3*spoolPoolSize {
		t.Fatalf("the spool folder holds %d files, want %d", n, 3*spoolPoolSize)
	}
	// A mount killed leaves its pool: the files stay, as a crash would leave them.
	if err := os.WriteFile(filepath.Join(pool, "left"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Stopped as a killed process is: no Close, so nothing tidied.
	close(s.stopSync)
	<-s.syncDone
	<-s.pool.done
	s.db.Close()
	s2, err := Open(dir, Options{Admission: testAdmission{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pool, "left")); !os.IsNotExist(err) {
		t.Fatalf("a file left in the pool is still there after Open: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool); n != 0 {
		t.Fatalf("Close left %d files in the pool", n)
	}
	if n := count(t, s2.SpoolDir()); n != 3*spoolPoolSize {
		t.Fatalf("the spool folder holds %d files after a reopen, want %d", n, 3*spoolPoolSize)
	}
}

func count(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
