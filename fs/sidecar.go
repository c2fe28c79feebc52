package fs

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// SidecarSuffix ends the name of the read-only file beside each file that shows, as JSON, what
// its extended attributes show: for people and tools that cannot read extended attributes.
const SidecarSuffix = ".ims.json"

func isSidecar(name string) bool {
	return strings.HasSuffix(name, SidecarSuffix) && len(name) > len(SidecarSuffix)
}

// showsSidecar reports whether the file at p shows a sidecar: not with --sidecars=false; not
// when the sidecar's name would pass NAME_MAX, which tools copying the folder could not create
// elsewhere; not for a junk name (.DS_Store has nothing to say).
func (f *FS) showsSidecar(p string) bool {
	return f.opts.Sidecars && len(path.Base(p))+len(SidecarSuffix) <= nameMax && (f.opts.Junk == nil || !f.opts.Junk(p))
}

// ghostNode is a sidecar name a copy wrote: it takes what is written and keeps none of it,
// until the sidecar of a file of that name shows in its place.
type ghostNode struct {
	gofs.Inode
	fsys  *FS       // read only
	mtime time.Time // read only
}

var _ = (gofs.NodeGetattrer)((*ghostNode)(nil))

func (g *ghostNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Nlink = 1
	out.Mtime, out.Mtimensec = timespec(g.mtime)
	out.Ctime, out.Ctimensec = out.Mtime, out.Mtimensec
	out.Atime, out.Atimensec = out.Mtime, out.Mtimensec
	out.Owner = fuse.Owner{Uid: g.fsys.uid, Gid: g.fsys.gid}
	out.SetTimeout(time.Nanosecond)
	return gofs.OK
}

var _ = (gofs.NodeSetattrer)((*ghostNode)(nil))

// Setattr takes chmod, chown and times (cp -p, rsync -a), and keeps none.
func (g *ghostNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return g.Getattr(ctx, fh, out)
}

var _ = (gofs.NodeOpener)((*ghostNode)(nil))

func (g *ghostNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return discard{}, fuse.FOPEN_DIRECT_IO, gofs.OK
}

// discard is a handle that takes every write and reads nothing.
type discard struct{}

var _ = (gofs.FileWriter)(discard{})

func (discard) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return uint32(len(data)), gofs.OK
}

var _ = (gofs.FileReader)(discard{})

func (discard) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(nil), gofs.OK
}

// looksLikeSidecar reports whether the file holds a sidecar's JSON (a copy of one): an object
// with the path and status a sidecar shows.
func (n *fileNode) looksLikeSidecar() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.evicted || n.size > 64<<10 {
		return false
	}
	data, err := os.ReadFile(n.fsys.opts.Store.SpoolPath(n.id))
	if err != nil {
		return false
	}
	var v struct{ Path, Status string }
	return json.Unmarshal(data, &v) == nil && v.Path != "" && v.Status != ""
}

// sidecarNode is NAME.ims.json. It exists exactly while NAME does; its content is made on each
// read, so it is always current.
type sidecarNode struct {
	gofs.Inode
	file *fileNode // read only
}

// content is the sidecar's JSON: the file's attributes, without their user.ims. prefix.
// With ask false, it holds what is at hand (see fileNode.values).
func (s *sidecarNode) content(ctx context.Context, ask bool) ([]byte, syscall.Errno) {
	s.file.mu.Lock()
	gone := s.file.gone
	s.file.mu.Unlock()
	if gone {
		return nil, syscall.ENOENT
	}
	out, errno := s.file.values(ctx, ask)
	if errno != gofs.OK {
		return nil, syscall.ENOENT
	}
	out["path"] = s.file.path()
	// As it is: a URL copied from `cat` opens (json.Marshal would write & as \u0026).
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, syscall.EIO
	}
	return b.Bytes(), gofs.OK
}

var _ = (gofs.NodeGetattrer)((*sidecarNode)(nil))

// Getattr asks IMS for nothing (ls -l of a folder of thousands): its size is that of what is at
// hand; an open fetches the rest (a signed URL), so that a stat after it gives the size read.
func (s *sidecarNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	data, errno := s.content(ctx, false)
	if errno != gofs.OK {
		return errno
	}
	s.file.mu.Lock()
	out.Mtime, out.Mtimensec = timespec(s.file.mtime)
	s.file.mu.Unlock()
	out.Ctime, out.Ctimensec = out.Mtime, out.Mtimensec
	out.Atime, out.Atimensec = out.Mtime, out.Mtimensec
	out.Mode = syscall.S_IFREG | 0o444
	out.Nlink = 1
	out.Size = uint64(len(data))
	out.Owner = fuse.Owner{Uid: s.file.fsys.uid, Gid: s.file.fsys.gid}
	// The content changes as the upload goes on: nothing about it may be cached. (Zero would
	// mean "the mount's default" to go-fuse.)
	out.SetTimeout(time.Nanosecond)
	return gofs.OK
}

var _ = (gofs.NodeOpener)((*sidecarNode)(nil))

func (s *sidecarNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		// A copy into the mount (cp -r, rsync, a backup copied back) writes sidecars too: the
		// write succeeds and its bytes are dropped; the sidecar stays the mount's.
		s.file.fsys.opts.Log.Info("a sidecar was written; its bytes are dropped (sidecars are the mount's)", "path", s.file.path()+SidecarSuffix)
		return discard{}, fuse.FOPEN_DIRECT_IO, gofs.OK
	}
	if _, errno := s.content(ctx, true); errno != gofs.OK {
		return nil, 0, errno
	}
	return nil, fuse.FOPEN_DIRECT_IO, gofs.OK
}

var _ = (gofs.NodeReader)((*sidecarNode)(nil))

func (s *sidecarNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data, errno := s.content(ctx, true)
	if errno != gofs.OK {
		return nil, errno
	}
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil), gofs.OK
	}
	return fuse.ReadResultData(data[off:min(int64(len(data)), off+int64(len(dest)))]), gofs.OK
}

var _ = (gofs.NodeSetattrer)((*sidecarNode)(nil))

// Setattr takes what a copy sets (times, mode, a truncation) and keeps none of it: the sidecar
// is made from its file.
func (s *sidecarNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return s.Getattr(ctx, fh, out)
}

var _ = (gofs.NodeLookuper)((*dirNode)(nil))

// Lookup finds a child, or makes the sidecar of a file child on demand.
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if c := d.GetChild(name); c != nil {
		if ga, ok := c.Operations().(gofs.NodeGetattrer); ok {
			var a fuse.AttrOut
			if errno := ga.Getattr(ctx, nil, &a); errno != gofs.OK {
				return nil, errno
			}
			out.Attr = a.Attr
		}
		return c, gofs.OK
	}
	if len(name) > nameMax {
		return nil, syscall.ENAMETOOLONG
	}
	if !d.fsys.opts.Sidecars || !isSidecar(name) {
		return nil, syscall.ENOENT
	}
	c := d.GetChild(strings.TrimSuffix(name, SidecarSuffix))
	if c == nil || !d.fsys.showsSidecar(join(d.path(), strings.TrimSuffix(name, SidecarSuffix))) {
		return nil, syscall.ENOENT
	}
	f, ok := c.Operations().(*fileNode)
	if !ok {
		return nil, syscall.ENOENT
	}
	s := &sidecarNode{file: f}
	var a fuse.AttrOut
	if errno := s.Getattr(ctx, nil, &a); errno != gofs.OK {
		return nil, errno
	}
	out.Attr = a.Attr
	out.SetEntryTimeout(time.Nanosecond)
	out.SetAttrTimeout(time.Nanosecond)
	return d.NewInode(ctx, s, gofs.StableAttr{Mode: syscall.S_IFREG}), gofs.OK
}

var _ = (gofs.NodeReaddirer)((*dirNode)(nil))

// Readdir lists the children, and beside each file its sidecar, just before it: rm -r removes
// in listing order, and a sidecar listed after its file would be gone by its turn.
func (d *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	// "." and "..", as every local file system lists them (ls -a).
	list := []fuse.DirEntry{{Name: ".", Mode: syscall.S_IFDIR}, {Name: "..", Mode: syscall.S_IFDIR}}
	dir := d.path()
	for name, c := range d.Children() {
		switch c.Operations().(type) {
		case *sidecarNode:
			continue // listed beside its file
		case *ghostNode:
			continue // the mount's own sidecar shows once its file is there
		case *fileNode:
			if d.fsys.showsSidecar(join(dir, name)) {
				list = append(list, fuse.DirEntry{Name: name + SidecarSuffix, Mode: syscall.S_IFREG})
			}
			list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG})
		default:
			list = append(list, fuse.DirEntry{Name: name, Mode: c.Mode()})
		}
	}
	return gofs.NewListDirStream(list), gofs.OK
}

// dropSidecar forgets the sidecar of file name, which has gone or moved, and tells the kernel
// to drop its entry too. Sidecar entries live a nanosecond, which the kernel rounds up to a
// tick; the notice closes that gap. It is sent once this request is answered: sent from inside
// a request on this folder, it would deadlock.
func (d *dirNode) dropSidecar(name string) {
	// The kernel has an entry for the sidecar only if it was looked up, which made it a child
	// here: without one there is nothing to drop (a notice per file created would race with
	// the creates that follow in the same folder).
	if !d.fsys.opts.Sidecars || d.GetChild(name+SidecarSuffix) == nil {
		return
	}
	d.RmChild(name + SidecarSuffix)
	go func() { _ = d.NotifyEntry(name + SidecarSuffix) }()
}
