// Package fs is the FUSE side of imsfs: a go-fuse node tree whose folders stand for IMS media
// types and business types. Files are kept in spool files of the cache store; when the last
// writer of a file closes it, the file is handed to the uploader.
//
// The tree is built in memory from the store at mount time and changed only through this package,
// so lookups and listings never touch the disk. Each refusal returns a precise errno and logs one
// line with the path and the reason.
//
// NB lock order: fileNode.mu may be held while calling the store and Uploads; nothing those call
// takes a node lock.
package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/xrash/smetrics"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader"
)

// Uploads is what the file system asks of the uploader: it reports what happens to each file
// as an event, and the uploader commits it (by the life-cycle table) and acts on it. The file
// system never sets a state.
type Uploads interface {
	// Apply commits event ev on record id and carries out what follows.
	Apply(id uint64, ev cache.Event) (cache.Record, error)
	// Rename moves a file or folder in the store; follow gives the event of each file moved.
	Rename(from, to string, follow func(cache.Record) cache.Event) (cache.Renaming, error)
	// Growing says that the file of record id, written from its start in order, has reached
	// size bytes: its parts may go up before it is closed.
	Growing(id uint64, size int64)
	// Progress returns the bytes sent of an upload in flight.
	Progress(id uint64) (sent, total int64, ok bool)
}

// Options configures a file system.
type Options struct {
	Store       *cache.Store
	Uploads     Uploads
	Mapping     *Mapping      // [DefaultMapping]
	UploadDelay time.Duration // settle time after the last writer closes a file
	Objects     Objects       // reads evicted files back from their objects [none: nothing is evicted]
	// CacheMaxSize bounds the spool: ready files no one has open are evicted, least recently
	// used first, when it is exceeded [0: no bound].
	CacheMaxSize int64
	// ControlSocket is where the mount answers `imsfs retry`; the root shows it as the
	// attribute user.ims.control, so that the command finds it from any path in the mount.
	ControlSocket string
	// Sidecars shows NAME.ims.json beside each file [off; the mount command turns it on].
	Sidecars bool
	// Junk reports whether the file at a path has a name desktops and systems leave
	// (.DS_Store, Thumbs.db…): it shows no sidecar [none].
	Junk func(path string) bool
	// NoPassthrough keeps every write going through imsfs, where the kernel could pass it
	// straight to the spool [passthrough where the kernel and privileges allow].
	NoPassthrough bool
	// SyncOnClose makes every close fsync the file, its name and its record before it returns,
	// as a mount did before grouped commits [off: see cache/durable.go].
	SyncOnClose bool
	Log         *slog.Logger
	// Library, when set, is shown read-only as library/ (every asset in IMS), its bytes read
	// through Objects and kept in Chunks [none: no library/].
	Library *uploader.Library
	Chunks  *cache.Chunks
	// Observer is told of refusals, failures and evictions, for metrics [nothing].
	Observer Observer
}

// Observer is told what the file system refuses, fails and evicts (cmd turns it into
// Prometheus series). Its methods must be quick: they are called on the FUSE path.
type Observer interface {
	Refused(op, errno string) // an operation refused by design (EACCES, EPERM, ENAMETOOLONG…)
	Failed(op, errno string)  // an operation that failed (a full disk, a store error)
	Evicted(bytes int64)      // a ready file's spool dropped from the cache
	// Operation: the kernel asked op (lookup, getattr, write…), answered with errno ("" when it
	// succeeded).
	Operation(op, errno string)
}

type nopObserver struct{}

func (nopObserver) Refused(string, string)   {}
func (nopObserver) Failed(string, string)    {}
func (nopObserver) Evicted(int64)            {}
func (nopObserver) Operation(string, string) {}

// CachedBytes is how many bytes the spools of the mount's files hold (not evicted, not gone).
func (f *FS) CachedBytes() int64 { return f.cached.Load() }

// FS is one mounted file system.
type FS struct {
	opts     Options // read only
	uid, gid uint32  // the owner every node shows
	root     *dirNode
	stop     chan struct{} // closed by Close: the evictor stops
	cached   atomic.Int64  // bytes of the files whose spool is here (not evicted, not gone)
	refusals refusalLog    // the most recent refusals, for imsfs status
	// passthrough: new and truncated files are written by the kernel straight to their spool,
	// without a write request (set once the kernel has said it can).
	passthrough atomic.Bool
	lib         *libBytes // the library's bytes, fetched on demand
	// roomSeen is when the cache volume was last seen with room for passthrough (UnixNano):
	// a burst of new files asks statfs once, not once each.
	roomSeen atomic.Int64
}

// New returns a file system over opts.Store; Mount serves it.
func New(opts Options) *FS {
	if opts.Mapping == nil {
		opts.Mapping = DefaultMapping()
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.Objects == nil {
		opts.CacheMaxSize = 0 // evicted bytes could not be read back
		opts.Library = nil    // nor the library's
	}
	if opts.Chunks == nil {
		opts.Library = nil
	}
	f := &FS{opts: opts, uid: uint32(os.Getuid()), gid: uint32(os.Getgid()), stop: make(chan struct{})}
	f.root = &dirNode{fsys: f, mode: 0o755, mtime: time.Now()}
	f.lib = &libBytes{fsys: f, flights: map[flightKey]*flight{}, slots: make(chan struct{}, libFetches)}
	return f
}

// MountOptions are the FUSE options a mount is made with.
type MountOptions struct {
	Debug bool // log every FUSE request
	// AllowOther lets other users than the mounting one in (a folder shared over SMB or NFS by
	// a server running as another user). A user other than root needs user_allow_other in
	// /etc/fuse.conf for it.
	AllowOther bool
}

// Mount mounts the file system on dir and serves it in the background; the caller waits on the
// returned server and unmounts it.
func (f *FS) Mount(dir string, mo MountOptions) (*fuse.Server, error) {
	timeout := time.Second
	// A name looked up and not found is kept by the kernel for a second: an editor probes the
	// same names again and again (its swap and backup files), 6× faster so. Names the kernel
	// does not see come (sidecars, library/) are answered without it: see their Lookup.
	negative := time.Second
	opts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			FsName: "imsfs",
			Name:   "imsfs",
			// Large writes keep saving at local-disk speed: fewer, bigger requests.
			MaxWrite: 1 << 20,
			// As root the kernel mount needs no helper; otherwise go-fuse falls back to fusermount3.
			DirectMount: true,
			Debug:       mo.Debug,
			AllowOther:  mo.AllowOther,
			Logger:      slog.NewLogLogger(f.opts.Log.Handler(), slog.LevelInfo),
			// Every read answers bytes already in memory: splicing them costs a copy into a
			// pipe besides, and fails (with a log line) for 1 MiB reads, over the pipe's size.
			DisableSplice: true,
			// READDIRPLUS only where the attributes are asked for after (ls -l), not for a
			// listing of names (ls, find -name): 3-4× faster for those, ls -l the same.
			ExtraCapabilities: fuse.CAP_READDIRPLUS_AUTO,
		},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &negative,
		UID:             f.uid,
		GID:             f.gid,
	}
	if mo.AllowOther {
		// The kernel then checks each user's access against the mode bits: without it, every
		// user could write every file.
		opts.MountOptions.Options = append(opts.MountOptions.Options, "default_permissions")
	}
	// gofs.Mount, with every request counted on its way through.
	raw := gofs.NewNodeFS(f.root, opts)
	if _, nop := f.opts.Observer.(nopObserver); !nop {
		raw = &countingFS{RawFileSystem: raw, obs: f.opts.Observer}
	}
	server, err := fuse.NewServer(raw, dir, &opts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	// FUSE passthrough (Linux 6.9, and the mounter must be privileged): the kernel then writes a
	// new file's bytes straight to its spool, at local-disk speed.
	switch {
	case f.opts.NoPassthrough:
		f.opts.Log.Info("FUSE passthrough is off (--passthrough=false): writes go through imsfs")
	case server.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH == 0:
		f.opts.Log.Info("FUSE passthrough is not offered by this kernel (it needs Linux 6.9 or later): writes go through imsfs")
	case os.Geteuid() != 0:
		f.opts.Log.Info("FUSE passthrough needs a privileged mount (root): writes go through imsfs")
	default:
		f.passthrough.Store(true)
		f.opts.Log.Info("FUSE passthrough is on: a new or truncated file is written straight to its spool")
	}
	f.raiseReadAhead(dir)
	if f.opts.CacheMaxSize > 0 || f.opts.Library != nil {
		go f.evictLoop(f.stop)
	}
	return server, nil
}

// readAheadKB is the kernel's read-ahead for the mount. FUSE starts at 128 KiB, so that a
// sequential read of a large file (one read back from its object, above all) is cut into
// 128 KiB requests, one round trip each; 4 MiB lets the kernel ask for up to max_read (1 MiB)
// at a time, several at once, as imsfs's own read-ahead of objects fetches ahead anyway.
const readAheadKB = 4096

// raiseReadAhead sets the read-ahead of the mount's backing device (/sys/class/bdi/MAJ:MIN),
// which only root may; elsewhere the kernel's default stays, and reads are only slower.
func (f *FS) raiseReadAhead(dir string) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(strconv.Itoa(readAheadKB)), 0o644); err != nil {
		f.opts.Log.Debug("the kernel's read-ahead stays at its default", "path", p, "err", err)
		return
	}
	f.opts.Log.Debug("kernel read-ahead raised", "path", p, "kb", readAheadKB)
}

// Close stops the work the file system does in the background (eviction); call it once the
// server has stopped.
func (f *FS) Close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
}

var _ = (gofs.NodeOnAdder)((*dirNode)(nil))

// OnAdd builds the tree when the root is mounted: the fixed folders, then the folders and files
// the store holds.
func (d *dirNode) OnAdd(ctx context.Context) {
	if !d.IsRoot() {
		return
	}
	f := d.fsys
	now := time.Now()
	for _, p := range f.opts.Mapping.Fixed() {
		f.addDir(ctx, cache.Dir{Path: p, Mode: 0o755, Mtime: now})
	}
	if f.opts.Library != nil {
		f.addLibrary(ctx)
	}
	dirs, err := f.opts.Store.Dirs()
	if err != nil {
		f.opts.Log.Error("read folders from the store", "err", err)
	}
	for _, dr := range dirs {
		if dr.Path == "." {
			continue // the root's kept attributes: it is there
		}
		f.addDir(ctx, dr)
	}
	recs, err := f.opts.Store.Files()
	if err != nil {
		f.opts.Log.Error("read files from the store", "err", err)
	}
	for _, r := range recs {
		parent := f.lookupDir(path.Dir(r.Path))
		if parent == nil {
			f.opts.Log.Error("file in the store has no folder; it stays in the store but is not shown", "path", r.Path)
			continue
		}
		n := &fileNode{fsys: f, id: r.ID, size: r.Size, mode: r.Mode, mtime: r.Mtime, atime: r.Atime, ctime: r.Mtime, evicted: r.Evicted}
		if r.Evicted {
			// A crash between marking it evicted and removing the spool leaves a stray copy.
			os.Remove(f.opts.Store.SpoolPath(r.ID))
		} else {
			if st, err := os.Stat(f.opts.Store.SpoolPath(r.ID)); err == nil {
				n.size = st.Size() // the spool is the truth after a crash mid-write
			}
			f.cached.Add(n.size)
		}
		parent.AddChild(path.Base(r.Path), parent.NewPersistentInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFREG}), true)
	}
}

// addDir adds folder p (its parent must exist) unless it is there already.
func (f *FS) addDir(ctx context.Context, dr cache.Dir) {
	p := dr.Path
	parent := f.lookupDir(path.Dir(p))
	if parent == nil {
		f.opts.Log.Error("folder in the store has no parent; not shown", "path", p)
		return
	}
	if parent.GetChild(path.Base(p)) != nil {
		return
	}
	n := &dirNode{fsys: f, mode: dr.Mode, mtime: dr.Mtime, atime: dr.Atime}
	parent.AddChild(path.Base(p), parent.NewPersistentInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFDIR}), true)
}

// lookupDir returns the folder node at p ("." or "" for the root).
func (f *FS) lookupDir(p string) *gofs.Inode {
	n := f.root.EmbeddedInode()
	if p == "." || p == "" {
		return n
	}
	for _, name := range strings.Split(p, "/") {
		if n = n.GetChild(name); n == nil || !n.IsDir() {
			return nil
		}
	}
	return n
}

// refuse logs why an operation was refused, keeps it for `imsfs status`, and returns its errno.
func (f *FS) refuse(op, p string, errno syscall.Errno, reason string) syscall.Errno {
	f.opts.Log.Warn("refused", "op", op, "path", p, "errno", errnoName(errno), "reason", reason)
	f.refusals.add(Refusal{Time: time.Now(), Op: op, Path: p, Errno: errnoName(errno), Reason: reason})
	f.opts.Observer.Refused(op, errnoName(errno))
	return errno
}

// unsupported answers ENOTSUP for what a file system without the feature routinely answers it
// for (an ACL set by cp -a or sed -i): the tool expects it and goes on, so it is no refusal to
// show, only a line at debug level.
func (f *FS) unsupported(op, p, reason string) syscall.Errno {
	f.opts.Log.Debug("not supported", "op", op, "path", p, "errno", "ENOTSUP", "reason", reason)
	return syscall.ENOTSUP
}

// Nearest returns the one of names that name is most likely a typo of (a letter or two off),
// or "": for "did you mean" in a refusal, or of a command.
func Nearest(name string, names []string) string {
	best, bestD := "", 3
	if len(name) < 4 {
		bestD = 2
	}
	for _, n := range names {
		if d := smetrics.WagnerFischer(name, n, 1, 1, 1); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// Refusal is one operation the mount refused, and why: the shell says only "Permission denied".
type Refusal struct {
	Time   time.Time
	Op     string
	Path   string
	Errno  string
	Reason string
}

// refusalLog keeps the most recent refusals, one per operation, path and reason.
type refusalLog struct {
	mu   sync.Mutex
	list []Refusal // protected by mu: oldest first
}

const keptRefusals = 20

func (l *refusalLog) add(r Refusal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, old := range l.list {
		if old.Op == r.Op && old.Path == r.Path && old.Reason == r.Reason {
			l.list = append(l.list[:i], l.list[i+1:]...)
			break
		}
	}
	l.list = append(l.list, r)
	if len(l.list) > keptRefusals {
		l.list = l.list[len(l.list)-keptRefusals:]
	}
}

// Refusals returns the most recent refusals, oldest first.
func (f *FS) Refusals() []Refusal {
	f.refusals.mu.Lock()
	defer f.refusals.mu.Unlock()
	return append([]Refusal(nil), f.refusals.list...)
}

// Size returns the size of the file at p as the mount has it now (a file being written has
// bytes no record holds yet).
func (f *FS) Size(p string) (int64, bool) {
	n := f.lookupFile(p)
	if n == nil {
		return 0, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.size, true
}

// fail logs an internal error (the store, the spool) and returns EIO, or the errno the error
// carries (ENOSPC from a full cache disk).
func (f *FS) fail(op, p string, err error) syscall.Errno {
	errno := syscall.EIO
	errors.As(err, &errno)
	f.opts.Log.Error("failed", "op", op, "path", p, "errno", errnoName(errno), "err", err)
	f.opts.Observer.Failed(op, errnoName(errno))
	return errno
}

func errnoName(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", int(e))
}

// relPath returns a node's path relative to the mount root ("" for the root).
func relPath(n *gofs.Inode) string { return n.Path(nil) }

// join joins a folder path and a name.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func timespec(t time.Time) (sec uint64, nsec uint32) {
	if t.IsZero() {
		return 0, 0
	}
	return uint64(t.Unix()), uint32(t.Nanosecond())
}

// checkOwner accepts a chown to the mounting user and group, which every node shows (so that
// cp -p, rsync -a and tar as that user succeed), and refuses any other owner.
func (f *FS) checkOwner(p string, in *fuse.SetAttrIn) syscall.Errno {
	if uid, ok := in.GetUID(); ok && uid != f.uid {
		return f.refuse("chown", p, syscall.EPERM, fmt.Sprintf("files belong to the mounting user (uid %d), not uid %d", f.uid, uid))
	}
	if gid, ok := in.GetGID(); ok && gid != f.gid {
		return f.refuse("chown", p, syscall.EPERM, fmt.Sprintf("files belong to the mounting group (gid %d), not gid %d", f.gid, gid))
	}
	return gofs.OK
}
