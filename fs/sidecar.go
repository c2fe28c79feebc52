package fs

import (
	"context"
	"encoding/json"
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

// sidecarNode is NAME.ims.json. It exists exactly while NAME does; its content is made on each
// read, so it is always current.
type sidecarNode struct {
	gofs.Inode
	file *fileNode // read only
}

// content is the sidecar's JSON: the file's attributes, without their user.ims. prefix.
func (s *sidecarNode) content(ctx context.Context) ([]byte, syscall.Errno) {
	s.file.mu.Lock()
	gone := s.file.gone
	s.file.mu.Unlock()
	if gone {
		return nil, syscall.ENOENT
	}
	out, errno := s.file.values(ctx)
	if errno != gofs.OK {
		return nil, syscall.ENOENT
	}
	out["path"] = s.file.path()
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, syscall.EIO
	}
	return append(data, '\n'), gofs.OK
}

var _ = (gofs.NodeGetattrer)((*sidecarNode)(nil))

func (s *sidecarNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	data, errno := s.content(ctx)
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
		return nil, 0, s.file.fsys.refuse("open", s.file.path()+SidecarSuffix, syscall.EACCES, "sidecars are read-only")
	}
	return nil, fuse.FOPEN_DIRECT_IO, gofs.OK
}

var _ = (gofs.NodeReader)((*sidecarNode)(nil))

func (s *sidecarNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data, errno := s.content(ctx)
	if errno != gofs.OK {
		return nil, errno
	}
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil), gofs.OK
	}
	return fuse.ReadResultData(data[off:min(int64(len(data)), off+int64(len(dest)))]), gofs.OK
}

var _ = (gofs.NodeSetattrer)((*sidecarNode)(nil))

func (s *sidecarNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if in.Valid&(fuse.FATTR_ATIME|fuse.FATTR_MTIME|fuse.FATTR_ATIME_NOW|fuse.FATTR_MTIME_NOW) == in.Valid {
		return s.Getattr(ctx, fh, out) // touch, cp -p: nothing to keep, nothing to refuse
	}
	return s.file.fsys.refuse("setattr", s.file.path()+SidecarSuffix, syscall.EACCES, "sidecars are read-only")
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
	if !d.fsys.opts.Sidecars || !isSidecar(name) {
		return nil, syscall.ENOENT
	}
	c := d.GetChild(strings.TrimSuffix(name, SidecarSuffix))
	if c == nil {
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
	var list []fuse.DirEntry
	for name, c := range d.Children() {
		switch c.Operations().(type) {
		case *sidecarNode:
			continue // listed beside its file
		case *fileNode:
			if d.fsys.opts.Sidecars {
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
	if !d.fsys.opts.Sidecars {
		return
	}
	d.RmChild(name + SidecarSuffix)
	go func() { _ = d.NotifyEntry(name + SidecarSuffix) }()
}
