package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader"
)

// TestALibraryChunkCutShortIsNeitherServedNorKept: an object that gives fewer bytes than its
// listing says (a body cut short, answered without error) fails the read, and nothing of it is
// kept; the whole object is then read, kept, and read again from the cache without a GET.
func TestALibraryChunkCutShortIsNeitherServedNorKept(t *testing.T) {
	store, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	chunks, err := store.Chunks()
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, libChunk+5000)
	for i := range data {
		data[i] = byte(rand.IntN(255) + 1) // no zero: a zero-filled tail would show
	}
	objs := &countingObjects{data: data[:libChunk-1000]}
	f := New(Options{Store: store, Objects: objs, Chunks: chunks})
	e := &libVersion{uploader.LibraryEntry{MediaID: "m1", Size: int64(len(data)), FileTime: time.Unix(1, 0)}, "m1.x.1"}
	ctx := context.Background()
	p := make([]byte, 4096)
	if _, err := f.lib.readAt(ctx, e, p, libChunk-2000); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a read past where the object was cut: %v, want an unexpected EOF", err)
	}
	if chunks.Has(e.version, 0) || chunks.Size() != 0 {
		t.Fatalf("a chunk cut short was kept")
	}
	objs.data = data
	for range 2 {
		got := make([]byte, len(data))
		if n, err := f.lib.readAt(ctx, e, got, 0); err != nil || n != len(data) || !bytes.Equal(got, data) {
			t.Fatalf("the whole object: %d bytes, %v, equal %v", n, err, bytes.Equal(got, data))
		}
	}
	if n := objs.gets.Load(); n != 3 { // the cut one, then each chunk once
		t.Errorf("%d GETs, want 3: the second read is the cache's", n)
	}
}
