package fs

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// countingObjects serves an object from memory and counts the ranged GETs.
type countingObjects struct {
	data []byte
	gets atomic.Int32
}

func (o *countingObjects) ReadAt(ctx context.Context, mediaID string, p []byte, off int64) (int, error) {
	o.gets.Add(1)
	if off >= int64(len(o.data)) {
		return 0, io.EOF
	}
	return copy(p, o.data[off:]), nil
}

func (o *countingObjects) Fetch(ctx context.Context, mediaID string, w io.Writer) (int64, error) {
	n, err := w.Write(o.data)
	return int64(n), err
}

func (o *countingObjects) URL(ctx context.Context, mediaID string) (string, time.Time, error) {
	return "", time.Time{}, nil
}

func (o *countingObjects) CachedURL(mediaID string) string { return "" }

// TestAnEvictedFileIsReadBackInChunksAhead: a sequential reader makes a GET per chunk, not per
// read, and gets every byte; a reader that jumps gets the right bytes too.
func TestAnEvictedFileIsReadBackInChunksAhead(t *testing.T) {
	data := make([]byte, 10*chunkSize+12345)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	objs := &countingObjects{data: data}
	r := newRemoteReader(objs, "m", int64(len(data)))
	var got bytes.Buffer
	buf := make([]byte, 128<<10)
	for off := int64(0); ; {
		n, err := r.ReadAt(context.Background(), buf, off)
		got.Write(buf[:n])
		off += int64(n)
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read back %d bytes that differ from the %d of the object", got.Len(), len(data))
	}
	if n := objs.gets.Load(); n != 11 {
		t.Errorf("%d GETs for 11 chunks read in %d reads", n, len(data)/len(buf))
	}
	r2 := newRemoteReader(objs, "m", int64(len(data)))
	for _, off := range []int64{5 * chunkSize, 123, 9*chunkSize + 7, chunkSize - 10} {
		n, err := r2.ReadAt(context.Background(), buf, off)
		if err != nil || !bytes.Equal(buf[:n], data[off:off+int64(n)]) || n != len(buf) {
			t.Errorf("a read at %d: %d bytes, %v", off, n, err)
		}
	}
	if n, err := r2.ReadAt(context.Background(), buf, int64(len(data))); n != 0 || err != io.EOF {
		t.Errorf("a read at the end: %d %v", n, err)
	}
}
