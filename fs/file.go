package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/cache"
)

// fileNode is a file: its bytes live in the spool file of record id.
//
// A write session starts with the first change (write, truncate) after the file was last handed
// to the uploader, and ends when the last writer closes it: only then is it queued. Writes touch
// the spool and these fields, never the store, so saving runs at local-disk speed.
type fileNode struct {
	gofs.Inode
	fsys *FS    // read only
	id   uint64 // read only: the record and spool

	mu       sync.Mutex
	size     int64     // protected by mu
	mode     uint32    // protected by mu: permission bits
	mtime    time.Time // protected by mu
	ctime    time.Time // protected by mu
	writers  int       // protected by mu: open handles that may write
	open     int       // protected by mu: open handles, readers included
	lastUse  time.Time // protected by mu: last open, for eviction
	modified bool      // protected by mu: changed since it was last queued
	gone     bool      // protected by mu: unlinked or replaced; open handles still work
	evicted  bool      // protected by mu: the spool is gone; the bytes are in the object
	damaged  error     // protected by mu: a write of this session failed (ENOSPC…); it must not be uploaded
}

func (n *fileNode) path() string { return relPath(n.EmbeddedInode()) }

// fillAttr fills a FUSE attribute. Call with n.mu held, or before n is shared.
func (n *fileNode) fillAttr(a *fuse.Attr) {
	a.Mode = syscall.S_IFREG | n.mode
	a.Nlink = 1
	if n.gone {
		a.Nlink = 0
	}
	a.Size = uint64(n.size)
	a.Blocks = (a.Size + 511) / 512
	// A large block size makes cp and friends write in large chunks.
	a.Blksize = 1 << 20
	a.Mtime, a.Mtimensec = timespec(n.mtime)
	a.Ctime, a.Ctimensec = timespec(n.ctime)
	a.Atime, a.Atimensec = a.Mtime, a.Mtimensec
	a.Owner = fuse.Owner{Uid: n.fsys.uid, Gid: n.fsys.gid}
}

var _ = (gofs.NodeGetattrer)((*fileNode)(nil))

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fillAttr(&out.Attr)
	return gofs.OK
}

var _ = (gofs.NodeSetattrer)((*fileNode)(nil))

// Setattr handles truncate (a change of content), chmod and utimens.
func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	p := n.path()
	if errno := n.fsys.checkOwner(p, in); errno != gofs.OK {
		return errno
	}
	if size, ok := in.GetSize(); ok {
		if errno := n.truncate(p, int64(size)); errno != gofs.OK {
			return errno
		}
	}
	n.mu.Lock()
	if m, ok := in.GetMode(); ok {
		n.mode = m & 0o7777
		n.ctime = time.Now()
	}
	if t, ok := in.GetMTime(); ok {
		n.mtime = t
	}
	meta := in.Valid&(fuse.FATTR_MODE|fuse.FATTR_MTIME) != 0
	mode, mtime, gone := n.mode, n.mtime, n.gone
	n.fillAttr(&out.Attr)
	n.mu.Unlock()
	if meta && !gone {
		if _, err := n.fsys.opts.Store.Update(n.id, func(r *cache.Record) error {
			r.Mode, r.Mtime = mode, mtime
			return nil
		}); err != nil {
			return n.fsys.fail("setattr", p, err)
		}
	}
	return gofs.OK
}

// truncate sets the file's size, through the spool. Without an open writer (truncate(1) on a
// closed file) the change is queued for upload at once, as a close would.
func (n *fileNode) truncate(p string, size int64) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if errno := n._restore(context.Background(), p, size == 0); errno != gofs.OK {
		return errno
	}
	if errno := n._modify(p); errno != gofs.OK {
		return errno
	}
	if err := os.Truncate(n.fsys.opts.Store.SpoolPath(n.id), size); err != nil {
		return n.fsys.fail("truncate", p, err)
	}
	n.size = size
	n.mtime = time.Now()
	n.ctime = n.mtime
	if n.writers > 0 {
		return gofs.OK // the writers' closes make it durable and queue it
	}
	// No handle, so no Flush: make the truncation durable here before queueing.
	if err := syncFile(n.fsys.opts.Store.SpoolPath(n.id)); err != nil {
		return n.fsys.fail("truncate", p, err)
	}
	return n._queue(p)
}

// _modify starts a write session on the first change: the record goes to writing with a new
// generation, and any upload of the old content stops. Call with n.mu held.
func (n *fileNode) _modify(p string) syscall.Errno {
	if n.modified || n.gone {
		return gofs.OK
	}
	_, err := n.fsys.opts.Store.Update(n.id, func(r *cache.Record) error {
		r.State = cache.Writing
		r.NewGeneration()
		return nil
	})
	if err != nil {
		return n.fsys.fail("write", p, err)
	}
	n.fsys.opts.Uploads.Cancel(n.id)
	n.modified, n.damaged = true, nil
	return gofs.OK
}

// _queue ends a write session: the record says queued (or skipped, for a name that cannot
// become an asset), and the uploader gets it after the settle delay. The spool is durable
// already: every close(2) fsyncs it in Flush. Call with n.mu held.
func (n *fileNode) _queue(p string) syscall.Errno {
	if !n.modified || n.gone {
		return gofs.OK
	}
	due := time.Now().Add(n.fsys.opts.UploadDelay)
	size, mode, mtime, damaged := n.size, n.mode, n.mtime, n.damaged
	var queue bool
	rec, err := n.fsys.opts.Store.Update(n.id, func(r *cache.Record) error {
		r.Size, r.Mode, r.Mtime = size, mode, mtime
		queue = n.fsys.opts.Names.AdmitClosed(r, due, damaged)
		return nil
	})
	if err != nil {
		return n.fsys.fail("close", p, err)
	}
	n.modified = false
	if !queue {
		n.fsys.opts.Log.Info("not uploaded", "path", p, "reason", rec.Error)
		return gofs.OK
	}
	n.fsys.opts.Uploads.Schedule(n.id, due)
	return gofs.OK
}

// remove is unlink: the record and spool go, a pending upload is cancelled. Open handles keep
// reading and writing the unlinked spool, as on a local disk.
func (n *fileNode) remove() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.fsys.opts.Store.Delete(n.id); err != nil && !errors.Is(err, cache.ErrNotFound) {
		return err
	}
	n.gone = true
	n.fsys.opts.Uploads.Cancel(n.id)
	if err := os.Remove(n.fsys.opts.Store.SpoolPath(n.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// forget marks a node whose record was replaced by a rename over it.
func (n *fileNode) forget() {
	n.mu.Lock()
	n.gone = true
	n.mu.Unlock()
}

var _ = (gofs.NodeOpener)((*fileNode)(nil))

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	p := n.path()
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	mode := os.O_RDONLY
	if write {
		mode = os.O_RDWR
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastUse = time.Now()
	if n.evicted && !write {
		rec, err := n.fsys.opts.Store.GetID(n.id)
		if err != nil {
			return nil, 0, n.fsys.fail("open", p, err)
		}
		n.open++
		return &handle{node: n, mediaID: rec.MediaID}, 0, gofs.OK
	}
	if errno := n._restore(ctx, p, flags&syscall.O_TRUNC != 0); errno != gofs.OK {
		return nil, 0, errno
	}
	// O_APPEND is left to the kernel, which sends each write at the end of the file.
	f, err := os.OpenFile(n.fsys.opts.Store.SpoolPath(n.id), mode, 0)
	if err != nil {
		return nil, 0, n.fsys.fail("open", p, err)
	}
	n.open++
	if !write {
		return &handle{node: n, f: f}, 0, gofs.OK
	}
	if flags&syscall.O_TRUNC != 0 && n.size > 0 {
		if errno := n._modify(p); errno != gofs.OK {
			f.Close()
			n.open--
			return nil, 0, errno
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			n.open--
			return nil, 0, n.fsys.fail("open", p, err)
		}
		n.size, n.mtime = 0, time.Now()
	}
	n.writers++
	return &handle{node: n, f: f, write: true}, 0, gofs.OK
}

// handle is one open file: a descriptor of the spool, or, for a reader of an evicted file,
// the asset whose object it reads.
type handle struct {
	node    *fileNode
	f       *os.File // nil when reading from the object
	mediaID string   // with f nil
	write   bool
}

var _ = (gofs.FileReader)((*handle)(nil))

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.f == nil {
		data, errno := h.readRemote(ctx, dest, off)
		return fuse.ReadResultData(data), errno
	}
	n, err := h.f.ReadAt(dest, off)
	if err != nil && n == 0 && !errors.Is(err, io.EOF) {
		return nil, h.node.fsys.fail("read", h.node.path(), err)
	}
	return fuse.ReadResultData(dest[:n]), gofs.OK
}

var _ = (gofs.FileWriter)((*handle)(nil))

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n := h.node
	n.mu.Lock()
	if !n.modified && !n.gone {
		if errno := n._modify(n.path()); errno != gofs.OK {
			n.mu.Unlock()
			return 0, errno
		}
	}
	n.mu.Unlock()
	written, err := h.f.WriteAt(data, off)
	n.mu.Lock()
	if end := off + int64(written); end > n.size {
		n.size = end
	}
	n.mtime = time.Now()
	n.ctime = n.mtime
	n.mu.Unlock()
	if err != nil {
		n.mu.Lock()
		n.damaged = err
		n.mu.Unlock()
		return uint32(written), n.fsys.fail("write", n.path(), err)
	}
	return uint32(written), gofs.OK
}

var _ = (gofs.FileAllocater)((*handle)(nil))

// Allocate is fallocate(2): plain preallocation (mode 0) reserves spool space and may grow the
// file; punching holes, collapsing and zeroing ranges are refused.
func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	n := h.node
	p := n.path()
	if mode != 0 {
		return n.fsys.refuse("fallocate", p, syscall.EOPNOTSUPP, fmt.Sprintf("fallocate mode %#x (holes, collapse, zero range) is not supported; plain preallocation is", mode))
	}
	if !h.write {
		return syscall.EBADF
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if errno := n._modify(p); errno != gofs.OK {
		return errno
	}
	if err := unix.Fallocate(int(h.f.Fd()), 0, int64(off), int64(size)); err != nil {
		return n.fsys.fail("fallocate", p, err)
	}
	if end := int64(off + size); end > n.size {
		n.size = end
	}
	n.mtime = time.Now()
	n.ctime = n.mtime
	return gofs.OK
}

var _ = (gofs.FileFlusher)((*handle)(nil))

// Flush runs on every close(2) of a descriptor: the bytes written so far become durable, so that
// nothing a writer has closed is lost, whatever happens next.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	if !h.write || h.f == nil {
		return gofs.OK
	}
	if err := h.f.Sync(); err != nil {
		h.node.mu.Lock()
		h.node.damaged = err
		h.node.mu.Unlock()
		return h.node.fsys.fail("close", h.node.path(), err)
	}
	return gofs.OK
}

var _ = (gofs.FileFsyncer)((*handle)(nil))

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if h.f == nil {
		return gofs.OK
	}
	if err := h.f.Sync(); err != nil {
		return h.node.fsys.fail("fsync", h.node.path(), err)
	}
	return gofs.OK
}

var _ = (gofs.FileReleaser)((*handle)(nil))

// Release ends a handle; when the last writer goes, the file is queued for upload. Its bytes
// were made durable by Flush; if queueing fails here, the next mount queues the file.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	if h.f != nil {
		defer h.f.Close()
	}
	n := h.node
	n.mu.Lock()
	defer n.mu.Unlock()
	n.open--
	if !h.write {
		return gofs.OK
	}
	n.writers--
	if n.writers > 0 {
		return gofs.OK
	}
	return n._queue(n.path())
}

var _ = (gofs.FileGetattrer)((*handle)(nil))

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.node.Getattr(ctx, nil, out)
}

// syncFile fsyncs a file by name.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
