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
)

// libBytes fetches and keeps the library's bytes; one per file system.
type libBytes struct {
	fsys *FS // read only

	mu      sync.Mutex
	flights map[flightKey]*flight // protected by mu: chunks being fetched
}

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

// fetch returns the fetch of chunk i of e, starting it unless it is on its way or kept.
func (b *libBytes) fetch(e uploader.LibraryEntry, i int64) *flight {
	k := flightKey{e.Version, i}
	b.mu.Lock()
	defer b.mu.Unlock()
	if fl := b.flights[k]; fl != nil {
		return fl
	}
	fl := &flight{done: make(chan struct{})}
	b.flights[k] = fl
	go func() {
		defer close(fl.done)
		// Not a reader's context: a chunk fetched ahead serves the reads that come.
		ctx, cancel := context.WithTimeout(context.Background(), libFetchTimeout)
		defer cancel()
		off := i * libChunk
		buf := make([]byte, min(int64(libChunk), e.Size-off))
		n, err := b.fsys.opts.Objects.ReadAt(ctx, e.MediaID, buf, off)
		if err == nil || errors.Is(err, io.EOF) && n == len(buf) {
			err = nil
			if perr := b.fsys.opts.Chunks.Put(e.Version, i, buf); perr != nil {
				// Served all the same; fetched again next time.
				b.fsys.opts.Log.Debug("a fetched chunk is not kept", "media_id", e.MediaID, "err", perr)
			}
		} else if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("the object of asset %s ended at %d bytes, its listing says %d: %w", e.MediaID, off+int64(n), e.Size, io.ErrUnexpectedEOF)
		}
		fl.data, fl.err = buf[:n], err
		b.mu.Lock()
		delete(b.flights, k)
		b.mu.Unlock()
	}()
	return fl
}

// ahead starts fetching the chunks from first to last of e that are neither kept nor on
// their way.
func (b *libBytes) ahead(e uploader.LibraryEntry, first, last int64) {
	for i := first; i <= last && i*libChunk < e.Size; i++ {
		if !b.fsys.opts.Chunks.Has(e.Version, i) {
			b.fetch(e, i)
		}
	}
}

// readAt fills p with e's bytes from off.
func (b *libBytes) readAt(ctx context.Context, e uploader.LibraryEntry, p []byte, off int64) (int, error) {
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

// readChunk fills p from chunk i of e at within: from the cache, else fetched.
func (b *libBytes) readChunk(ctx context.Context, e uploader.LibraryEntry, i int64, p []byte, within int64) (int, error) {
	if f, err := b.fsys.opts.Chunks.Open(e.Version, i); err == nil {
		n, err := f.ReadAt(p, within)
		f.Close()
		if n == len(p) {
			return n, nil
		}
		// A chunk cut short (its file touched behind the mount's back): fetched again.
		b.fsys.opts.Log.Debug("a kept chunk is short; fetching it again", "media_id", e.MediaID, "err", err)
	}
	fl := b.fetch(e, i)
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
	fsys *FS                   // read only
	e    uploader.LibraryEntry // read only: the asset as it was when opened

	mu   sync.Mutex
	next int64 // protected by mu: where a sequential reader reads next
}

func (f *FS) newLibHandle(e uploader.LibraryEntry) *libHandle {
	return &libHandle{fsys: f, e: e}
}

var _ = (gofs.FileReader)((*libHandle)(nil))

func (h *libHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	sequential := off == h.next
	h.next = off + int64(len(dest))
	h.mu.Unlock()
	b := h.fsys.lib
	if sequential {
		i := (off + int64(len(dest)) - 1) / libChunk
		b.ahead(h.e, i+1, i+libReadAhead)
	}
	n, err := b.readAt(ctx, h.e, dest, off)
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
// cache has no bound (--cache-max-size): a reader of the library does not fill the disk.
const libShare = 10

// volumeShare is a libShare-th of the cache volume's size.
func (f *FS) volumeShare() int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(f.opts.Store.Dir(), &st); err != nil {
		return 1 << 30
	}
	return int64(st.Blocks) * st.Bsize / libShare
}
