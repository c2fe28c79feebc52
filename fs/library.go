package fs

import (
	"context"
	"hash/fnv"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader"
)

// LibraryDir is the read-only folder at the root that shows every asset in IMS, in the folder
// its MediaType and BusinessType map to by the default mapping, read on demand.
const LibraryDir = "library"

// LibraryFolders are the folders of library/: the default mapping's, parents first.
func LibraryFolders() []string { return DefaultMapping().Fixed() }

// LibraryFolder returns the folder of library/ an asset of mediaType and businessType shows
// in: the default mapping's folder for the pair, else its media type's, else other.
func LibraryFolder(mediaType, businessType string) string {
	rules := DefaultRules()
	best := ""
	for dir, r := range rules {
		if r.Type == mediaType && r.BusinessType == businessType && (best == "" || dir < best) {
			best = dir
		}
	}
	if best != "" {
		return best
	}
	if DefaultMapping().IsFixed(mediaType) && !strings.Contains(mediaType, "/") && mediaType != "" {
		return mediaType
	}
	return "other"
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// libraryTimeout is how long the kernel may keep what it was told of the library's entries:
// the library tells it of each change (notify), so the entries can live long.
const libraryTimeout = time.Hour

// libDirNode is library/ or one of its folders. It holds its folders as children; its assets
// are looked up in the library's listing, never in IMS, so that no lookup or readdir waits on
// the network.
type libDirNode struct {
	gofs.Inode
	fsys *FS    // read only
	dir  string // read only: under library/ ("" for library/ itself)
}

func (d *libDirNode) path() string { return path.Join(LibraryDir, d.dir) }

// readOnly refuses a change in library/ with EROFS and says why, once, in the log.
func (f *FS) readOnly(op, p string) syscall.Errno {
	return f.refuse(op, p, syscall.EROFS, "library/ shows the assets in IMS and is read-only: save into an upload folder (video/, image/…) to make an asset")
}

// addLibrary adds library/ and its folders under the root.
func (f *FS) addLibrary(ctx context.Context) {
	root := f.root.EmbeddedInode()
	lib := root.NewPersistentInode(ctx, &libDirNode{fsys: f}, gofs.StableAttr{Mode: syscall.S_IFDIR})
	root.AddChild(LibraryDir, lib, true)
	for _, dir := range LibraryFolders() {
		parent := lib
		if p := path.Dir(dir); p != "." {
			parent = f.libDir(p)
		}
		parent.AddChild(path.Base(dir), parent.NewPersistentInode(ctx, &libDirNode{fsys: f, dir: dir}, gofs.StableAttr{Mode: syscall.S_IFDIR}), true)
	}
	f.opts.Library.OnChange(f.libraryChanged)
}

// libDir returns the inode of folder dir of library/, or nil.
func (f *FS) libDir(dir string) *gofs.Inode {
	n := f.root.EmbeddedInode().GetChild(LibraryDir)
	if dir == "" || n == nil {
		return n
	}
	for _, name := range strings.Split(dir, "/") {
		if n = n.GetChild(name); n == nil {
			return nil
		}
	}
	return n
}

// libraryChanged tells the kernel of entries of library/ that went or changed, so that ls
// shows them without waiting for what it was told to expire. A new name needs no word: a name
// of library/ looked up and not found is not kept (Lookup answers a plain ENOENT). An entry is told of even when no
// child holds it here: a lookup that read it just before the change is not a child yet.
func (f *FS) libraryChanged(changes []uploader.LibraryChange) {
	for _, c := range changes {
		if c.Came {
			continue
		}
		dir := f.libDir(c.Dir)
		if dir == nil {
			continue
		}
		for _, name := range []string{c.Name, c.Name + SidecarSuffix} {
			child := dir.GetChild(name)
			switch {
			case c.Gone && child != nil:
				dir.RmChild(name)
				_ = dir.NotifyDelete(name, child)
			case c.Gone:
				_ = dir.NotifyEntry(name)
			default:
				_ = dir.NotifyEntry(name)
				if child != nil && (c.Bytes || name != c.Name) {
					_ = child.NotifyContent(0, 0) // the sidecar's content follows every change
				}
			}
		}
	}
}

// libIno is the inode number of an asset's file (or its sidecar): the same at each lookup and
// each mount, below the numbers go-fuse gives itself (from 1<<63).
func libIno(kind, mediaID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(mediaID))
	return max(h.Sum64()&^(1<<63), 2)
}

var _ = (gofs.NodeGetattrer)((*libDirNode)(nil))

// Getattr gives the folder the time its content last changed (SMB and NFS clients list again
// when it moves), else when the library was last listed whole.
func (d *libDirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	mtime := d.fsys.opts.Library.Changed(d.dir)
	if mtime.IsZero() {
		mtime = d.fsys.opts.Library.State().Listed
	}
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	out.Mtime, out.Mtimensec = timespec(mtime)
	out.Ctime, out.Ctimensec = out.Mtime, out.Mtimensec
	out.Atime, out.Atimensec = out.Mtime, out.Mtimensec
	out.Owner = fuse.Owner{Uid: d.fsys.uid, Gid: d.fsys.gid}
	return gofs.OK
}

var _ = (gofs.NodeLookuper)((*libDirNode)(nil))

func (d *libDirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if c := d.GetChild(name); c != nil && c.IsDir() {
		var a fuse.AttrOut
		c.Operations().(*libDirNode).Getattr(ctx, nil, &a)
		out.Attr = a.Attr
		return c, gofs.OK
	}
	lib := d.fsys.opts.Library
	if e, ok := lib.Lookup(d.dir, name); ok {
		n := &libFileNode{fsys: d.fsys, mediaID: e.MediaID}
		n.fill(e, &out.Attr)
		out.SetEntryTimeout(libraryTimeout)
		out.SetAttrTimeout(libraryTimeout)
		return d.NewInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: libIno("file", e.MediaID)}), gofs.OK
	}
	if base, ok := strings.CutSuffix(name, SidecarSuffix); ok && d.fsys.opts.Sidecars && base != "" {
		if e, ok := lib.Lookup(d.dir, base); ok {
			s := &libSidecarNode{fsys: d.fsys, mediaID: e.MediaID}
			var a fuse.AttrOut
			if errno := s.Getattr(ctx, nil, &a); errno != gofs.OK {
				out.SetEntryTimeout(time.Nanosecond) // see below
				return nil, errno
			}
			out.Attr = a.Attr
			out.SetEntryTimeout(libraryTimeout)
			out.SetAttrTimeout(libraryTimeout)
			return d.NewInode(ctx, s, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: libIno("sidecar", e.MediaID)}), gofs.OK
		}
	}
	// An asset comes from the service, unseen by the kernel: its absence is not kept (an entry
	// timeout set makes go-fuse answer a plain ENOENT, not a negative entry).
	out.SetEntryTimeout(time.Nanosecond)
	return nil, syscall.ENOENT
}

var _ = (gofs.NodeReaddirer)((*libDirNode)(nil))

// Readdir lists the folders, then each asset with its sidecar just before it, by name.
func (d *libDirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	entries := d.fsys.opts.Library.List(d.dir)
	list := make([]fuse.DirEntry, 0, 2+len(entries)*2)
	list = append(list, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR}, fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR})
	var dirs []string
	for name, c := range d.Children() {
		if c.IsDir() {
			dirs = append(dirs, name)
		}
	}
	sort.Strings(dirs)
	for _, name := range dirs {
		list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
	}
	for _, e := range entries {
		if d.fsys.opts.Sidecars && len(e.Name)+len(SidecarSuffix) <= nameMax {
			list = append(list, fuse.DirEntry{Name: e.Name + SidecarSuffix, Mode: syscall.S_IFREG, Ino: libIno("sidecar", e.MediaID)})
		}
		list = append(list, fuse.DirEntry{Name: e.Name, Mode: syscall.S_IFREG, Ino: libIno("file", e.MediaID)})
	}
	return gofs.NewListDirStream(list), gofs.OK
}

// What changes a folder is refused: library/ is read-only.

var _ = (gofs.NodeCreater)((*libDirNode)(nil))

func (d *libDirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, d.fsys.readOnly("create", path.Join(d.path(), name))
}

var _ = (gofs.NodeMkdirer)((*libDirNode)(nil))

func (d *libDirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, d.fsys.readOnly("mkdir", path.Join(d.path(), name))
}

var _ = (gofs.NodeMknoder)((*libDirNode)(nil))

func (d *libDirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, d.fsys.readOnly("mknod", path.Join(d.path(), name))
}

var _ = (gofs.NodeSymlinker)((*libDirNode)(nil))

func (d *libDirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, d.fsys.readOnly("symlink", path.Join(d.path(), name))
}

var _ = (gofs.NodeLinker)((*libDirNode)(nil))

func (d *libDirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, d.fsys.readOnly("link", path.Join(d.path(), name))
}

var _ = (gofs.NodeUnlinker)((*libDirNode)(nil))

func (d *libDirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.fsys.readOnly("unlink", path.Join(d.path(), name))
}

var _ = (gofs.NodeRmdirer)((*libDirNode)(nil))

func (d *libDirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.fsys.readOnly("rmdir", path.Join(d.path(), name))
}

var _ = (gofs.NodeRenamer)((*libDirNode)(nil))

func (d *libDirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return d.fsys.readOnly("rename", path.Join(d.path(), name))
}

var _ = (gofs.NodeSetattrer)((*libDirNode)(nil))

func (d *libDirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return d.fsys.readOnly("setattr", d.path())
}

var _ = (gofs.NodeStatfser)((*libDirNode)(nil))

func (d *libDirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.fsys.root.Statfs(ctx, out)
}

// The folders' attributes say how current the listing is: user.ims.status is "current", or
// "stale" while IMS cannot be reached (user.ims.error says why, since when); user.ims.listed is
// when the whole library was last listed; user.ims.assets how many assets the folder shows.
func (d *libDirNode) values() map[string]string {
	st := d.fsys.opts.Library.State()
	vals := map[string]string{"status": "current", "assets": strconv.Itoa(len(d.fsys.opts.Library.List(d.dir)))}
	if d.dir == "" {
		vals["assets"] = strconv.Itoa(st.Assets)
	}
	switch {
	case st.Stale != nil:
		vals["status"] = "stale"
		vals["error"] = "IMS cannot be reached since " + st.Since.UTC().Format(time.RFC3339) + ": " + st.Stale.Error()
	case st.Listed.IsZero():
		vals["status"] = "listing"
	}
	if !st.Listed.IsZero() {
		vals["listed"] = st.Listed.UTC().Format(time.RFC3339)
	}
	return vals
}

var libDirXattrs = []string{"status", "listed", "assets", "error"}

var _ = (gofs.NodeGetxattrer)((*libDirNode)(nil))

func (d *libDirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if foreign(attr) {
		return 0, syscall.ENOTSUP
	}
	name, ok := strings.CutPrefix(attr, xattrPrefix)
	if v := d.values()[name]; ok && v != "" {
		return copyOut(dest, v)
	}
	return 0, syscall.ENODATA
}

var _ = (gofs.NodeListxattrer)((*libDirNode)(nil))

func (d *libDirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	vals := d.values()
	var own []string
	for _, name := range libDirXattrs {
		if vals[name] != "" {
			own = append(own, xattrPrefix+name)
		}
	}
	return listNames(dest, own, nil)
}

var _ = (gofs.NodeSetxattrer)((*libDirNode)(nil))

func (d *libDirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return d.fsys.readOnly("setxattr", d.path())
}

var _ = (gofs.NodeRemovexattrer)((*libDirNode)(nil))

func (d *libDirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return d.fsys.readOnly("removexattr", d.path())
}

// libFileNode is an asset of the library. What it shows comes from the listing each time: the
// asset it stands for is the same while it exists (its inode number is its MediaId's).
type libFileNode struct {
	gofs.Inode
	fsys    *FS    // read only
	mediaID string // read only
}

// entry returns what the listing shows of the asset; ENOENT once it has gone.
func (n *libFileNode) entry() (uploader.LibraryEntry, syscall.Errno) {
	e, ok := n.fsys.opts.Library.Entry(n.mediaID)
	if !ok {
		return e, syscall.ENOENT
	}
	return e, gofs.OK
}

func (n *libFileNode) path() string {
	e, _ := n.fsys.opts.Library.Entry(n.mediaID)
	return path.Join(LibraryDir, e.Dir, e.Name)
}

// fill sets the asset's attributes: its size; its bytes' time as mtime, its fields' as ctime.
func (n *libFileNode) fill(e uploader.LibraryEntry, a *fuse.Attr) {
	a.Mode = syscall.S_IFREG | 0o444
	a.Nlink = 1
	a.Size = uint64(e.Size)
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = chunkSize
	a.Mtime, a.Mtimensec = timespec(e.FileTime)
	a.Ctime, a.Ctimensec = timespec(later(e.Changed, e.FileTime))
	a.Atime, a.Atimensec = a.Mtime, a.Mtimensec
	a.Owner = fuse.Owner{Uid: n.fsys.uid, Gid: n.fsys.gid}
}

var _ = (gofs.NodeGetattrer)((*libFileNode)(nil))

func (n *libFileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	e, errno := n.entry()
	if errno != gofs.OK {
		return errno
	}
	n.fill(e, &out.Attr)
	out.SetTimeout(libraryTimeout)
	return gofs.OK
}

var _ = (gofs.NodeSetattrer)((*libFileNode)(nil))

func (n *libFileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return n.fsys.readOnly("setattr", n.path())
}

var _ = (gofs.NodeOpener)((*libFileNode)(nil))

// Open opens the asset for reading; the kernel keeps what it read (the bytes of a version do
// not change: a new version is told, and drops them).
func (n *libFileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, n.fsys.readOnly("open for writing", n.path())
	}
	e, errno := n.entry()
	if errno != gofs.OK {
		return nil, 0, errno
	}
	return n.fsys.newLibHandle(e), fuse.FOPEN_KEEP_CACHE, gofs.OK
}

var _ = (gofs.NodeGetxattrer)((*libFileNode)(nil))

func (n *libFileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if foreign(attr) {
		return 0, syscall.ENOTSUP
	}
	name, ok := strings.CutPrefix(attr, xattrPrefix)
	if !ok {
		return 0, syscall.ENODATA
	}
	vals, errno := n.values(ctx, name == "file_url")
	if errno != gofs.OK {
		return 0, errno
	}
	if v := vals[name]; v != "" {
		return copyOut(dest, v)
	}
	return 0, syscall.ENODATA
}

var _ = (gofs.NodeListxattrer)((*libFileNode)(nil))

func (n *libFileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	vals, errno := n.values(ctx, false)
	if errno != gofs.OK {
		return 0, errno
	}
	var own []string
	for _, x := range libXattrs {
		if vals[x] != "" || x == "file_url" && vals["status"] != "failed" {
			own = append(own, xattrPrefix+x)
		}
	}
	return listNames(dest, own, nil)
}

var _ = (gofs.NodeSetxattrer)((*libFileNode)(nil))

func (n *libFileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.fsys.readOnly("setxattr", n.path())
}

var _ = (gofs.NodeRemovexattrer)((*libFileNode)(nil))

func (n *libFileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.fsys.readOnly("removexattr", n.path())
}

// libXattrs are the attributes a library file shows, in listing order: those of a saved file
// that an asset has.
var libXattrs = []string{"status", "media_id", "file_url", "input_url", "error", "type", "business_type", "title", "description", "tags", "cate_id"}

// libStatus is the status a saved file would show for an asset in IMS's state.
func libStatus(a *cache.LibraryAsset) (status, reason string) {
	switch a.Status {
	case "Normal":
		return string(cache.Ready), ""
	case "PrepareFail":
		return string(cache.Failed), "IMS could not process the file (status PrepareFail)"
	}
	return string(cache.Uploaded), ""
}

// values returns the asset's attributes by name, without their prefix; with ask, a signed URL
// is asked for if none is at hand.
func (n *libFileNode) values(ctx context.Context, ask bool) (map[string]string, syscall.Errno) {
	a, err := n.fsys.opts.Library.Asset(n.mediaID)
	if err != nil {
		return nil, syscall.ENOENT
	}
	status, reason := libStatus(&a)
	vals := map[string]string{"status": status, "error": reason, "media_id": a.MediaID, "input_url": a.FileURL,
		"type": a.MediaType, "business_type": a.BusinessType, "title": a.Title, "description": a.Description, "tags": a.Tags}
	if a.CateID != 0 {
		vals["cate_id"] = strconv.FormatInt(a.CateID, 10)
	}
	if objs := n.fsys.opts.Objects; objs != nil {
		vals["file_url"] = objs.CachedURL(a.MediaID)
		// Not while IMS cannot be reached: a getfattr would wait on it.
		if vals["file_url"] == "" && ask && n.fsys.opts.Library.State().Stale == nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			u, _, err := objs.URL(ctx, a.MediaID)
			if err != nil {
				n.fsys.opts.Log.Warn("no signed URL for user.ims.file_url", "path", n.path(), "media_id", a.MediaID, "err", err)
			}
			vals["file_url"] = u
		}
	}
	return vals, gofs.OK
}

// libSidecarNode is NAME.ims.json beside an asset of the library: its attributes as JSON, as
// the listing gave them. It never asks IMS (a grep -r of library/ must not wait on the network):
// the signed URL is user.ims.file_url's. So its content changes only with the listing, which
// tells the kernel, and its size is exact.
type libSidecarNode struct {
	gofs.Inode
	fsys    *FS    // read only
	mediaID string // read only
}

func (s *libSidecarNode) content(ctx context.Context) ([]byte, syscall.Errno) {
	n := &libFileNode{fsys: s.fsys, mediaID: s.mediaID}
	vals, errno := n.values(ctx, false)
	if errno != gofs.OK {
		return nil, errno
	}
	out := map[string]string{"path": n.path()}
	for k, v := range vals {
		if v != "" && k != "file_url" {
			out[k] = v
		}
	}
	return sidecarJSON(out)
}

var _ = (gofs.NodeGetattrer)((*libSidecarNode)(nil))

func (s *libSidecarNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	e, ok := s.fsys.opts.Library.Entry(s.mediaID)
	if !ok {
		return syscall.ENOENT
	}
	data, errno := s.content(ctx)
	if errno != gofs.OK {
		return errno
	}
	out.Mode = syscall.S_IFREG | 0o444
	out.Nlink = 1
	out.Size = uint64(len(data))
	out.Mtime, out.Mtimensec = timespec(later(e.Changed, e.FileTime))
	out.Ctime, out.Ctimensec = out.Mtime, out.Mtimensec
	out.Atime, out.Atimensec = out.Mtime, out.Mtimensec
	out.Owner = fuse.Owner{Uid: s.fsys.uid, Gid: s.fsys.gid}
	out.SetTimeout(libraryTimeout)
	return gofs.OK
}

var _ = (gofs.NodeOpener)((*libSidecarNode)(nil))

func (s *libSidecarNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, s.fsys.readOnly("open for writing", s.path())
	}
	return nil, 0, gofs.OK
}

var _ = (gofs.NodeReader)((*libSidecarNode)(nil))

func (s *libSidecarNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data, errno := s.content(ctx)
	if errno != gofs.OK {
		return nil, errno
	}
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil), gofs.OK
	}
	return fuse.ReadResultData(data[off:min(int64(len(data)), off+int64(len(dest)))]), gofs.OK
}

var _ = (gofs.NodeSetattrer)((*libSidecarNode)(nil))

func (s *libSidecarNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return s.fsys.readOnly("setattr", s.path())
}

func (s *libSidecarNode) path() string {
	return (&libFileNode{fsys: s.fsys, mediaID: s.mediaID}).path() + SidecarSuffix
}

var _ = (gofs.NodeGetxattrer)((*libSidecarNode)(nil))

func (s *libSidecarNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if foreign(attr) {
		return 0, syscall.ENOTSUP
	}
	return 0, syscall.ENODATA
}

var _ = (gofs.NodeSetxattrer)((*libSidecarNode)(nil))

func (s *libSidecarNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return s.fsys.readOnly("setxattr", s.path())
}

var _ = (gofs.NodeRemovexattrer)((*libSidecarNode)(nil))

func (s *libSidecarNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return s.fsys.readOnly("removexattr", s.path())
}
