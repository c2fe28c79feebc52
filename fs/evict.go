package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/imsfs/imsfs/cache"
)

// Objects reaches the objects of uploaded files: to read back the bytes of files whose local
// copy was evicted, and for the signed URL user.ims.file_url shows.
type Objects interface {
	ReadAt(ctx context.Context, mediaID string, p []byte, off int64) (int, error)
	Fetch(ctx context.Context, mediaID string, w io.Writer) (int64, error)
	// URL returns a signed URL of the asset's file that opens as it is, and when it expires.
	URL(ctx context.Context, mediaID string) (string, time.Time, error)
	// CachedURL returns the signed URL URL would, if it has one at hand, without asking.
	CachedURL(mediaID string) string
}

// evictEvery is how often the cache is measured against --cache-max-size.
const evictEvery = time.Second

// evictLoop keeps the spool under Options.CacheMaxSize until stop is closed. The measure is
// the count of cached bytes the nodes keep, so a second with nothing to evict costs nothing; a
// pass that finds nothing to evict waits longer before the next.
func (f *FS) evictLoop(stop <-chan struct{}) {
	wait := evictEvery
	for {
		select {
		case <-stop:
			return
		case <-time.After(wait):
		}
		if f.evictOnce() {
			wait = evictEvery
		} else {
			wait = min(2*wait, time.Minute)
		}
	}
}

// evictOnce evicts ready files that no one has open, least recently used first, until the
// cache is a tenth under the limit. Only a file whose bytes are an asset in IMS is evicted, so
// nothing is lost: its bytes come back from the object. The library's fetched bytes go first:
// they are fetched again at will, and no upload waits on them. It reports whether the cache is
// within its limit afterwards.
func (f *FS) evictOnce() bool {
	limit := f.opts.CacheMaxSize
	if limit <= 0 {
		f.trimLibrary(f.volumeShare())
		return true
	}
	total := f.cached.Load() + f.libSize()
	if total <= limit {
		return true
	}
	// Not below a tenth of the bound: uploads that hold the cache would leave a reader none, and
	// each read would fetch its chunk again.
	f.trimLibrary(max(limit-limit/10-f.cached.Load(), limit/10))
	type candidate struct {
		n    *fileNode
		p    string
		used time.Time
	}
	var cands []candidate
	f.walkFiles(func(n *fileNode, p string) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.open > 0 || n.modified || n.evicted || n.gone || n.restoring != nil {
			return
		}
		cands = append(cands, candidate{n, p, n.lastUse})
	})
	sort.Slice(cands, func(i, j int) bool { return cands[i].used.Before(cands[j].used) })
	target := limit - limit/10
	for _, c := range cands {
		if f.cached.Load()+f.libSize() <= target {
			break
		}
		c.n.evict(c.p)
	}
	if total = f.cached.Load() + f.libSize(); total > limit {
		f.opts.Log.Warn("the cache is over --cache-max-size: the rest is not uploaded yet or is open", "bytes", total, "limit", limit)
		return false
	}
	return true
}

// walkFiles calls fn for every file node of the tree.
func (f *FS) walkFiles(fn func(n *fileNode, p string)) {
	var walk func(in *gofs.Inode, p string)
	walk = func(in *gofs.Inode, p string) {
		for name, c := range in.Children() {
			switch n := c.Operations().(type) {
			case *fileNode:
				fn(n, join(p, name))
			case *dirNode:
				walk(c, join(p, name))
			}
		}
	}
	walk(f.root.EmbeddedInode(), "")
}

// evict drops the spool of a ready file no one has open.
func (n *fileNode) evict(p string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.open > 0 || n.modified || n.evicted || n.gone || n.restoring != nil {
		return
	}
	if _, err := n.fsys.opts.Uploads.Apply(n.id, cache.Event{Kind: cache.Evicted}); err != nil {
		if !errors.Is(err, cache.ErrNotEvictable) && !errors.Is(err, cache.ErrBadTransition) {
			n.fsys.opts.Log.Error("evict", "path", p, "err", err)
		}
		return
	}
	if err := os.Remove(n.fsys.opts.Store.SpoolPath(n.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.fsys.opts.Log.Error("evict: remove the spool", "path", p, "err", err)
	}
	n.fsys.cached.Add(-n.size)
	n.evicted = true
	n.fsys.opts.Observer.Evicted(n.size)
	n.fsys.opts.Log.Info("evicted from the cache; reads come from the object", "path", p, "bytes", n.size)
}

// lockRestored returns with n.mu held and the file's bytes in its spool: an evicted file is
// restored first, without the lock, so that stat and reads go on meanwhile.
func (n *fileNode) lockRestored(ctx context.Context, p string, empty bool) syscall.Errno {
	for {
		n.mu.Lock()
		if !n.evicted && n.restoring == nil {
			return gofs.OK
		}
		n.mu.Unlock()
		if errno := n.restore(ctx, p, empty); errno != gofs.OK {
			return errno
		}
	}
}

// restore brings an evicted file's bytes back into its spool before they change: the whole
// object, or nothing when the change truncates it to zero. One restore runs at a time; others
// wait for it. The download holds no lock.
func (n *fileNode) restore(ctx context.Context, p string, empty bool) syscall.Errno {
	n.mu.Lock()
	if ch := n.restoring; ch != nil {
		n.mu.Unlock()
		select {
		case <-ch:
			return gofs.OK
		case <-ctx.Done():
			return syscall.EINTR
		}
	}
	if !n.evicted {
		n.mu.Unlock()
		return gofs.OK
	}
	done := make(chan struct{})
	n.restoring = done
	size := n.size
	n.mu.Unlock()

	errno := n.fetch(ctx, p, empty, size)

	n.mu.Lock()
	if errno == gofs.OK {
		n.evicted = false
		if !n.gone {
			n.fsys.cached.Add(n.size)
		}
	}
	n.restoring = nil
	close(done)
	n.mu.Unlock()
	return errno
}

// fetch downloads the object of an evicted file into its spool, and records it restored.
func (n *fileNode) fetch(ctx context.Context, p string, empty bool, size int64) syscall.Errno {
	rec, err := n.fsys.opts.Store.GetID(n.id)
	if err != nil {
		return n.fsys.fail("restore", p, err)
	}
	spool := n.fsys.opts.Store.SpoolPath(n.id)
	tmp, err := os.CreateTemp(path.Dir(spool), path.Base(spool)+".fetch-*")
	if err != nil {
		return n.fsys.fail("restore", p, err)
	}
	defer os.Remove(tmp.Name())
	if !empty {
		if n.fsys.opts.Objects == nil {
			tmp.Close()
			return n.fsys.refuse("restore", p, syscall.EIO, "the file was evicted and this mount cannot read objects back")
		}
		got, err := n.fsys.opts.Objects.Fetch(ctx, rec.MediaID, tmp)
		if err == nil && got != size {
			err = fmt.Errorf("the object of %s has %d bytes, the file %d", rec.MediaID, got, size)
		}
		if err != nil && ctx.Err() != nil {
			// Interrupted (a signal to the caller): the kernel restarts the call, and the
			// restore with it.
			tmp.Close()
			return syscall.EINTR
		}
		if err != nil {
			tmp.Close()
			return n.fsys.refuse("restore", p, syscall.EIO, "cannot fetch the evicted file back from its object: "+err.Error())
		}
	} else if err := tmp.Truncate(size); err != nil {
		// The bytes are about to be truncated away: a sparse file of the size will do.
		tmp.Close()
		return n.fsys.fail("restore", p, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return n.fsys.fail("restore", p, err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), spool); err != nil {
		return n.fsys.fail("restore", p, err)
	}
	n.fsys.opts.Store.NewName()
	if _, err := n.fsys.opts.Uploads.Apply(n.id, cache.Event{Kind: cache.Restored}); err != nil && !errors.Is(err, cache.ErrNotFound) {
		return n.fsys.fail("restore", p, err)
	}
	n.fsys.opts.Log.Info("fetched back into the cache", "path", p, "bytes", size)
	return gofs.OK
}

// restoreMoved fetches back the evicted files under src (a file or a folder) when a move takes
// them to a folder of another Type: they will be uploaded again as new assets.
func (f *FS) restoreMoved(ctx context.Context, src *gofs.Inode, from, toDir string) syscall.Errno {
	fromRule, _ := f.opts.Mapping.RuleFor(path.Dir(from))
	toRule, _ := f.opts.Mapping.RuleFor(toDir)
	if fromRule.Type == toRule.Type {
		return gofs.OK
	}
	var walk func(in *gofs.Inode, p string) syscall.Errno
	walk = func(in *gofs.Inode, p string) syscall.Errno {
		if n, ok := in.Operations().(*fileNode); ok {
			return n.restore(ctx, p, false)
		}
		for name, c := range in.Children() {
			if errno := walk(c, p+"/"+name); errno != gofs.OK {
				return errno
			}
		}
		return gofs.OK
	}
	return walk(src, from)
}

// lookupFile returns the file node at p, or nil.
func (f *FS) lookupFile(p string) *fileNode {
	dir := f.lookupDir(path.Dir(p))
	if dir == nil {
		return nil
	}
	c := dir.GetChild(path.Base(p))
	if c == nil {
		return nil
	}
	n, _ := c.Operations().(*fileNode)
	return n
}

// readRemote serves a read of an evicted file from its object.
func (h *handle) readRemote(ctx context.Context, dest []byte, off int64) ([]byte, syscall.Errno) {
	n := h.node
	got, err := h.remote.ReadAt(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		if ctx.Err() != nil {
			return nil, syscall.EINTR
		}
		return nil, n.fsys.refuse("read", n.path(), syscall.EIO, "cannot read the evicted file from its object: "+strings.TrimSpace(err.Error()))
	}
	return dest[:got], gofs.OK
}
