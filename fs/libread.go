package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/uploader"
)

// A library file's bytes come from its object on demand, in chunks of libChunk: each fetched
// once (whoever asks), kept in the cache directory (cache.Chunks) within the cache's bound, and
// fetched ahead of a reader that reads on from where it stopped.
const (
	libChunk     = 8 << 20 // one ranged GET
	libReadAhead = 4       // chunks fetched ahead of a sequential reader
	// libFetchTimeout bounds one chunk's fetch: a network that takes no more bytes fails the
	// read, which says so, instead of hanging it.
	libFetchTimeout = 2 * time.Minute
	// libFetches is how many chunks are fetched at once at most, whatever the readers: with
	// libKept, what the library's reads hold in memory (64 MiB).
	libFetches = 4
)

// libBytes fetches and keeps the library's bytes; one per file system.
type libBytes struct {
	fsys *FS // read only
	// slots bounds the fetches under way, each holding a chunk in memory: many readers at
	// once wait their turn rather than grow the mount's memory.
	slots chan struct{}

	mu sync.Mutex
	// flights are the chunks being fetched, and the last libKept fetched (recent, oldest
	// first): a reader that follows the read-ahead takes them from memory, not from the file
	// they were kept in.
	flights map[flightKey]*flight // protected by mu
	recent  []flightKey           // protected by mu
}

// libKept is how many chunks fetched stay in memory after their fetch.
const libKept = 4

type flightKey struct {
	version string
	index   int64
}

// flight is one chunk's fetch; data and err are set when done is closed.
type flight struct {
	done chan struct{}
	data []byte
	err  error
}

// libVersion is an asset as a handle reads it: its entry when opened, and the name of its bytes.
type libVersion struct {
	uploader.LibraryEntry
	version string
}

// fetch returns the fetch of chunk i of e, starting it unless it is on its way or in memory;
// nil when it is kept on disk (it landed since the caller looked).
func (b *libBytes) fetch(e *libVersion, i int64) *flight {
	k := flightKey{e.version, i}
	b.mu.Lock()
	defer b.mu.Unlock()
	if fl := b.flights[k]; fl != nil {
		return fl
	}
	if b.fsys.opts.Chunks.Has(e.version, i) {
		return nil
	}
	fl := &flight{done: make(chan struct{})}
	b.flights[k] = fl
	go b.run(e, i, k, fl)
	return fl
}

// run fetches one chunk, hands it to its readers, then keeps it on disk.
func (b *libBytes) run(e *libVersion, i int64, k flightKey, fl *flight) {
	b.slots <- struct{}{}
	// Not a reader's context: a chunk fetched ahead serves the reads that come.
	ctx, cancel := context.WithTimeout(context.Background(), libFetchTimeout)
	off := i * libChunk
	buf := make([]byte, min(int64(libChunk), e.Size-off))
	n, err := b.fsys.opts.Objects.ReadAt(ctx, e.MediaID, buf, off)
	cancel()
	<-b.slots // the next fetch goes on while this one is written
	whole := err == nil || errors.Is(err, io.EOF)
	switch {
	case whole && n == len(buf):
		err = nil
	case whole:
		// A body cut short, or an object shorter than its listing: never kept, never served
		// as if whole.
		err = fmt.Errorf("the object of asset %s gave %d bytes at %d, its listing says it holds %d: %w", e.MediaID, n, off, e.Size, io.ErrUnexpectedEOF)
	}
	fl.data, fl.err = buf[:n], err
	close(fl.done) // its readers go on while it is written
	if err == nil {
		if perr := b.fsys.opts.Chunks.Put(e.version, i, buf); perr != nil {
			// Served all the same; fetched again next time.
			b.fsys.opts.Log.Debug("a fetched chunk is not kept", "media_id", e.MediaID, "err", perr)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		delete(b.flights, k) // asked for again by the next read
		return
	}
	b.recent = append(b.recent, k)
	if len(b.recent) > libKept {
		delete(b.flights, b.recent[0])
		b.recent = b.recent[1:]
	}
}

// inMemory returns chunk k's fetch if it is under way or was lately done.
func (b *libBytes) inMemory(k flightKey) *flight {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flights[k]
}

// ahead starts fetching the chunks from first to last of e that are neither kept nor on
// their way.
func (b *libBytes) ahead(e *libVersion, first, last int64) {
	for i := first; i <= last && i*libChunk < e.Size; i++ {
		b.fetch(e, i)
	}
}

// readAt fills p with e's bytes from off.
func (b *libBytes) readAt(ctx context.Context, e *libVersion, p []byte, off int64) (int, error) {
	if off >= e.Size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), e.Size-off)]
	n := 0
	for n < len(p) {
		at := off + int64(n)
		i, within := at/libChunk, at%libChunk
		want := p[n:min(len(p), n+int(libChunk-within))]
		got, err := b.readChunk(ctx, e, i, want, within)
		n += got
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readChunk fills p from chunk i of e at within: from memory, from the cache, else fetched.
func (b *libBytes) readChunk(ctx context.Context, e *libVersion, i int64, p []byte, within int64) (int, error) {
	fl := b.inMemory(flightKey{e.version, i})
	for try := 0; fl == nil; try++ {
		if f, err := b.fsys.opts.Chunks.Open(e.version, i); err == nil {
			n, err := f.ReadAt(p, within)
			f.Close()
			if n == len(p) {
				return n, nil
			}
			// A chunk cut short (its file touched behind the mount's back): fetched again.
			b.fsys.opts.Log.Debug("a kept chunk is short; fetching it again", "media_id", e.MediaID, "err", err)
			b.fsys.opts.Chunks.Drop(e.MediaID, "")
		}
		if fl = b.fetch(e, i); fl == nil && try > 0 {
			return 0, fmt.Errorf("chunk %d of asset %s is neither kept nor fetched", i, e.MediaID)
		}
	}
	select {
	case <-fl.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if fl.err != nil {
		return 0, fl.err
	}
	if within >= int64(len(fl.data)) {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, fl.data[within:])
	if n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

// libHandle is a library file open for reading.
type libHandle struct {
	fsys *FS        // read only
	e    libVersion // read only: the asset as it was when opened

	mu   sync.Mutex
	next int64 // protected by mu: where a sequential reader reads next
	// run is how many reads in a row went on from where the last stopped: read-ahead starts
	// at the second and grows with it, so that a probe of a file's head (file, a thumbnailer)
	// fetches one chunk, not five.
	run int // protected by mu
}

func (f *FS) newLibHandle(e uploader.LibraryEntry) *libHandle {
	return &libHandle{fsys: f, e: libVersion{e, e.Version()}, next: -1}
}

var _ = (gofs.FileReader)((*libHandle)(nil))

func (h *libHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	if off == h.next {
		h.run++
	} else {
		h.run = 0
	}
	h.next = off + int64(len(dest))
	ahead := min(h.run, libReadAhead)
	h.mu.Unlock()
	b := h.fsys.lib
	if ahead > 0 {
		i := (off + int64(len(dest)) - 1) / libChunk
		b.ahead(&h.e, i+1, i+int64(ahead))
	}
	n, err := b.readAt(ctx, &h.e, dest, off)
	if err != nil {
		p := (&libFileNode{fsys: h.fsys, mediaID: h.e.MediaID}).path()
		if ctx.Err() != nil {
			return nil, syscall.EINTR
		}
		errno := syscall.EIO
		var en syscall.Errno
		if errors.As(err, &en) {
			errno = en
		}
		h.fsys.opts.Log.Warn("a library file could not be read: its bytes are fetched from IMS, which did not give them",
			"path", p, "media_id", h.e.MediaID, "offset", off, "errno", unix.ErrnoName(errno), "err", err)
		h.fsys.opts.Observer.Failed("read", errnoName(errno))
		return nil, errno
	}
	return fuse.ReadResultData(dest[:n]), gofs.OK
}

// LibraryCachedBytes is how many bytes of library/'s files the cache holds.
func (f *FS) LibraryCachedBytes() int64 { return f.libSize() }

// libSize is how many bytes of the library's files the cache holds.
func (f *FS) libSize() int64 {
	if f.opts.Chunks == nil {
		return 0
	}
	return f.opts.Chunks.Size()
}

// trimLibrary keeps the library's fetched bytes within limit.
func (f *FS) trimLibrary(limit int64) {
	if f.opts.Chunks == nil {
		return
	}
	if freed := f.opts.Chunks.Trim(max(limit, 0)); freed > 0 {
		f.opts.Log.Debug("fetched library bytes dropped from the cache", "bytes", freed)
	}
}

// libShare is the part of the cache's volume the library's fetched bytes may hold when the
// cache has no bound (--cache-max-size), and never more than half of what is free: a reader of
// the library does not fill the disk.
const libShare = 10

// volumeShare is what the library's fetched bytes may hold of the cache's volume.
func (f *FS) volumeShare() int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(f.opts.Store.Dir(), &st); err != nil {
		return 1 << 30
	}
	total, free := int64(st.Blocks)*st.Frsize, int64(st.Bavail)*st.Frsize
	return min(total/libShare, (free+f.libSize())/2)
}
