package fs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// xattrPrefix starts every attribute imsfs shows. The names below are a contract that scripts
// and tests read: never rename one.
const xattrPrefix = "user.ims."

// xattrDef is one attribute a file shows.
type xattrDef struct {
	name  string
	value func(ctx context.Context, n *fileNode, r *cache.Record) string
	// has says whether the attribute has a value, where reading it costs more than the record.
	has func(r *cache.Record) bool
}

// xattrs lists the attributes a file shows, in listing order, with how each is read from the
// record. An attribute whose value is empty is absent (ENODATA). Only the attribute asked for is
// read: file_url may ask IMS for a signed URL, and a status read must never wait on that.
var xattrs = []xattrDef{
	{name: "status", value: func(_ context.Context, _ *fileNode, r *cache.Record) string { return string(r.State) }},
	{name: "media_id", value: func(_ context.Context, _ *fileNode, r *cache.Record) string { return r.MediaID }},
	{name: "media_url", value: func(_ context.Context, _ *fileNode, r *cache.Record) string { return r.MediaURL }},
	{name: "file_url", value: signedURLValue, has: func(r *cache.Record) bool { return r.State.Finished() && r.MediaID != "" }},
	{name: "input_url", value: func(_ context.Context, _ *fileNode, r *cache.Record) string { return r.FileURL }},
	{name: "progress", value: progressValue},
	{name: "error", value: func(_ context.Context, _ *fileNode, r *cache.Record) string { return r.Error }},
	{name: "type", value: func(_ context.Context, _ *fileNode, r *cache.Record) string { return r.Type }},
	{name: "business_type", value: func(_ context.Context, _ *fileNode, r *cache.Record) string { return r.BusinessType }},
	// The asset's fields the user may set (setMeta); the title is the name's until one is set.
	{name: "title", value: func(_ context.Context, _ *fileNode, r *cache.Record) string { return imsrules.Title(r) }},
	{name: "description", value: metaValue("description")},
	{name: "tags", value: metaValue("tags")},
	{name: "cate_id", value: metaValue("cate_id")},
	// update: "pending" while the asset is to follow a change (a rename, a field set after its
	// creation), "done" once UpdateMediaInfo carried the last one.
	{name: "update", value: func(_ context.Context, _ *fileNode, r *cache.Record) string {
		switch {
		case r.MetaRefused != "":
			return "refused: " + r.MetaRefused
		case r.MetaPending:
			return "pending"
		case !r.MetaDone.IsZero():
			return "done"
		}
		return ""
	}},
}

func metaValue(field string) func(context.Context, *fileNode, *cache.Record) string {
	return func(_ context.Context, _ *fileNode, r *cache.Record) string { return r.Meta.Field(field) }
}

// isMetaField reports whether name (without the prefix) is an asset field the user may set.
func isMetaField(name string) bool { return slices.Contains(cache.MetaFields, name) }

// signedURLValue is a URL of the uploaded file that opens as it is (GetMediaInfo's signed
// FileUrl, renewed before it expires); the plain address is input_url.
func signedURLValue(ctx context.Context, n *fileNode, r *cache.Record) string {
	if !r.State.Finished() || r.MediaID == "" || n.fsys.opts.Objects == nil {
		return ""
	}
	if u := n.fsys.opts.Objects.CachedURL(r.MediaID); u != "" || ctx.Value(noAsking{}) != nil {
		return u
	}
	// Not cancelled with the request: the Go runtime's own signals interrupt a getxattr of a Go
	// program, and a signed URL asked for is worth having (it is cached) either way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	u, _, err := n.fsys.opts.Objects.URL(ctx, r.MediaID)
	if err != nil {
		n.fsys.opts.Log.Warn("no signed URL for user.ims.file_url", "path", r.Path, "media_id", r.MediaID, "err", err)
		return ""
	}
	return u
}

// progressValue is "SENT/TOTAL" bytes: live while the bytes go out, whole once they are there.
func progressValue(_ context.Context, n *fileNode, r *cache.Record) string {
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

// record returns the file's record; one unlinked while open has none (nothing to say).
func (n *fileNode) record() (cache.Record, syscall.Errno) {
	r, err := n.fsys.opts.Store.GetID(n.id)
	if err != nil {
		return r, syscall.ENODATA
	}
	return r, gofs.OK
}

// names returns the attributes that have a value now.
func (n *fileNode) names(ctx context.Context, r *cache.Record) []string {
	var out []string
	for _, x := range xattrs {
		if x.has != nil && x.has(r) || x.has == nil && x.value(ctx, n, r) != "" {
			out = append(out, xattrPrefix+x.name)
		}
	}
	return out
}

// noAsking marks a context in which values are what is at hand: nothing is asked of IMS.
type noAsking struct{}

// values returns every attribute that has a value now, by name without its prefix: the sidecar.
// With ask false, a value that would have to be asked for (a signed URL not yet had) is left
// out: a stat of a sidecar (ls -l of a folder of thousands) asks nothing.
func (n *fileNode) values(ctx context.Context, ask bool) (map[string]string, syscall.Errno) {
	if !ask {
		ctx = context.WithValue(ctx, noAsking{}, true)
	}
	r, errno := n.record()
	if errno != gofs.OK {
		return nil, errno
	}
	vals := map[string]string{}
	for _, x := range xattrs {
		if v := x.value(ctx, n, &r); v != "" {
			vals[x.name] = v
		}
	}
	return vals, gofs.OK
}

var _ = (gofs.NodeGetxattrer)((*fileNode)(nil))

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if foreign(attr) {
		return 0, syscall.ENOTSUP
	}
	r, errno := n.record()
	if errno != gofs.OK {
		return 0, errno
	}
	if !strings.HasPrefix(attr, xattrPrefix) {
		return keptValue(r.Xattrs, attr, dest)
	}
	for _, x := range xattrs {
		if xattrPrefix+x.name == attr {
			if v := x.value(ctx, n, &r); v != "" {
				return copyOut(dest, v)
			}
			break
		}
	}
	return 0, syscall.ENODATA
}

var _ = (gofs.NodeListxattrer)((*fileNode)(nil))

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	r, errno := n.record()
	if errno != gofs.OK {
		return 0, gofs.OK
	}
	return listNames(dest, n.names(ctx, &r), r.Xattrs)
}

// listNames answers a listxattr: the mount's attributes, then the kept ones, by name.
func listNames(dest []byte, own []string, kept cache.Xattrs) (uint32, syscall.Errno) {
	var b strings.Builder
	for _, name := range own {
		b.WriteString(name)
		b.WriteByte(0)
	}
	for _, name := range slices.Sorted(maps.Keys(kept)) {
		b.WriteString(name)
		b.WriteByte(0)
	}
	return copyOut(dest, b.String())
}

// keptValue answers a getxattr of a kept attribute.
func keptValue(kept cache.Xattrs, attr string, dest []byte) (uint32, syscall.Errno) {
	v, ok := kept[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	return copyOut(dest, string(v))
}

// xattrFlags reads setxattr(2)'s flags.
func xattrFlags(flags uint32) cache.XattrFlags {
	return cache.XattrFlags{Create: flags&unix.XATTR_CREATE != 0, Replace: flags&unix.XATTR_REPLACE != 0}
}

// keptErrno is the errno of a refused set or removal of a kept attribute, as ext4 answers it;
// one that goes beyond ext4's room is said in the log (the others are how tools ask).
func (f *FS) keptErrno(op, p string, err error) syscall.Errno {
	switch {
	case err == nil:
		return gofs.OK
	case errors.Is(err, cache.ErrNoXattr):
		return syscall.ENODATA
	case errors.Is(err, cache.ErrXattrExists):
		return syscall.EEXIST
	case errors.Is(err, cache.ErrXattrName):
		return syscall.ERANGE
	case errors.Is(err, cache.ErrXattrSpace):
		return f.refuse(op, p, syscall.ENOSPC, err.Error())
	case errors.Is(err, cache.ErrNotFound):
		return syscall.ENOENT
	}
	return f.fail(op, p, err)
}

var _ = (gofs.NodeSetxattrer)((*fileNode)(nil))

// Setxattr sets one of the asset's fields (user.ims.title, description, tags, cate_id). The
// mount's other attributes (status, media_id…) are the mount's: a set of one, as a copy out of
// a mount and back carries it (rsync -aX, cp -a), is taken and changes nothing. Any other user.*
// attribute is kept with the file (Samba's DOS attributes and streams, browsers' tags).
func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if name, ok := strings.CutPrefix(attr, xattrPrefix); ok {
		switch {
		case isMetaField(name):
			return n.setMeta("setxattr", name, string(data), flags)
		case !isXattr(name):
			return n.fsys.refuse("setxattr", n.path(), syscall.EINVAL, noSuchXattr(attr))
		}
		n.fsys.opts.Log.Debug("a set of one of the mount's own attributes is taken and changes nothing", "path", n.path(), "attr", attr)
		return gofs.OK
	}
	switch {
	case isACL(attr):
		return n.fsys.unsupported("setxattr", n.path(), attr+": no ACLs here")
	case strings.HasPrefix(attr, "user."):
		return n.fsys.keptErrno("setxattr", n.path(), n.fsys.opts.Store.SetXattr(n.id, attr, data, false, xattrFlags(flags)))
	}
	return n.fsys.refuse("setxattr", n.path(), syscall.ENOTSUP, attr+" is not kept: the user.* attributes are")
}

// isXattr reports whether name (without the prefix) is an attribute a file may show.
func isXattr(name string) bool {
	return slices.ContainsFunc(xattrs, func(x xattrDef) bool { return x.name == name })
}

// noSuchXattr says that attr (user.ims.…) is none of imsfs's, and which one was likely meant.
func noSuchXattr(attr string) string {
	names := make([]string, len(xattrs))
	for i, x := range xattrs {
		names[i] = xattrPrefix + x.name
	}
	why := attr + ": there is no such attribute"
	if near := Nearest(attr, names); near != "" {
		return why + " (did you mean " + near + "?)"
	}
	return why + " (getfattr -d -m user.ims FILE lists them)"
}

// isACL reports whether attr is a POSIX ACL, which tools set (cp -a, sed -i, vim) and take
// ENOTSUP for as "no ACLs on this file system", as on any such file system: not a refusal.
// foreign reports whether attr is outside user.*, and gives the answer to a get or removal of
// it: imsfs keeps and shows user.* attributes only, as a file system without ACLs or security
// labels, which answers ENOTSUP. ls -l, which asks for the security label and the ACL of every
// file, takes that as "none on this file system" and asks no more: a listing of 10,000 files is
// not 20,000 round trips more.
func foreign(attr string) bool { return !strings.HasPrefix(attr, "user.") }

func isACL(attr string) bool {
	return attr == "system.posix_acl_access" || attr == "system.posix_acl_default"
}

var _ = (gofs.NodeRemovexattrer)((*fileNode)(nil))

// Removexattr of an asset's field gives it back its default (the title from the name, no
// description, tags or category); of one of the mount's other attributes, it is taken and
// changes nothing (rsync -X removes what its source lacks); of a kept one, it goes.
func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if name, ok := strings.CutPrefix(attr, xattrPrefix); ok {
		switch {
		case isMetaField(name):
			return n.setMeta("removexattr", name, "", unix.XATTR_REPLACE)
		case !isXattr(name):
			return syscall.ENODATA // nothing of that name to remove
		}
		return gofs.OK
	}
	if foreign(attr) {
		return syscall.ENOTSUP
	}
	return n.fsys.keptErrno("removexattr", n.path(), n.fsys.opts.Store.SetXattr(n.id, attr, nil, true, cache.XattrFlags{}))
}

// setMeta sets (or with "" removes) the asset field of the file: checked as IMS would check
// it, it goes with CreateUploadMedia if the asset is not asked for yet, or else by
// UpdateMediaInfo once the bytes are up.
func (n *fileNode) setMeta(op, field, value string, flags uint32) syscall.Errno {
	errno, _ := n.setField(n.path(), op, field, value, flags)
	return errno
}

// setField is setMeta of the file at p, saying why a value was refused ("": it was not).
func (n *fileNode) setField(p, op, field, value string, flags uint32) (syscall.Errno, string) {
	refuse := func(errno syscall.Errno, why string) (syscall.Errno, string) {
		return n.fsys.refuse(op, p, errno, why), why
	}
	r, err := n.fsys.opts.Store.GetID(n.id)
	if err != nil {
		return refuse(syscall.ENOENT, "the file is deleted: its asset's fields cannot be set")
	}
	attr := xattrPrefix + field
	switch cur := r.Meta.Field(field); {
	case flags&unix.XATTR_CREATE != 0 && cur != "":
		return refuse(syscall.EEXIST, attr+" is set already (XATTR_CREATE)")
	case op == "removexattr" && cur == "":
		return gofs.OK, "" // nothing set: the default stands (the title shows, and goes, as the name's)
	case flags&unix.XATTR_REPLACE != 0 && cur == "":
		return syscall.ENODATA, "" // nothing set: the default stands
	}
	// Once the asset is asked for, a change goes by UpdateMediaInfo, whose limits are in bytes.
	value, err = imsrules.CheckMeta(field, value, r.MediaID != "" || !r.Asked.IsZero())
	if err != nil {
		errno := syscall.EINVAL
		if errors.Is(err, imsrules.ErrMetaTooLong) {
			errno = syscall.E2BIG
		}
		return refuse(errno, attr+": "+err.Error())
	}
	effective := r.Meta.Field(field)
	if field == "title" {
		effective = imsrules.Title(&r)
	}
	if value == effective && value != "" {
		// What it is already (a copy of the mount's attributes carries them all): set as is,
		// so that a title taken from the name still follows the name.
		return gofs.OK, ""
	}
	rec, err := n.fsys.opts.Uploads.Apply(n.id, cache.Event{Kind: cache.MetaSet, Field: field, Value: value})
	if err != nil {
		return n.fsys.fail(op, p, err), err.Error()
	}
	if rec.MetaRefused != "" {
		_ = n.fsys.opts.Store.SetMetaRefused(n.id, "") // a value is taken: the refusal is past
	}
	how := "with the upload"
	if rec.MetaPending {
		how = "by an update of the asset"
	}
	n.fsys.opts.Log.Info("asset field set", "path", p, "field", field, "value", value, "sent", how)
	return gofs.OK, ""
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

// Setxattr on a folder keeps a user.* attribute (Samba sets DOS attributes on folders too);
// ACLs are ENOTSUP, as where there are none (cp -p and rsync -A go on).
func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	switch {
	case isACL(attr):
		return d.fsys.unsupported("setxattr", d.path(), attr+": no ACLs here")
	case strings.HasPrefix(attr, xattrPrefix):
		return gofs.OK // the mount's (user.ims.control): a copy of the mount carries it; it changes nothing
	case strings.HasPrefix(attr, "user."):
		key, errno := d.storeKey()
		if errno != gofs.OK {
			return errno
		}
		return d.fsys.keptErrno("setxattr", d.path(), d.fsys.opts.Store.SetDirXattr(key, attr, data, false, xattrFlags(flags), d.stored()))
	}
	return d.fsys.refuse("setxattr", d.path(), syscall.ENOTSUP, attr+" is not kept: folders have no extended attributes here")
}

var _ = (gofs.NodeGetxattrer)((*dirNode)(nil))

// Getxattr on the root gives user.ims.control, the mount's control socket; a folder's kept
// attributes are read from the store.
func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if d.IsRoot() && attr == xattrPrefix+"control" && d.fsys.opts.ControlSocket != "" {
		return copyOut(dest, d.fsys.opts.ControlSocket)
	}
	if foreign(attr) {
		return 0, syscall.ENOTSUP
	}
	if strings.HasPrefix(attr, xattrPrefix) {
		return 0, syscall.ENODATA
	}
	key, errno := d.storeKey()
	if errno != gofs.OK {
		return 0, errno
	}
	kept, err := d.fsys.opts.Store.DirXattrs(key)
	if err != nil {
		return 0, d.fsys.fail("getxattr", d.path(), err)
	}
	return keptValue(kept, attr, dest)
}

// storeKey is the folder's key in the store's folders: its path, "." for the root; a folder
// removed since (a handle still open) has none.
func (d *dirNode) storeKey() (string, syscall.Errno) {
	switch p := d.path(); {
	case p != "":
		return p, gofs.OK
	case d.IsRoot():
		return ".", gofs.OK
	}
	return "", syscall.ENOENT
}

// stored reports whether the folder's record is made by its attributes: the root and the
// mapping's fixed folders have none until then (a folder a user made has one from its mkdir).
func (d *dirNode) stored() bool { return d.IsRoot() || d.fsys.opts.Mapping.IsFixed(d.path()) }

var _ = (gofs.NodeListxattrer)((*dirNode)(nil))

func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	key, errno := d.storeKey()
	if errno != gofs.OK {
		return 0, errno
	}
	kept, err := d.fsys.opts.Store.DirXattrs(key)
	if err != nil {
		return 0, d.fsys.fail("listxattr", d.path(), err)
	}
	var own []string
	if d.IsRoot() && d.fsys.opts.ControlSocket != "" {
		own = append(own, xattrPrefix+"control")
	}
	return listNames(dest, own, kept)
}

var _ = (gofs.NodeRemovexattrer)((*dirNode)(nil))

func (d *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	switch {
	case strings.HasPrefix(attr, xattrPrefix):
		return gofs.OK // the mount's: rsync -X removes what its source lacks; it changes nothing
	case foreign(attr):
		return syscall.ENOTSUP
	}
	key, errno := d.storeKey()
	if errno != gofs.OK {
		return errno
	}
	return d.fsys.keptErrno("removexattr", d.path(), d.fsys.opts.Store.SetDirXattr(key, attr, nil, true, cache.XattrFlags{}, d.stored()))
}
