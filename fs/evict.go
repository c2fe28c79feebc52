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

// Objects reads back the bytes of files whose local copy was evicted: from their objects.
type Objects interface {
	ReadAt(ctx context.Context, mediaID string, p []byte, off int64) (int, error)
	Fetch(ctx context.Context, mediaID string, w io.Writer) (int64, error)
}

// evictEvery is how often the cache is measured against --cache-max-size.
const evictEvery = time.Second

// evictLoop keeps the spool under Options.CacheMaxSize until stop is closed.
func (f *FS) evictLoop(stop <-chan struct{}) {
	t := time.NewTicker(evictEvery)
	defer t.Stop()
	for {
		f.evictOnce()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// spoolUsage sums the sizes of the spool files (what the cache holds on disk).
func (f *FS) spoolUsage() int64 {
	entries, err := os.ReadDir(path.Dir(f.opts.Store.SpoolPath(0)))
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && !e.IsDir() {
			total += info.Size()
		}
	}
	return total
}

// evictOnce evicts ready files that no one has open, least recently used first, until the
// spool is a tenth under the limit. Only a file whose bytes are an asset in IMS is evicted, so
// nothing is lost: its bytes come back from the object.
func (f *FS) evictOnce() {
	limit := f.opts.CacheMaxSize
	if limit <= 0 {
		return
	}
	total := f.spoolUsage()
	if total <= limit {
		return
	}
	recs, err := f.opts.Store.Files()
	if err != nil {
		f.opts.Log.Error("evict: read the store", "err", err)
		return
	}
	type candidate struct {
		n    *fileNode
		rec  cache.Record
		used time.Time
	}
	var cands []candidate
	for _, r := range recs {
		if r.State != cache.Ready || r.Evicted || r.MetaPending || r.MediaID == "" {
			continue
		}
		n := f.lookupFile(r.Path)
		if n == nil {
			continue
		}
		n.mu.Lock()
		used := n.lastUse
		n.mu.Unlock()
		if used.IsZero() {
			used = r.Mtime
		}
		cands = append(cands, candidate{n, r, used})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].used.Before(cands[j].used) })
	target := limit - limit/10
	for _, c := range cands {
		if total <= target {
			break
		}
		if size, ok := c.n.evict(c.rec.Path); ok {
			total -= size
		}
	}
	if total > limit {
		f.opts.Log.Warn("the cache is over --cache-max-size: the rest is not uploaded yet or is open", "bytes", total, "limit", limit)
	}
}

var errNotEvictable = errors.New("not evictable now")

// evict drops the spool of a ready file no one has open, and reports the bytes it freed.
func (n *fileNode) evict(p string) (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.open > 0 || n.modified || n.evicted || n.gone {
		return 0, false
	}
	if _, err := n.fsys.opts.Store.Update(n.id, func(r *cache.Record) error {
		if r.State != cache.Ready || r.Evicted || r.MetaPending {
			return errNotEvictable
		}
		r.Evicted = true
		return nil
	}); err != nil {
		if !errors.Is(err, errNotEvictable) {
			n.fsys.opts.Log.Error("evict", "path", p, "err", err)
		}
		return 0, false
	}
	spool := n.fsys.opts.Store.SpoolPath(n.id)
	st, _ := os.Stat(spool)
	if err := os.Remove(spool); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.fsys.opts.Log.Error("evict: remove the spool", "path", p, "err", err)
	}
	n.evicted = true
	n.fsys.opts.Log.Info("evicted from the cache; reads come from the object", "path", p, "bytes", n.size)
	if st == nil {
		return 0, true
	}
	return st.Size(), true
}

// _restore brings an evicted file's bytes back into its spool before they change: the whole
// object, or nothing when the change truncates it to zero. Call with n.mu held.
func (n *fileNode) _restore(ctx context.Context, p string, empty bool) syscall.Errno {
	if !n.evicted {
		return gofs.OK
	}
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
		if err == nil && got != rec.Size {
			err = fmt.Errorf("the object of %s has %d bytes, the file %d", rec.MediaID, got, rec.Size)
		}
		if err != nil {
			tmp.Close()
			return n.fsys.refuse("restore", p, syscall.EIO, "cannot fetch the evicted file back from its object: "+err.Error())
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return n.fsys.fail("restore", p, err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), spool); err != nil {
		return n.fsys.fail("restore", p, err)
	}
	if _, err := n.fsys.opts.Store.Update(n.id, func(r *cache.Record) error { r.Evicted = false; return nil }); err != nil {
		return n.fsys.fail("restore", p, err)
	}
	n.evicted = false
	if empty {
		n.size = 0
	}
	n.fsys.opts.Log.Info("fetched back into the cache", "path", p, "bytes", rec.Size)
	return gofs.OK
}

// restoreMoved fetches back the evicted files under src (a file or a folder) when a move takes
// them to a folder of another Type: they will be uploaded again as new assets.
func (f *FS) restoreMoved(ctx context.Context, src *gofs.Inode, from, toDir string) syscall.Errno {
	var walk func(in *gofs.Inode, p string) syscall.Errno
	walk = func(in *gofs.Inode, p string) syscall.Errno {
		if n, ok := in.Operations().(*fileNode); ok {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n._restore(ctx, p, false)
		}
		for name, c := range in.Children() {
			if errno := walk(c, p+"/"+name); errno != gofs.OK {
				return errno
			}
		}
		return gofs.OK
	}
	fromRule, _ := f.opts.Mapping.RuleFor(path.Dir(from))
	toRule, _ := f.opts.Mapping.RuleFor(toDir)
	if fromRule.Type == toRule.Type {
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
	n.mu.Lock()
	size := n.size
	n.mu.Unlock()
	if off >= size {
		return nil, gofs.OK
	}
	if max := size - off; int64(len(dest)) > max {
		dest = dest[:max]
	}
	got, err := n.fsys.opts.Objects.ReadAt(ctx, h.mediaID, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.fsys.refuse("read", n.path(), syscall.EIO, "cannot read the evicted file from its object: "+strings.TrimSpace(err.Error()))
	}
	return dest[:got], gofs.OK
}
