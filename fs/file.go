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
	atime    time.Time // protected by mu: as utimensat set it; zero shows mtime
	ctime    time.Time // protected by mu
	writers  int       // protected by mu: open handles that may write
	open     int       // protected by mu: open handles, readers included
	lastUse  time.Time // protected by mu: last open, for eviction
	modified bool      // protected by mu: changed since it was last queued
	gone     bool      // protected by mu: unlinked or replaced; open handles still work
	// protected by mu: renamed over a sidecar, which took its fields. The kernel takes this node
	// for the sidecar until it is told (after the rename is answered): ESTALE makes it look the
	// name up again, and find the mount's own.
	tookSidecar bool
	evicted     bool          // protected by mu: the spool is gone; the bytes are in the object
	restoring   chan struct{} // protected by mu: closed when a restore under way ends
	newSpool    bool          // protected by mu: its spool file's name is not yet durable in the spool directory
	direct      int           // protected by mu: open writers whose writes the kernel passes straight to the spool
	// backed counts the open handles the kernel may pass straight to the spool: the direct
	// writers, and every handle opened while one was, readers too. go-fuse gives each open of
	// a node the backing file an earlier one registered, until the last of them is released;
	// a writer opened then is written straight to the spool, so imsfs takes it as direct.
	backed int // protected by mu
	// settled is the spool as it was when the first writer of the session opened it: a spool
	// found otherwise while a writer holds the file was written without imsfs (in the moment
	// go-fuse still gives the backing file of a handle imsfs has released), a change all the same.
	settled   cache.SpoolID // protected by mu
	held      bool          // protected by mu: the file waited for its upload when a writer opened it; held until its release
	seenMtime time.Time     // protected by mu: the spool's mtime when last looked at, while direct > 0
	// seqEnd is where the session's next write goes if the file is written from its start in
	// order (its parts then go up while it is written); -1 once a write went elsewhere.
	seqEnd  int64 // protected by mu
	damaged error // protected by mu: a write of this session failed (ENOSPC…); it must not be uploaded
}

func (n *fileNode) path() string { return relPath(n.EmbeddedInode()) }

// _setSize sets the size, keeping the file system's count of cached bytes. Call with n.mu held.
func (n *fileNode) _setSize(size int64) {
	if !n.evicted && !n.gone {
		n.fsys.cached.Add(size - n.size)
	}
	n.size = size
}

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
	if !n.atime.IsZero() {
		a.Atime, a.Atimensec = timespec(n.atime)
	}
	a.Owner = fuse.Owner{Uid: n.fsys.uid, Gid: n.fsys.gid}
}

var _ = (gofs.NodeGetattrer)((*fileNode)(nil))

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tookSidecar && fh == nil {
		return syscall.ESTALE
	}
	n._seeDirectWrites()
	n.fillAttr(&out.Attr)
	return gofs.OK
}

// _seeDirectWrites takes the size and mtime of the spool, for a file the kernel may write
// straight to it (passthrough): no write request says what changed. That is any file with a
// writer open, not only one with a handle imsfs made direct: go-fuse gives every open of a node
// the backing file an earlier open registered while it is in use, and its last use may end
// after imsfs has counted that handle closed (TestAWriterOpenedAsADirectOneClosesIsSeen).
// Call with n.mu held.
func (n *fileNode) _seeDirectWrites() {
	if n.evicted || n.direct == 0 && n.writers == 0 {
		return
	}
	st, err := cache.SpoolIDAt(n.fsys.opts.Store.SpoolPath(n.id))
	if err != nil {
		return
	}
	n._setSize(st.Size)
	// A write changes the spool's mtime; a time set since (touch, cp -p) stands until one does.
	if m := time.Unix(st.Mtime.Unix()); !m.Equal(n.seenMtime) {
		n.seenMtime, n.mtime, n.ctime = m, m, m
	}
	if !n.modified && !n.gone && n.writers > 0 && n.settled != (cache.SpoolID{}) && st != n.settled {
		// Written without a request to imsfs: a write session all the same, ended by the
		// writers' release.
		n.fsys.opts.Log.Debug("a write the kernel passed straight to the spool is seen", "path", n.path())
		n._modify(n.path())
	}
}

var _ = (gofs.NodeSetattrer)((*fileNode)(nil))

// Setattr handles truncate (a change of content), chmod and utimens. An ftruncate truncates
// through its handle, which works on a file that was unlinked or replaced meanwhile.
func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	p := n.path()
	if errno := n.fsys.checkOwner(p, in); errno != gofs.OK {
		return errno
	}
	if size, ok := in.GetSize(); ok {
		h, _ := fh.(*handle)
		if errno := n.truncate(ctx, p, int64(size), h); errno != gofs.OK {
			return errno
		}
	}
	n.mu.Lock()
	n._seeDirectWrites() // the writes so far are older than what is set now
	if m, ok := in.GetMode(); ok {
		n.mode = m & 0o7777
		n.ctime = time.Now()
	}
	if t, ok := in.GetMTime(); ok {
		n.mtime = t
	}
	if t, ok := in.GetATime(); ok {
		n.atime = t
	}
	meta := in.Valid&(fuse.FATTR_MODE|fuse.FATTR_MTIME|fuse.FATTR_ATIME) != 0
	mode, mtime, atime, gone := n.mode, n.mtime, n.atime, n.gone
	// In a write session with a writer open (touch, cp -p, tar), the last close writes the
	// mode and times with the rest of the record: no commit of its own.
	deferred := n.modified && n.writers > 0
	n.fillAttr(&out.Attr)
	n.mu.Unlock()
	if meta && !gone && !deferred {
		if err := n.fsys.opts.Store.SetAttr(n.id, mode, mtime, atime); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return n.fsys.fail("setattr", p, err)
		}
	}
	return gofs.OK
}

// truncate sets the file's size, through h's descriptor when there is one (ftruncate), else
// through the spool. Without an open writer (truncate(1) on a closed file) the change is
// queued for upload at once, as a close would.
func (n *fileNode) truncate(ctx context.Context, p string, size int64, h *handle) syscall.Errno {
	if errno := n.lockRestored(ctx, p, size == 0); errno != gofs.OK {
		return errno
	}
	defer n.mu.Unlock()
	if errno := n._modify(p); errno != gofs.OK {
		return errno
	}
	var err error
	if h != nil && h.f != nil && h.write {
		err = h.f.Truncate(size)
	} else {
		err = os.Truncate(n.fsys.opts.Store.SpoolPath(n.id), size)
	}
	if err != nil {
		return n.fsys.fail("truncate", p, err)
	}
	if size != n.seqEnd {
		n.seqEnd = -1
	}
	n._setSize(size)
	n.mtime = time.Now()
	n.ctime = n.mtime
	if n.writers > 0 {
		return gofs.OK // the writers' closes queue it
	}
	return n._queue(p)
}

// _modify starts a write session on the first change: the file's bytes change, so any upload
// of the old ones is void (the uploader is told by the event). Call with n.mu held.
func (n *fileNode) _modify(p string) syscall.Errno {
	if n.modified || n.gone {
		return gofs.OK
	}
	if _, err := n.fsys.opts.Uploads.Apply(n.id, cache.Event{Kind: cache.Wrote}); err != nil {
		return n.fsys.fail("write", p, err)
	}
	n.modified, n.damaged, n.seqEnd = true, nil, 0
	return gofs.OK
}

// _hold keeps a file that waits for its upload (queued, in its settle delay) from being
// uploaded while a writer holds it, though the writer has not written yet. Call with n.mu held.
func (n *fileNode) _hold(p string) {
	if n.gone {
		return
	}
	if rec, err := n.fsys.opts.Store.GetID(n.id); err != nil || rec.State != cache.Queued {
		return // nothing waits: an upload under way is proved against the spool at its end
	}
	if _, err := n.fsys.opts.Uploads.Apply(n.id, cache.Event{Kind: cache.Held}); err != nil {
		if !errors.Is(err, cache.ErrBadTransition) {
			n.fsys.opts.Log.Warn("a file opened for writing could not be held from its upload", "path", p, "err", err)
		}
		return
	}
	n.held = true
}

// _queue ends a write session: the record says queued (or skipped, for a name that cannot
// become an asset), and the uploader gets it after the settle delay. The store makes the
// spool's bytes durable before the record (cache/durable.go). Call with n.mu held.
func (n *fileNode) _queue(p string) syscall.Errno {
	if !n.modified && !n.held || n.gone {
		return gofs.OK
	}
	n.fsys.opts.Store.Written(n.id, n.newSpool, n.size)
	n.newSpool = false
	ev := cache.Event{Kind: cache.Closed, Size: n.size, Mode: n.mode, Mtime: n.mtime, Atime: n.atime, Due: time.Now().Add(n.fsys.opts.UploadDelay), Grouped: true}
	if n.damaged != nil {
		ev.Damage = n.damaged.Error()
	}
	rec, err := n.fsys.opts.Uploads.Apply(n.id, ev)
	if err != nil {
		return n.fsys.fail("close", p, err)
	}
	n.modified, n.held, n.settled = false, false, cache.SpoolID{}
	if rec.State != cache.Queued {
		n.fsys.opts.Log.Info("not uploaded", "path", p, "reason", rec.Error)
	}
	return gofs.OK
}

// remove is unlink: the record and spool go, a pending upload is cancelled. Open handles keep
// reading and writing the unlinked spool, as on a local disk.
func (n *fileNode) remove() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.fsys.opts.Uploads.Apply(n.id, cache.Event{Kind: cache.Unlinked}); err != nil && !errors.Is(err, cache.ErrNotFound) {
		return err
	}
	n._forget()
	if err := os.Remove(n.fsys.opts.Store.SpoolPath(n.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// forget marks a node whose record was replaced by a rename over it.
func (n *fileNode) forget() {
	n.mu.Lock()
	n._forget()
	n.mu.Unlock()
}

// _forget marks the node gone: its bytes no longer count in the cache. Call with n.mu held.
func (n *fileNode) _forget() {
	if !n.gone && !n.evicted {
		n.fsys.cached.Add(-n.size)
	}
	n.gone = true
}

var _ = (gofs.NodeOpener)((*fileNode)(nil))

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	n.mu.Lock()
	stale := n.tookSidecar
	n.mu.Unlock()
	if stale {
		return nil, 0, syscall.ESTALE
	}
	p := n.path()
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if !write {
		if h, errno, evicted := n.openEvicted(p); evicted {
			return h, 0, errno
		}
	}
	if errno := n.lockRestored(ctx, p, flags&syscall.O_TRUNC != 0); errno != gofs.OK {
		return nil, 0, errno
	}
	defer n.mu.Unlock()
	n.lastUse = time.Now()
	mode := os.O_RDONLY
	if write {
		mode = os.O_RDWR
	}
	// O_APPEND is left to the kernel, which sends each write at the end of the file.
	f, err := os.OpenFile(n.fsys.opts.Store.SpoolPath(n.id), mode, 0)
	if err != nil {
		return nil, 0, n.fsys.fail("open", p, err)
	}
	n.open++
	if !write {
		h := &handle{node: n, f: f}
		if n.backed > 0 {
			h.backed = true
			n.backed++
		}
		return h, 0, gofs.OK
	}
	h, errno := n._openWriter(p, f, flags)
	if errno != gofs.OK {
		return nil, 0, errno
	}
	return h, 0, gofs.OK
}

// openEvicted opens a reader of an evicted file, which reads its asset's object: its bytes are
// not here. evicted is false, and nothing is done, for a file whose bytes are.
func (n *fileNode) openEvicted(p string) (h gofs.FileHandle, errno syscall.Errno, evicted bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastUse = time.Now()
	if !n.evicted {
		return nil, gofs.OK, false
	}
	rec, err := n.fsys.opts.Store.GetID(n.id)
	if err != nil {
		return nil, n.fsys.fail("open", p, err), true
	}
	n.open++
	return &handle{node: n, remote: newRemoteReader(n.fsys.opts.Objects, rec.MediaID, n.size)}, gofs.OK, true
}

// _openWriter makes the handle of a writer of the file, whose spool f is open for it. On a
// refusal f is closed and the open undone. Call with n.mu held.
func (n *fileNode) _openWriter(p string, f *os.File, flags uint32) (*handle, syscall.Errno) {
	trunc := flags&syscall.O_TRUNC != 0
	if n.writers == 0 && !n.modified {
		// The first writer: the spool as it is now is what a write imsfs is not told of would
		// change; and a file that waits for its upload is held until this writer's release.
		if st, err := cache.SpoolIDOf(f); err == nil {
			n.settled = st
		}
		if !trunc || n.size == 0 {
			n._hold(p)
		}
	}
	if trunc && n.size > 0 {
		if errno := n._truncateAtOpen(p, f); errno != gofs.OK {
			f.Close()
			n.open--
			return nil, errno
		}
	}
	n.writers++
	h := &handle{node: n, f: f, write: true}
	// A file truncated at open is new content from its start: the kernel may write it straight
	// to the spool. A later writer of a file the kernel passes straight to its spool (a direct
	// writer's, or one a handle opened meanwhile still holds) shares that spool.
	if trunc && n.fsys.directOK() || n.backed > 0 {
		if errno := n._openDirect(p, h); errno != gofs.OK {
			f.Close()
			n.open--
			n.writers--
			return nil, errno
		}
	}
	return h, gofs.OK
}

// _truncateAtOpen empties the file for an open with O_TRUNC: a change, which starts a write
// session. Call with n.mu held.
func (n *fileNode) _truncateAtOpen(p string, f *os.File) syscall.Errno {
	if errno := n._modify(p); errno != gofs.OK {
		return errno
	}
	if err := f.Truncate(0); err != nil {
		return n.fsys.fail("open", p, err)
	}
	n._setSize(0)
	n.mtime = time.Now()
	return gofs.OK
}

// _openDirect makes h a writer the kernel passes straight to the spool, which no write request
// will say it changes: the change starts now, and the first such writer's watch follows it.
// Call with n.mu held.
func (n *fileNode) _openDirect(p string, h *handle) syscall.Errno {
	if errno := n._modify(p); errno != gofs.OK {
		return errno
	}
	h.direct, h.backed = true, true
	n.direct++
	n.backed++
	if n.direct == 1 {
		if st, err := h.f.Stat(); err == nil {
			n.seenMtime = st.ModTime()
		}
		go n.watchDirect()
	}
	return gofs.OK
}

// handle is one open file: a descriptor of the spool, or, for a reader of an evicted file,
// the asset whose object it reads.
type handle struct {
	node   *fileNode
	f      *os.File      // nil when reading from the object
	remote *remoteReader // with f nil
	write  bool
	direct bool // the kernel writes through this handle straight to the spool (passthrough)
	backed bool // counted in its node's backed
}

var _ = (gofs.FilePassthroughFder)((*handle)(nil))

// PassthroughFd offers the spool to the kernel, which then reads and writes it without a
// request to imsfs: for a writer of new content only (see Open), since imsfs sees none of it.
func (h *handle) PassthroughFd() (int, bool) {
	if !h.direct || h.f == nil {
		return 0, false
	}
	return int(h.f.Fd()), true
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
		n._setSize(end)
	}
	n.mtime = time.Now()
	n.ctime = n.mtime
	if err != nil {
		n.damaged = err
	}
	grown := int64(-1)
	if n.seqEnd == off && err == nil && !n.gone {
		n.seqEnd, grown = off+int64(written), n.size
	} else {
		n.seqEnd = -1
	}
	n.mu.Unlock()
	if err != nil {
		return uint32(written), n.fsys.fail("write", n.path(), err)
	}
	if grown >= 0 {
		n.fsys.opts.Uploads.Growing(n.id, grown)
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
		n._setSize(end)
	}
	n.mtime = time.Now()
	n.ctime = n.mtime
	return gofs.OK
}

var _ = (gofs.FileFlusher)((*handle)(nil))

// Flush runs on every close(2) of a descriptor, and only there: a child that inherited the
// writer's descriptor and exits, a dup closed, a preview its writer started all send one while
// the writer goes on. So a Flush never ends a write session (Release does, for the last writable
// handle); it keeps what a close promises of durability, cache/durable.go's: nothing a close
// returned for is lost to a killed mount (the next mount takes a file left writing as closed by
// a writer that is gone); after a power loss no more than a local disk loses; with
// --sync-on-close, nothing (the bytes, the spool's name and the record are fsynced before it
// returns).
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	if !h.write || h.f == nil {
		return gofs.OK
	}
	n := h.node
	strict := n.fsys.opts.SyncOnClose
	if strict {
		if err := h.f.Sync(); err != nil {
			n.mu.Lock()
			n.damaged = err
			n.mu.Unlock()
			return n.fsys.fail("close", n.path(), err)
		}
	}
	n.mu.Lock()
	n._seeDirectWrites()
	if n.modified && !n.gone {
		n.fsys.opts.Store.Written(n.id, n.newSpool, n.size)
		n.newSpool = false
	}
	n.mu.Unlock()
	if strict {
		if err := n.fsys.opts.Store.Sync(); err != nil {
			return n.fsys.fail("close", n.path(), err)
		}
	}
	return gofs.OK
}

// _checkDirectSpace marks the session damaged when the kernel wrote through h without imsfs
// while the cache volume was (nearly) full: a write a full disk refused went back to the writer
// alone, so the spool may be short. Call with n.mu held.
func (n *fileNode) _checkDirectSpace(h *handle) {
	if h.direct && n.damaged == nil && n.modified && n.fsys.spaceLow() {
		n.damaged = fmt.Errorf("the cache volume was full while it was written: %w", syscall.ENOSPC)
		n.fsys.opts.Log.Warn("the cache volume is full: a file written straight to its spool may be short, so it is not uploaded", "path", n.path(), "errno", "ENOSPC")
	}
}

var _ = (gofs.FileFsyncer)((*handle)(nil))

// Fsync makes the file durable at once, and its record with it (a record and the bytes it
// describes go together): an application's fsync(2) is honoured fully.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if h.f == nil {
		return gofs.OK
	}
	n := h.node
	if err := h.f.Sync(); err != nil {
		return n.fsys.fail("fsync", n.path(), err)
	}
	n.mu.Lock()
	newName := n.newSpool
	n.newSpool = false
	n.mu.Unlock()
	if newName {
		n.fsys.opts.Store.NewName()
	}
	if err := n.fsys.opts.Store.Sync(); err != nil {
		return n.fsys.fail("fsync", n.path(), err)
	}
	return gofs.OK
}

var _ = (gofs.FileReleaser)((*handle)(nil))

// Release ends a handle: the kernel sends it once no descriptor, no child that inherited one and
// no mapping of this open file is left. The release of the last writable handle ends the write
// session: the file is queued, and its settle delay counts from here. The kernel ignores what
// Release answers, so a session that cannot be recorded now is tried again in the background
// until it holds (a killed mount leaves it writing, which the next mount takes as closed).
func (h *handle) Release(ctx context.Context) syscall.Errno {
	if h.f != nil {
		defer h.f.Close()
	}
	n := h.node
	n.mu.Lock()
	defer n.mu.Unlock()
	n.open--
	if h.backed {
		n.backed--
	}
	if !h.write {
		return gofs.OK
	}
	n._seeDirectWrites()
	n._checkDirectSpace(h)
	if h.direct {
		n.direct--
	}
	n.writers--
	if n.writers > 0 || !n.modified && !n.held {
		return gofs.OK
	}
	if errno := n._queue(n.path()); errno != gofs.OK {
		go n.queueLater()
	}
	return gofs.OK
}

// queueLater tries to end the write session of a file whose last close could not be recorded,
// until it is recorded or the file changes again. It holds the node's lock only per try.
func (n *fileNode) queueLater() {
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		select {
		case <-time.After(wait):
		case <-n.fsys.stop:
			return // the next mount queues it
		}
		n.mu.Lock()
		done := n.writers > 0 || !n.modified && !n.held || n.gone || n._queue(n.path()) == gofs.OK
		n.mu.Unlock()
		if done {
			return
		}
	}
}

var _ = (gofs.FileGetattrer)((*handle)(nil))

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.node.Getattr(ctx, nil, out)
}
