package cache

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLibraryAssetsSurviveAReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	a := LibraryAsset{MediaID: "m1", Dir: "video", Name: "a.mp4", HasFile: true, Size: 10, Created: created, Title: "a"}
	b := LibraryAsset{MediaID: "m2", Created: created}
	meta := LibraryMeta{SweptTo: created, Newest: created.Add(time.Hour)}
	if err := s.PutLibrary([]LibraryAsset{a, b}, nil, meta); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLibrary(nil, []LibraryAsset{b}, meta); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var list []LibraryAsset
	err = s.EachLibraryAsset(func(a *LibraryAsset) error { list = append(list, *a); return nil })
	if err != nil || len(list) != 1 || list[0].Name != "a.mp4" || !list[0].Created.Equal(created) {
		t.Errorf("after a reopen: %+v %v", list, err)
	}
	if got, err := s.LibraryAsset(created, "m1"); err != nil || got.Title != "a" {
		t.Errorf("m1: %+v %v", got, err)
	}
	if got, err := s.LibraryMeta(); err != nil || !got.Newest.Equal(meta.Newest) {
		t.Errorf("meta: %+v %v", got, err)
	}
	if _, err := s.LibraryAsset(created, "m2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a forgotten asset: %v", err)
	}
}

func TestChunksAreBoundAndDropped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Chunks()
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(4) {
		if err := c.Put("m1.10.5", i, bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct use times
	}
	c.Put("m2.1.1", 0, []byte("x"))
	if f, err := c.Open("m1.10.5", 0); err != nil {
		t.Fatal(err)
	} else {
		f.Close() // chunk 0 is now the most recently used
	}
	if c.Size() != 401 {
		t.Errorf("size %d", c.Size())
	}
	if freed := c.Trim(250); freed != 200 || c.Size() != 201 {
		t.Errorf("trim to 250 freed %d, left %d", freed, c.Size())
	}
	if _, err := c.Open("m1.10.5", 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the least recently used chunk: %v", err)
	}
	f, err := c.Open("m1.10.5", 0)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(f)
	f.Close()
	if len(data) != 100 || data[0] != 0 {
		t.Errorf("chunk 0: %d bytes", len(data))
	}
	// A stray temporary file is cleared, and what is kept is counted again, at the next start.
	os.WriteFile(filepath.Join(dir, "library", "m1.10.5", chunkTemp+"x"), []byte("cut"), 0o600)
	c2, err := s.Chunks()
	if err != nil || c2.Size() != 201 {
		t.Fatalf("reopened: %d %v", c2.Size(), err)
	}
	if err := c2.Drop("m1", "m1.11.6"); err != nil || c2.Size() != 1 {
		t.Errorf("drop m1's other versions: %v, %d left", err, c2.Size())
	}
	if _, err := os.Stat(filepath.Join(dir, "library", "m1.10.5")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dropped version's folder: %v", err)
	}
}
