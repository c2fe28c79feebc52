package fs

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// The read-back of an evicted file streams: a reader that goes on from where it stopped gets
// the next chunks fetched ahead, in the background, while it reads this one; a reader that jumps
// gets the chunk it asks for. Memory stays bounded by the chunks ahead of each open reader.
const (
	chunkSize = 4 << 20 // one ranged GET
	readAhead = 3       // chunks fetched ahead of a sequential reader
)

// remoteReader reads one evicted file from its object for one open handle.
type remoteReader struct {
	objs    Objects // read only
	mediaID string  // read only
	size    int64   // read only: the file's size when it was opened

	mu     sync.Mutex
	chunks map[int64]*chunk // protected by mu: by index, fetched or being fetched
	next   int64            // protected by mu: where a sequential reader reads next
}

type chunk struct {
	done chan struct{} // closed when data and err are set
	data []byte
	err  error
}

func newRemoteReader(objs Objects, mediaID string, size int64) *remoteReader {
	return &remoteReader{objs: objs, mediaID: mediaID, size: size, chunks: map[int64]*chunk{}}
}

// _fetch starts fetching chunk i unless it is there or on its way. Call with r.mu held.
func (r *remoteReader) _fetch(i int64) *chunk {
	if c := r.chunks[i]; c != nil {
		return c
	}
	c := &chunk{done: make(chan struct{})}
	r.chunks[i] = c
	off := i * chunkSize
	n := min(int64(chunkSize), r.size-off)
	go func() {
		defer close(c.done)
		// Not the request's context: a chunk fetched ahead serves the reads that follow.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buf := make([]byte, n)
		got, err := r.objs.ReadAt(ctx, r.mediaID, buf, off)
		if errors.Is(err, io.EOF) && int64(got) == n {
			err = nil
		}
		c.data, c.err = buf[:got], err
	}()
	return c
}

// ReadAt fills p from offset off, from chunks fetched (or fetched ahead) for it.
func (r *remoteReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-off)]
	first, last := off/chunkSize, (off+int64(len(p))-1)/chunkSize
	r.mu.Lock()
	sequential := off == r.next
	r.next = off + int64(len(p))
	var want []*chunk
	for i := first; i <= last; i++ {
		want = append(want, r._fetch(i))
	}
	if sequential {
		for i := last + 1; i <= last+readAhead && i*chunkSize < r.size; i++ {
			r._fetch(i)
		}
		for i := range r.chunks {
			if i < first {
				delete(r.chunks, i) // read past: not wanted again by a sequential reader
			}
		}
	}
	if len(r.chunks) > 2*readAhead+2 {
		// A reader that jumps about: keep only what this read needs.
		for i := range r.chunks {
			if i < first || i > last {
				delete(r.chunks, i)
			}
		}
	}
	r.mu.Unlock()
	n := 0
	for k, c := range want {
		select {
		case <-c.done:
		case <-ctx.Done():
			return n, ctx.Err()
		}
		if c.err != nil {
			r.mu.Lock()
			if r.chunks[first+int64(k)] == c {
				delete(r.chunks, first+int64(k)) // a failed chunk is asked for again next time
			}
			r.mu.Unlock()
			return n, c.err
		}
		start := int64(0)
		if k == 0 {
			start = off - first*chunkSize
		}
		if start >= int64(len(c.data)) {
			break
		}
		n += copy(p[n:], c.data[start:])
	}
	return n, nil
}
