package fs

import (
	"context"
	"fmt"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/imsfs/imsfs/cache"
)

// xattrPrefix starts every attribute imsfs shows. The names below are a contract that scripts
// and tests read: never rename one.
const xattrPrefix = "user.ims."

// xattrs lists the attributes a file shows, in listing order, with how each is read from the
// record. An attribute whose value is empty is absent (ENODATA).
var xattrs = []struct {
	name  string
	value func(n *fileNode, r *cache.Record) string
}{
	{"status", func(_ *fileNode, r *cache.Record) string { return string(r.State) }},
	{"media_id", func(_ *fileNode, r *cache.Record) string { return r.MediaID }},
	{"media_url", func(_ *fileNode, r *cache.Record) string { return r.MediaURL }},
	{"file_url", func(_ *fileNode, r *cache.Record) string { return r.FileURL }},
	{"progress", progressValue},
	{"error", func(_ *fileNode, r *cache.Record) string { return r.Error }},
	{"type", func(_ *fileNode, r *cache.Record) string { return r.Type }},
	{"business_type", func(_ *fileNode, r *cache.Record) string { return r.BusinessType }},
}

// progressValue is "SENT/TOTAL" bytes: live while the bytes go out, whole once they are there.
func progressValue(n *fileNode, r *cache.Record) string {
	switch r.State {
	case cache.Uploading:
		if sent, total, ok := n.fsys.opts.Uploads.Progress(r.ID); ok {
			return fmt.Sprintf("%d/%d", min(sent, total), total)
		}
		return fmt.Sprintf("0/%d", r.Size)
	case cache.Uploaded, cache.Ready:
		return fmt.Sprintf("%d/%d", r.Size, r.Size)
	}
	return ""
}

// values returns the attributes that have a value now.
func (n *fileNode) values() (names []string, vals map[string]string, errno syscall.Errno) {
	r, err := n.fsys.opts.Store.GetID(n.id)
	if err != nil {
		return nil, nil, syscall.ENODATA // unlinked while open: nothing to say
	}
	vals = map[string]string{}
	for _, x := range xattrs {
		if v := x.value(n, &r); v != "" {
			names = append(names, xattrPrefix+x.name)
			vals[xattrPrefix+x.name] = v
		}
	}
	return names, vals, gofs.OK
}

var _ = (gofs.NodeGetxattrer)((*fileNode)(nil))

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, xattrPrefix) {
		return 0, syscall.ENODATA
	}
	_, vals, errno := n.values()
	if errno != gofs.OK {
		return 0, errno
	}
	v, ok := vals[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	return copyOut(dest, v)
}

var _ = (gofs.NodeListxattrer)((*fileNode)(nil))

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, _, errno := n.values()
	if errno != gofs.OK {
		return 0, gofs.OK
	}
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(0)
	}
	return copyOut(dest, b.String())
}

var _ = (gofs.NodeSetxattrer)((*fileNode)(nil))

// Setxattr refuses: the status attributes are read-only, and other attributes are not kept
// (cp -a and rsync -X take ENOTSUP as "not supported here" and go on).
func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if strings.HasPrefix(attr, xattrPrefix) {
		return n.fsys.refuse("setxattr", n.path(), syscall.EPERM, attr+" is read-only")
	}
	return n.fsys.refuse("setxattr", n.path(), syscall.ENOTSUP, attr+" is not kept: only the user.ims.* attributes exist here")
}

var _ = (gofs.NodeRemovexattrer)((*fileNode)(nil))

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if strings.HasPrefix(attr, xattrPrefix) {
		return n.fsys.refuse("removexattr", n.path(), syscall.EPERM, attr+" is read-only")
	}
	return syscall.ENODATA
}

// copyOut answers a getxattr/listxattr: the size alone for an empty buffer, ERANGE for a small one.
func copyOut(dest []byte, v string) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(v)), gofs.OK
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), gofs.OK
}

var _ = (gofs.NodeSetxattrer)((*dirNode)(nil))

// Setxattr on a folder: nothing is kept (cp -p and rsync -A take ENOTSUP as "no ACLs here").
func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return d.fsys.refuse("setxattr", d.path(), syscall.ENOTSUP, attr+" is not kept: folders have no extended attributes here")
}

var _ = (gofs.NodeGetxattrer)((*dirNode)(nil))

// Getxattr on the root gives user.ims.control, the mount's control socket; folders have no
// other attributes.
func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if d.IsRoot() && attr == xattrPrefix+"control" && d.fsys.opts.ControlSocket != "" {
		return copyOut(dest, d.fsys.opts.ControlSocket)
	}
	return 0, syscall.ENODATA
}
