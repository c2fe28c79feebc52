package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/imsfs/imsfs/cache"
)

// dirNode is a folder: the root, a fixed folder of the mapping, or one a user made. What it may
// hold follows from its path and the mapping, so a renamed folder takes its new place's rule.
type dirNode struct {
	gofs.Inode
	fsys *FS // read only

	mu    sync.Mutex
	mode  uint32    // protected by mu: permission bits, setgid and sticky included
	mtime time.Time // protected by mu
	atime time.Time // protected by mu: as set; zero: mtime
}

func (d *dirNode) path() string { return relPath(d.EmbeddedInode()) }

var _ = (gofs.NodeGetattrer)((*dirNode)(nil))

func (d *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	out.Mode = syscall.S_IFDIR | d.mode
	out.Nlink = 2
	out.Mtime, out.Mtimensec = timespec(d.mtime)
	out.Ctime, out.Ctimensec = out.Mtime, out.Mtimensec
	out.Atime, out.Atimensec = out.Mtime, out.Mtimensec
	if !d.atime.IsZero() {
		out.Atime, out.Atimensec = timespec(d.atime)
	}
	out.Owner = fuse.Owner{Uid: d.fsys.uid, Gid: d.fsys.gid}
	return gofs.OK
}

var _ = (gofs.NodeSetattrer)((*dirNode)(nil))

// Setattr keeps chmod and utimens on folders users made; the fixed folders keep theirs.
func (d *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	p := d.path()
	if errno := d.fsys.checkOwner(p, in); errno != gofs.OK {
		return errno
	}
	if _, ok := in.GetSize(); ok {
		return d.fsys.refuse("setattr", p, syscall.EISDIR, "a folder has no size to set")
	}
	if d.fsys.opts.Mapping.IsFixed(p) {
		return d.Getattr(ctx, fh, out)
	}
	d.mu.Lock()
	if m, ok := in.GetMode(); ok {
		d.mode = m & 0o7777
	}
	if t, ok := in.GetMTime(); ok {
		d.mtime = t
	}
	if t, ok := in.GetATime(); ok {
		d.atime = t
	}
	dr := cache.Dir{Path: p, Mode: d.mode, Mtime: d.mtime, Atime: d.atime}
	d.mu.Unlock()
	if err := d.fsys.opts.Store.PutDir(dr); err != nil {
		return d.fsys.fail("setattr", p, err)
	}
	return d.Getattr(ctx, fh, out)
}

func (d *dirNode) touch() {
	d.mu.Lock()
	d.mtime = time.Now()
	d.mu.Unlock()
}

var _ = (gofs.NodeCreater)((*dirNode)(nil))

// Create makes a new file: a record in the store (state writing) and an empty spool file.
func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	dir := d.path()
	p := join(dir, name)
	rule, ok := d.fsys.opts.Mapping.RuleFor(dir)
	if !ok {
		return nil, nil, 0, d.fsys.refuse("create", p, syscall.EACCES, whyNoFiles(dir))
	}
	if len(name) > nameMax {
		return nil, nil, 0, d.fsys.refuse("create", p, syscall.ENAMETOOLONG, fmt.Sprintf("the name is %d bytes; at most %d are allowed", len(name), nameMax))
	}
	if d.fsys.opts.Sidecars && isSidecar(name) {
		// A copy of the mount (cp -r, rsync, a backup copied back) brings sidecars along: they
		// are taken and their bytes dropped, so that the copy succeeds and makes no asset. The
		// sidecar that shows is the mount's own.
		d.fsys.opts.Log.Info("a sidecar was written before its file: the fields it sets go to the file when it comes", "path", p)
		n := &ghostNode{fsys: d.fsys, mtime: time.Now()}
		var a fuse.AttrOut
		n.Getattr(ctx, nil, &a)
		out.Attr = a.Attr
		out.SetEntryTimeout(time.Nanosecond)
		out.SetAttrTimeout(time.Nanosecond)
		return d.NewInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFREG}), &sidecarWriter{done: n.keep}, fuse.FOPEN_DIRECT_IO, gofs.OK
	}
	if d.GetChild(name) != nil {
		return nil, nil, 0, d.fsys.refuse("create", p, syscall.EEXIST, "the name is taken")
	}
	now := time.Now()
	rec, err := d.fsys.opts.Store.Create(p, func(r *cache.Record) {
		r.Type, r.BusinessType = rule.Type, rule.BusinessType
		r.Mode, r.Mtime = mode&0o7777, now
	})
	if err != nil {
		return nil, nil, 0, d.fsys.fail("create", p, err)
	}
	spool := d.fsys.opts.Store.TakeSpool(rec.ID) // made ahead, in the background
	if spool == nil {
		spool, err = os.OpenFile(d.fsys.opts.Store.SpoolPath(rec.ID), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	if err != nil {
		if _, derr := d.fsys.opts.Uploads.Apply(rec.ID, cache.Event{Kind: cache.Unlinked}); derr != nil {
			d.fsys.opts.Log.Error("forget a file whose spool could not be made", "path", p, "err", derr)
		}
		return nil, nil, 0, d.fsys.fail("create", p, err)
	}
	n := &fileNode{fsys: d.fsys, id: rec.ID, mode: rec.Mode, mtime: now, ctime: now, writers: 1, open: 1, modified: true, newSpool: true}
	h := &handle{node: n, f: spool, write: true, direct: d.fsys.directOK()}
	h.backed = h.direct
	if h.direct {
		// Its times are the spool's from now on (the kernel writes it): they start there too.
		if st, err := spool.Stat(); err == nil {
			n.mtime, n.ctime, n.seenMtime = st.ModTime(), st.ModTime(), st.ModTime()
		}
		n.direct, n.backed = 1, 1
	}
	child := d.NewPersistentInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFREG})
	n.fillAttr(&out.Attr)
	if h.direct {
		go n.watchDirect() // n is shared from here on
	}
	d.touch()
	if fields := d.ghostFields(name); len(fields) > 0 {
		n.setFields(p, fields) // what a sidecar a copy wrote before its file set
	}
	d.dropSidecar(name) // a sidecar a copy wrote before its file: the file's own shows now
	return child, h, 0, gofs.OK
}

var _ = (gofs.NodeMkdirer)((*dirNode)(nil))

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	dir := d.path()
	p := join(dir, name)
	if _, ok := d.fsys.opts.Mapping.RuleFor(dir); !ok {
		return nil, d.fsys.refuse("mkdir", p, syscall.EACCES, "folders can be made only inside a mapped folder ("+whyNoFiles(dir)+")")
	}
	if len(name) > nameMax {
		return nil, d.fsys.refuse("mkdir", p, syscall.ENAMETOOLONG, fmt.Sprintf("the name is %d bytes; at most %d are allowed", len(name), nameMax))
	}
	if d.fsys.opts.Sidecars && isSidecar(name) {
		return nil, d.fsys.refuse("mkdir", p, syscall.EACCES, "names ending in "+SidecarSuffix+" are the mount's read-only sidecars")
	}
	if d.GetChild(name) != nil {
		return nil, d.fsys.refuse("mkdir", p, syscall.EEXIST, "the name is taken")
	}
	now := time.Now()
	mode &= 0o7777
	d.mu.Lock()
	if d.mode&syscall.S_ISGID != 0 {
		mode |= syscall.S_ISGID // as on Linux: a folder made in a setgid folder is setgid
	}
	d.mu.Unlock()
	if err := d.fsys.opts.Store.PutDir(cache.Dir{Path: p, Mode: mode, Mtime: now}); err != nil {
		return nil, d.fsys.fail("mkdir", p, err)
	}
	n := &dirNode{fsys: d.fsys, mode: mode, mtime: now}
	child := d.NewPersistentInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFDIR})
	var a fuse.AttrOut
	n.Getattr(ctx, nil, &a)
	out.Attr = a.Attr
	d.touch()
	return child, gofs.OK
}

var _ = (gofs.NodeRmdirer)((*dirNode)(nil))

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	p := join(d.path(), name)
	child := d.GetChild(name)
	if child == nil {
		return syscall.ENOENT
	}
	if _, ok := child.Operations().(*libDirNode); ok {
		return d.fsys.readOnly("rmdir", p)
	}
	if d.fsys.opts.Mapping.IsFixed(p) {
		return d.fsys.refuse("rmdir", p, syscall.EACCES, "the folders of the mapping cannot be removed")
	}
	if len(child.Children()) > 0 {
		return syscall.ENOTEMPTY
	}
	if err := d.fsys.opts.Store.DeleteDir(p); err != nil {
		return d.fsys.fail("rmdir", p, err)
	}
	d.touch()
	return gofs.OK
}

var _ = (gofs.NodeUnlinker)((*dirNode)(nil))

// Unlink removes a file: its record and spool go, and a pending upload is cancelled. An asset
// already in IMS is kept.
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	p := join(d.path(), name)
	if d.fsys.opts.Sidecars && isSidecar(name) {
		// Succeeds and changes nothing, so that rm -r and rsync --delete work: the sidecar is
		// there again at the next lookup while its file is. It succeeds when the file went
		// first, too, since rm -r removes what readdir listed, the sidecar after its file.
		return gofs.OK
	}
	child := d.GetChild(name)
	if child == nil {
		return syscall.ENOENT
	}
	f, ok := child.Operations().(*fileNode)
	if !ok {
		return syscall.EISDIR
	}
	if err := f.remove(); err != nil {
		return d.fsys.fail("unlink", p, err)
	}
	d.dropSidecar(name)
	d.touch()
	return gofs.OK
}

var _ = (gofs.NodeRenamer)((*dirNode)(nil))

// Rename moves a file or a folder a user made, within and across mapped folders; the mapping of
// the new place applies. A file at the target is replaced.
func (d *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	toDir := relPath(newParent.EmbeddedInode())
	r := &renaming{d: d, name: name, newParent: newParent, newName: newName, flags: flags,
		from: join(d.path(), name), toDir: toDir, to: join(toDir, newName)}
	if _, ok := newParent.(*libDirNode); ok {
		return d.fsys.readOnly("rename", r.to)
	}
	if r.src = d.GetChild(name); r.src == nil {
		return syscall.ENOENT
	}
	if errno := r.refuseName(); errno != gofs.OK {
		return errno
	}
	if f, fields, ok := r.writtenSidecar(); ok {
		return r.takeSidecar(f, fields)
	}
	if errno := r.refuseMove(); errno != gofs.OK {
		return errno
	}
	dst := newParent.EmbeddedInode().GetChild(newName)
	if dst != nil {
		if dst == r.src {
			return gofs.OK
		}
		if errno := r.clear(dst); errno != gofs.OK {
			return errno
		}
	}

	// Files that move to another Type become new assets, so their bytes must be here.
	if errno := d.fsys.restoreMoved(ctx, r.src, r.from, toDir); errno != gofs.OK {
		return errno
	}

	m := d.fsys.opts.Mapping
	due := time.Now().Add(d.fsys.opts.UploadDelay)
	res, err := d.fsys.opts.Uploads.Rename(r.from, r.to, func(rec cache.Record) cache.Event {
		rule, _ := m.RuleFor(path.Dir(rec.Path))
		return cache.Event{Kind: cache.Renamed, Type: rule.Type, BusinessType: rule.BusinessType, Due: due}
	})
	if err != nil {
		return d.fsys.fail("rename", r.from, err)
	}
	r.moved(res, dst)
	return gofs.OK
}

// renaming is one Rename under way: what moves, from where to where.
type renaming struct {
	d             *dirNode // the folder it leaves
	src           *gofs.Inode
	name, newName string
	newParent     gofs.InodeEmbedder
	from, to      string // the mount-relative paths it leaves and takes
	toDir         string // the folder it goes to, mount-relative
	flags         uint32
}

// refuseName refuses what no move may do, whatever the folders: move what library/ shows,
// exchange two names, take a name over NAME_MAX.
func (r *renaming) refuseName() syscall.Errno {
	fsys := r.d.fsys
	if _, ok := r.src.Operations().(*libDirNode); ok {
		return fsys.readOnly("rename", r.from)
	}
	if r.flags&gofs.RENAME_EXCHANGE != 0 {
		return fsys.refuse("rename", r.from, syscall.EINVAL, "exchanging two names (RENAME_EXCHANGE) is not supported")
	}
	if len(r.newName) > nameMax {
		return fsys.refuse("rename", r.from, syscall.ENAMETOOLONG, fmt.Sprintf("the name %d bytes; at most %d are allowed", len(r.newName), nameMax))
	}
	return gofs.OK
}

// writtenSidecar returns the file that moves and the fields it sets when it is a sidecar
// written under another name and renamed over its sidecar's name (rsync's temporary name, an
// editor's safe save).
func (r *renaming) writtenSidecar() (*fileNode, map[string]fieldValue, bool) {
	if !r.d.fsys.opts.Sidecars || !isSidecar(r.newName) || isSidecar(r.name) {
		return nil, nil, false
	}
	f, ok := r.src.Operations().(*fileNode)
	if !ok {
		return nil, nil, false
	}
	fields, ok := f.asSidecar()
	return f, fields, ok
}

// takeSidecar gives the fields a sidecar written under another name sets to its file, and
// drops its bytes: the mount's own sidecar stays in its place.
func (r *renaming) takeSidecar(f *fileNode, fields map[string]fieldValue) syscall.Errno {
	var target *fileNode
	if c := r.newParent.EmbeddedInode().GetChild(strings.TrimSuffix(r.newName, SidecarSuffix)); c != nil {
		target, _ = c.Operations().(*fileNode)
	}
	if err := f.remove(); err != nil {
		return r.d.fsys.fail("rename", r.from, err)
	}
	f.mu.Lock()
	f.tookSidecar = true
	f.mu.Unlock()
	r.d.RmChild(r.name)
	if target != nil {
		target.setFields(strings.TrimSuffix(r.to, SidecarSuffix), fields)
	}
	// The kernel takes the renamed file for the sidecar now: told, once this request is
	// answered, it looks the mount's own up again.
	parent := r.newParent.EmbeddedInode()
	go func() { _ = parent.NotifyEntry(r.newName) }()
	r.d.fsys.opts.Log.Info("a sidecar written under another name set its file's fields; its bytes are dropped", "path", r.to)
	return gofs.OK
}

// refuseMove refuses what the mount's layout forbids: moving a sidecar or onto one, renaming a
// folder of the mapping, moving to where files may not be, moving a folder into itself.
func (r *renaming) refuseMove() syscall.Errno {
	fsys, m := r.d.fsys, r.d.fsys.opts.Mapping
	if fsys.opts.Sidecars && (isSidecar(r.name) || isSidecar(r.newName)) {
		return fsys.refuse("rename", r.from, syscall.EACCES, "sidecars ("+SidecarSuffix+") are read-only: they go with their file")
	}
	if r.src.IsDir() && m.IsFixed(r.from) {
		return fsys.refuse("rename", r.from, syscall.EACCES, "the folders of the mapping cannot be renamed")
	}
	if _, ok := m.RuleFor(r.toDir); !ok {
		return fsys.refuse("rename", r.from, syscall.EACCES, "cannot move to "+r.to+": "+whyNoFiles(r.toDir))
	}
	if r.src.IsDir() && (r.to == r.from || len(r.to) > len(r.from) && r.to[:len(r.from)+1] == r.from+"/") {
		return fsys.refuse("rename", r.from, syscall.EINVAL, "a folder cannot be moved into itself")
	}
	return gofs.OK
}

// clear makes room at the target, which dst (not the source) holds, as rename(2) does: a file
// is replaced (by the store's rename), an empty folder removed; anything else is refused.
func (r *renaming) clear(dst *gofs.Inode) syscall.Errno {
	fsys := r.d.fsys
	if r.flags&renameNoReplace != 0 {
		return syscall.EEXIST
	}
	switch {
	case dst.IsDir() && !r.src.IsDir():
		return syscall.EISDIR
	case !dst.IsDir() && r.src.IsDir():
		return syscall.ENOTDIR
	case dst.IsDir() && fsys.opts.Mapping.IsFixed(r.to):
		return fsys.refuse("rename", r.from, syscall.EACCES, "cannot replace "+r.to+": the folders of the mapping cannot be removed")
	case dst.IsDir() && len(dst.Children()) > 0:
		return syscall.ENOTEMPTY
	case dst.IsDir():
		if err := fsys.opts.Store.DeleteDir(r.to); err != nil {
			return fsys.fail("rename", r.from, err)
		}
	}
	return gofs.OK
}

// moved tidies up once the store moved the records: the replaced file dst (if res says one
// was) is forgotten with its spool, the sidecars of both names are dropped, a file takes what
// a sidecar written before it set, and both folders' times change.
func (r *renaming) moved(res cache.Renaming, dst *gofs.Inode) {
	d := r.d
	if res.Replaced != nil {
		if f, ok := dst.Operations().(*fileNode); ok {
			f.forget()
		}
		if err := os.Remove(d.fsys.opts.Store.SpoolPath(res.Replaced.Record.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.fsys.opts.Log.Error("remove the spool of a replaced file", "path", r.to, "err", err)
		}
	}
	d.dropSidecar(r.name)
	if nd, ok := r.newParent.(*dirNode); ok {
		if f, isFile := r.src.Operations().(*fileNode); isFile {
			if fields := nd.ghostFields(r.newName); len(fields) > 0 {
				f.setFields(r.to, fields) // what a sidecar written before its file set
			}
		}
		nd.dropSidecar(r.newName)
	}
	d.touch()
	if nd, ok := r.newParent.(*dirNode); ok && nd != d {
		nd.touch()
	}
}

var _ = (gofs.NodeSymlinker)((*dirNode)(nil))

func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, d.fsys.refuse("symlink", join(d.path(), name), syscall.EPERM, "symbolic links cannot become assets")
}

var _ = (gofs.NodeLinker)((*dirNode)(nil))

func (d *dirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, d.fsys.refuse("link", join(d.path(), name), syscall.EPERM, "hard links are not supported: each file is one asset")
}

var _ = (gofs.NodeMknoder)((*dirNode)(nil))

func (d *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, d.fsys.refuse("mknod", join(d.path(), name), syscall.EPERM, "device files, fifos and sockets cannot become assets")
}

var _ = (gofs.NodeStatfser)((*dirNode)(nil))

// Statfs reports the cache volume: that is where saved bytes go first.
func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.fsys.opts.Store.Dir(), &st); err != nil {
		return gofs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	return gofs.OK
}

// whyNoFiles says why a folder takes no files.
func whyNoFiles(dir string) string {
	if dir == "" {
		return "files go into a media type folder (video/, image/, audio/, text/…/, material/…/, other/), not the root"
	}
	return dir + "/ is not a mapped folder; use one of its subfolders"
}

// renameNoReplace is renameat2's RENAME_NOREPLACE, which go-fuse does not name.
const renameNoReplace = 0x1

// nameMax is the longest name, in bytes, as statfs says and as local file systems take.
const nameMax = 255
