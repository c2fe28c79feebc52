package fs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/imsrules"
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

// ghostNode is a sidecar name a copy wrote before its file: it keeps nothing of what is written
// but the fields it sets, which the file gets when it comes; the mount's sidecar then shows in
// its place.
type ghostNode struct {
	gofs.Inode
	fsys  *FS       // read only
	mtime time.Time // read only

	mu     sync.Mutex
	fields map[string]fieldValue // protected by mu: what the last write set
}

// keep takes the fields a write of the ghost sets.
func (g *ghostNode) keep(data []byte) {
	if fields, ok := fieldsOf(data); ok {
		g.mu.Lock()
		g.fields = fields
		g.mu.Unlock()
	}
}

// ghostFields returns what the sidecar a copy wrote for file name before it set, if any.
func (d *dirNode) ghostFields(name string) map[string]fieldValue {
	c := d.GetChild(name + SidecarSuffix)
	if c == nil {
		return nil
	}
	g, ok := c.Operations().(*ghostNode)
	if !ok {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fields
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
	return &sidecarWriter{done: g.keep}, fuse.FOPEN_DIRECT_IO, gofs.OK
}

// asSidecar returns the fields of a file that is a sidecar written under another name: a JSON
// object of at most maxSidecarWrite bytes that was never sent to IMS. Anything else renamed onto
// a sidecar's name is refused, not taken: it may be a user's file.
func (n *fileNode) asSidecar() (map[string]fieldValue, bool) {
	rec, err := n.fsys.opts.Store.GetID(n.id)
	if err != nil || rec.MediaID != "" || !rec.Asked.IsZero() {
		return nil, false
	}
	data, ok := n.smallContent()
	if !ok {
		return nil, false
	}
	return fieldsOf(data)
}

// smallContent returns the bytes of a file of at most maxSidecarWrite bytes.
func (n *fileNode) smallContent() ([]byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.evicted || n.size > maxSidecarWrite {
		return nil, false
	}
	data, err := os.ReadFile(n.fsys.opts.Store.SpoolPath(n.id))
	return data, err == nil
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
	return sidecarJSON(out)
}

// sidecarJSON is a sidecar's content: the values, indented, as they are (a URL copied from
// `cat` opens: json.Marshal would write & as \u0026).
func sidecarJSON(vals map[string]string) ([]byte, syscall.Errno) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(vals); err != nil {
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
		// Written (a copy into the mount, an editor): the fields it sets are the asset's; the
		// sidecar shows what the mount says, as always.
		return &sidecarWriter{done: s.file.setFromSidecar}, fuse.FOPEN_DIRECT_IO, gofs.OK
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

var _ = (gofs.NodeGetxattrer)((*sidecarNode)(nil))

// Getxattr: a sidecar has no attributes (and no ACLs: see foreign).
func (s *sidecarNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if foreign(attr) {
		return 0, syscall.ENOTSUP
	}
	return 0, syscall.ENODATA
}

var _ = (gofs.NodeGetxattrer)((*ghostNode)(nil))

func (g *ghostNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if foreign(attr) {
		return 0, syscall.ENOTSUP
	}
	return 0, syscall.ENODATA
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
				out.SetEntryTimeout(time.Nanosecond) // a child that is there: its absence is not kept
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
		return nil, syscall.ENOENT // kept by the kernel for the negative timeout: see Mount
	}
	// A sidecar comes with its file, and with a change of the file's state, which the kernel
	// does not see: its absence is not kept (an entry timeout set makes go-fuse answer a
	// plain ENOENT).
	out.SetEntryTimeout(time.Nanosecond)
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

// A sidecar written as JSON sets the asset's fields, as the attributes do (a Windows or Mac
// editor, reaching the mount over SMB, cannot set extended attributes): the keys title,
// description, tags (a list, or a string of commas) and cate_id (a number or a string); null
// gives a field its default, another value (an object, true) is refused. Other keys are
// ignored, so that a sidecar copied from another mount (with its status, URLs…) carries its
// metadata and nothing else. Bytes that are not a JSON object are dropped, as a copy's, and
// every write succeeds: cp -r of a tree with sidecars exits 0.

// sidecarFields are the keys of a written sidecar that set an asset field, and the field.
var sidecarFields = map[string]string{"title": "title", "description": "description", "tags": "tags", "cate_id": "cate_id"}

// maxSidecarWrite bounds what a sidecar write is read for: fields of a few KiB at most.
const maxSidecarWrite = 64 << 10

// fieldValue is what a written sidecar gives a field: its text, or why it gives none.
type fieldValue struct {
	text string
	err  error // the JSON value is not text (an object, true…): refused as not valid
}

// fieldsOf reads the fields a written sidecar sets; ok is false for what is not a JSON object.
// The text of each is checked as its attribute's would be, when it is set (setFields).
func fieldsOf(data []byte) (map[string]fieldValue, bool) {
	var obj map[string]json.RawMessage
	if len(data) > maxSidecarWrite || json.Unmarshal(data, &obj) != nil || obj == nil {
		return nil, false
	}
	out := map[string]fieldValue{}
	for key, field := range sidecarFields {
		raw, ok := obj[key]
		if !ok {
			continue
		}
		var str string
		var list []string
		var num json.Number
		switch {
		case json.Unmarshal(raw, &str) == nil:
			out[field] = fieldValue{text: str}
		case json.Unmarshal(raw, &list) == nil:
			out[field] = fieldValue{text: strings.Join(list, ",")}
		case json.Unmarshal(raw, &num) == nil:
			out[field] = fieldValue{text: num.String()}
		default:
			// Refused here: its JSON taken as text would pass as a title, a description or tags.
			out[field] = fieldValue{err: fmt.Errorf("%s: %w: %s, not a string, a list of strings or a number", field, imsrules.ErrMetaInvalid, jsonKind(raw))}
		}
	}
	return out, true
}

// jsonKind names a JSON value that is not text.
func jsonKind(raw json.RawMessage) string {
	switch raw = bytes.TrimLeft(raw, " \t\r\n"); {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "a list of other than strings"
	case raw[0] == 't' || raw[0] == 'f':
		return "true or false"
	}
	return "a value"
}

// sidecarWriter takes the bytes written to a sidecar; at its close (a FLUSH: the writer reads
// the fields back at once), the fields they set.
type sidecarWriter struct {
	mu      sync.Mutex
	data    []byte // protected by mu: up to maxSidecarWrite+1 bytes
	written bool   // protected by mu: written since the fields were last taken
	done    func(data []byte)
}

var _ = (gofs.FileWriter)((*sidecarWriter)(nil))

func (w *sidecarWriter) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := off + int64(len(data)); off <= maxSidecarWrite {
		if need := min(end, maxSidecarWrite+1); int64(len(w.data)) < need {
			w.data = append(w.data, make([]byte, need-int64(len(w.data)))...)
		}
		copy(w.data[off:], data[:min(int64(len(data)), maxSidecarWrite+1-off)])
	}
	w.written = true
	return uint32(len(data)), gofs.OK
}

var _ = (gofs.FileReader)((*sidecarWriter)(nil))

func (w *sidecarWriter) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(nil), gofs.OK
}

var _ = (gofs.FileFlusher)((*sidecarWriter)(nil))

func (w *sidecarWriter) Flush(ctx context.Context) syscall.Errno {
	w.mu.Lock()
	data, written := bytes.Clone(w.data), w.written
	w.written = false
	w.mu.Unlock()
	if written {
		w.done(data)
	}
	return gofs.OK
}

var _ = (gofs.FileReleaser)((*sidecarWriter)(nil))

// Release takes what was written after the last close (through a descriptor a child kept).
func (w *sidecarWriter) Release(ctx context.Context) syscall.Errno { return w.Flush(ctx) }

// setFromSidecar sets the fields a write of the file's sidecar gave, each as its attribute
// would be set; the first refusal is kept for the sidecar to show ("update": "refused: …").
func (n *fileNode) setFromSidecar(data []byte) {
	fields, ok := fieldsOf(data)
	if !ok {
		n.fsys.opts.Log.Info("a sidecar was written with what is not a JSON object; its bytes are dropped", "path", n.path()+SidecarSuffix)
		return
	}
	n.setFields(n.path(), fields)
}

// metaRefused reports whether the sidecar says a value was refused.
func (n *fileNode) metaRefused() bool {
	rec, err := n.fsys.opts.Store.GetID(n.id)
	return err == nil && rec.MetaRefused != ""
}

// setFields sets fields on the file at p, as a written sidecar gives them.
func (n *fileNode) setFields(p string, fields map[string]fieldValue) {
	const op = "write " + SidecarSuffix
	refused := ""
	for _, field := range slices.Sorted(maps.Keys(fields)) {
		v := fields[field]
		errno, why := gofs.OK, ""
		if v.err != nil {
			why = xattrPrefix + field + ": " + v.err.Error() // as setField says a refusal
			errno = n.fsys.refuse(op, p, syscall.EINVAL, why)
		} else {
			errno, why = n.setField(p, op, field, v.text, 0)
		}
		if errno != gofs.OK && refused == "" {
			refused = why
		}
	}
	// The sidecar says the last write's refusal, or none.
	if refused != "" || n.metaRefused() {
		if err := n.fsys.opts.Store.SetMetaRefused(n.id, refused); err != nil && !errors.Is(err, cache.ErrNotFound) {
			n.fsys.opts.Log.Error("keep why a sidecar's value was refused", "path", p+SidecarSuffix, "err", err)
		}
	}
}

// A sidecar (and a ghost) takes the attributes a copy or Samba sets on it (DOS attributes) and
// keeps none: it is made from its file.

var _ = (gofs.NodeSetxattrer)((*sidecarNode)(nil))

func (s *sidecarNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return gofs.OK
}

var _ = (gofs.NodeSetxattrer)((*ghostNode)(nil))

func (g *ghostNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return gofs.OK
}
