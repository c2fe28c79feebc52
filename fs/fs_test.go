package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/test/testutil"
	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/fake"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// mounted is a file system mounted in this process over a real store and a queue on the fake
// cloud.
type mounted struct {
	dir   string
	fsys  *FS
	store *cache.Store
	queue *uploader.Queue
	cloud *fake.Cloud
}

type testOptions struct {
	sidecars    bool
	objects     Objects
	maxCache    int64
	sync        func(name string) error // in place of fsync
	syncOnClose bool
	uploadDelay time.Duration
	partSize    int64
	noDirect    bool // --passthrough=false
}

// testMount mounts a file system in a new directory and unmounts it when the test ends.
func testMount(t *testing.T, o testOptions) *mounted {
	t.Helper()
	testutil.RequireFUSE(t)
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.Default()
	}
	names, _ := imsrules.NewAdmitter(imsrules.DefaultTempNames)
	store, err := cache.Open(t.TempDir(), cache.Options{Admission: names, SyncFile: o.sync, SyncEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cloud := fake.New()
	q := uploader.New(uploader.Config{Store: store, IMS: cloud, Objects: cloud, Names: names, Log: log, PartSize: o.partSize,
		Retry: uploader.Retry{First: 5 * time.Millisecond, Max: 50 * time.Millisecond},
		Ready: uploader.ReadyCheck{First: time.Millisecond, Max: 10 * time.Millisecond}})
	if err := q.Recover(); err != nil {
		t.Fatal(err)
	}
	f := New(Options{Store: store, Uploads: q, Log: log, Sidecars: o.sidecars, Objects: o.objects, CacheMaxSize: o.maxCache, SyncOnClose: o.syncOnClose, UploadDelay: o.uploadDelay, NoPassthrough: o.noDirect})
	dir := t.TempDir()
	server, err := f.Mount(dir, MountOptions{Debug: testing.Verbose()})
	if err != nil {
		t.Fatal(err)
	}
	q.Run()
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		f.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		q.Close(ctx)
		store.Close()
	})
	return &mounted{dir: dir, fsys: f, store: store, queue: q, cloud: cloud}
}

// refusedByDesign are the tests of go-fuse's POSIX suite that imsfs fails on purpose, and why.
// Each refusal is checked on its own below (TestRefusalsByDesign).
var refusedByDesign = map[string]string{
	"Link":              "hard links: each file is one asset (EPERM)",
	"LinkUnlinkRename":  "hard links: each file is one asset (EPERM)",
	"SymlinkReadlink":   "symbolic links cannot become assets (EPERM)",
	"SetattrSymlink":    "symbolic links cannot become assets (EPERM)",
	"OpenSymlinkRace":   "symbolic links cannot become assets (EPERM)",
	"FallocateKeepSize": "fallocate modes other than plain preallocation (EOPNOTSUPP)",
	// Not a refusal: POSIX record locks are kept by the kernel, per process, as on a local disk,
	// where two descriptors of one process never conflict; the test expects locks per open
	// file, as go-fuse's loopback forwards them to its backing files.
	"FcntlFlockLocksFile": "record locks are the kernel's, per process, as on a local disk",
}

// TestPOSIXSuite runs go-fuse's own POSIX suite (posixtest) against a mapped folder of a mount
// in this process: the root takes no files, so "other/" stands for the mount.
func TestPOSIXSuite(t *testing.T) {
	m := testMount(t, testOptions{})
	tests := posixtest.All
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			if why, ok := refusedByDesign[name]; ok {
				t.Logf("refused by design: %s", why)
				return
			}
			dir := filepath.Join(m.dir, "other", name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			fn(t, dir)
		})
	}
	for name := range refusedByDesign {
		if _, ok := tests[name]; !ok {
			t.Errorf("%s is listed as refused but posixtest has no such test", name)
		}
	}
}

// TestRefusalsByDesign checks each refusal the POSIX suite meets, with its errno.
func TestRefusalsByDesign(t *testing.T) {
	m := testMount(t, testOptions{})
	f := filepath.Join(m.dir, "other", "a.bin")
	if err := os.WriteFile(f, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(f, f+".2"); !errors.Is(err, syscall.EPERM) {
		t.Errorf("link: %v, want EPERM", err)
	}
	if err := os.Symlink("a.bin", filepath.Join(m.dir, "other", "l")); !errors.Is(err, syscall.EPERM) {
		t.Errorf("symlink: %v, want EPERM", err)
	}
	if err := unix.Setxattr(f, "trusted.test", []byte("v"), 0); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("setxattr trusted.test: %v, want ENOTSUP (user.* attributes are kept)", err)
	}
	fd, err := os.OpenFile(f, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := unix.Fallocate(int(fd.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 10); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("fallocate KEEP_SIZE: %v, want EOPNOTSUPP", err)
	}
	if err := unix.Fallocate(int(fd.Fd()), 0, 0, 10); err != nil {
		t.Errorf("plain fallocate: %v", err)
	}
}

// TestFtruncateOfAnUnlinkedOpenFile: ftruncate works through the handle on a file that was
// unlinked, or replaced by a rename, while it was open.
func TestFtruncateOfAnUnlinkedOpenFile(t *testing.T) {
	m := testMount(t, testOptions{})
	for _, how := range []string{"unlinked", "replaced"} {
		t.Run(how, func(t *testing.T) {
			p := filepath.Join(m.dir, "other", how+".bin")
			fd, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer fd.Close()
			if _, err := fd.Write([]byte("0123456789")); err != nil {
				t.Fatal(err)
			}
			if how == "unlinked" {
				err = os.Remove(p)
			} else {
				other := filepath.Join(m.dir, "other", "new.bin")
				os.WriteFile(other, []byte("x"), 0o644)
				err = os.Rename(other, p)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := fd.Truncate(4); err != nil {
				t.Fatalf("ftruncate of a file %s while open: %v", how, err)
			}
			buf := make([]byte, 20)
			n, _ := fd.ReadAt(buf, 0)
			if string(buf[:n]) != "0123" {
				t.Errorf("after ftruncate: %q", buf[:n])
			}
		})
	}
}

// blockingObjects serves an evicted file's bytes only when released: a slow download.
type blockingObjects struct {
	data    []byte
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingObjects) ReadAt(ctx context.Context, mediaID string, p []byte, off int64) (int, error) {
	if off >= int64(len(b.data)) {
		return 0, io.EOF
	}
	return copy(p, b.data[off:]), nil
}

func (b *blockingObjects) URL(ctx context.Context, mediaID string) (string, time.Time, error) {
	return "http://object/" + mediaID + "?Signature=s", time.Now().Add(time.Hour), nil
}

func (b *blockingObjects) CachedURL(mediaID string) string {
	return "http://object/" + mediaID + "?Signature=s"
}

func (b *blockingObjects) Fetch(ctx context.Context, mediaID string, w io.Writer) (int64, error) {
	b.once.Do(func() { close(b.started) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n, err := w.Write(b.data)
	return int64(n), err
}

// TestStatAnswersWhileAFileIsRestored: the download of an evicted file (to write it) holds no
// lock that stat needs: stat answers while the download still runs.
func TestStatAnswersWhileAFileIsRestored(t *testing.T) {
	data := bytes.Repeat([]byte("imsfs"), 1<<16)
	objs := &blockingObjects{data: data, started: make(chan struct{}), release: make(chan struct{})}
	m := testMount(t, testOptions{objects: objs})
	p := filepath.Join(m.dir, "video", "clip.mp4")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := waitState(t, m, "video/clip.mp4", cache.Ready)
	n := m.fsys.lookupFile("video/clip.mp4")
	n.evict("video/clip.mp4")
	if got, _ := m.store.GetID(rec.ID); !got.Evicted {
		t.Fatalf("not evicted: %+v", got)
	}
	opened := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			f.Close()
		}
		opened <- err
	}()
	<-objs.started
	start := time.Now()
	st, err := os.Stat(p)
	took := time.Since(start)
	if err != nil || st.Size() != int64(len(data)) {
		t.Fatalf("stat during the restore: %v %v", st, err)
	}
	select {
	case err := <-opened:
		t.Fatalf("the open ended (%v) before the download was released: the test shows nothing", err)
	default:
	}
	testutil.Figure(t, "stat of a file being restored from its object: %v", took.Round(time.Microsecond))
	close(objs.release)
	if err := <-opened; err != nil {
		t.Fatalf("open after the restore: %v", err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the file after its restore: %d bytes, %v", len(got), err)
	}
}

// TestACloseThatCannotBeMadeDurableFailsTheClose: under --sync-on-close, when the store cannot
// make the file's record durable, close(2) says so. (By default a close promises what the
// operating system holds, and its write session ends at the release, which the kernel answers
// no one: a store that fails then is tried again in the background, and a file left writing is
// taken as closed by the next mount.)
func TestACloseThatCannotBeMadeDurableFailsTheClose(t *testing.T) {
	m := testMount(t, testOptions{syncOnClose: true})
	p := filepath.Join(m.dir, "video", "clip.mp4")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	m.store.Close() // every commit and sync fails from now on
	if err := f.Close(); err == nil {
		t.Fatalf("close succeeded although its record could not be made durable")
	}
}

// TestWhatACloseMakesDurable: a close fsyncs nothing (a killed mount loses nothing: the bytes
// and the record are the OS's); an application's fsync makes the file, its name and its record
// durable at once; --sync-on-close does so at every close.
func TestWhatACloseMakesDurable(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("sync-on-close=", strict), func(t *testing.T) {
			var mu sync.Mutex
			var synced []string
			m := testMount(t, testOptions{syncOnClose: strict, uploadDelay: time.Hour, sync: func(name string) error {
				mu.Lock()
				synced = append(synced, filepath.Base(name))
				mu.Unlock()
				return nil
			}})
			took := func() []string {
				mu.Lock()
				defer mu.Unlock()
				out := synced
				synced = nil
				return out
			}
			p := filepath.Join(m.dir, "video", "clip.mp4")
			if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
				t.Fatal(err)
			}
			rec := waitState(t, m, "video/clip.mp4", cache.Queued)
			spool := filepath.Base(m.store.SpoolPath(rec.ID))
			if got := took(); strict && (len(got) != 2 || got[0] != spool || got[1] != "spool") || !strict && len(got) != 0 {
				t.Errorf("a close synced %v", got)
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("d"))
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if got := took(); len(got) == 0 || got[0] != spool && !strict {
				t.Errorf("fsync synced %v, want the spool first", got)
			}
			if err := m.store.Sync(); err != nil { // the periodic one
				t.Fatal(err)
			}
		})
	}
}

// waitState waits until the file at p is in state want.
func waitState(t *testing.T, m *mounted, p string, want cache.State) cache.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec, err := m.store.Get(p)
		if err == nil && rec.State == want {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v %v, want %s", p, rec, err, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestAWriteImsfsIsNotToldOfIsAWriteAllTheSame: the kernel may pass a writer straight to the
// spool although imsfs did not make its handle direct (go-fuse hands the backing file of a
// handle imsfs has released to an open that comes before go-fuse lets it go). Such a write,
// here made to the spool itself, is seen while the writer holds the file (it says writing)
// and at its release, which uploads the new bytes.
func TestAWriteImsfsIsNotToldOfIsAWriteAllTheSame(t *testing.T) {
	m := testMount(t, testOptions{})
	p := filepath.Join(m.dir, "video", "unseen.mp4")
	if err := os.WriteFile(p, []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := waitState(t, m, "video/unseen.mp4", cache.Ready)
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.store.SpoolPath(rec.ID), []byte("before, and after"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	if r, _ := m.store.GetID(rec.ID); r.State != cache.Writing {
		t.Errorf("while its writer holds it, a file changed without imsfs is %s, not writing", r.State)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, _ := m.store.GetID(rec.ID)
		if data, _ := m.cloud.Object(r.MediaID); r.State == cache.Ready && string(data) == "before, and after" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the release: %+v, not the new bytes uploaded", r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAFolderKeepsItsTimesAndModeBits: a folder's atime is its own (utimensat), its setgid and
// sticky bits stay, and a folder made in a setgid folder is setgid, as on a local disk (the
// cases pjdfstest's utimensat/00 and chmod/00 found).
func TestAFolderKeepsItsTimesAndModeBits(t *testing.T) {
	m := testMount(t, testOptions{})
	d := filepath.Join(m.dir, "video", "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o2755|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	atime, mtime := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2021, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := unix.UtimesNano(d, []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(d, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o2755 || time.Unix(st.Atim.Unix()).UTC() != atime || time.Unix(st.Mtim.Unix()).UTC() != mtime {
		t.Errorf("a folder after chmod 2755 and utimensat: mode %o, atime %v, mtime %v", st.Mode&0o7777, time.Unix(st.Atim.Unix()).UTC(), time.Unix(st.Mtim.Unix()).UTC())
	}
	sub := filepath.Join(d, "e")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(sub, &st); err != nil || st.Mode&0o7777 != 0o2755 {
		t.Errorf("a folder made in a setgid folder: mode %o, %v", st.Mode&0o7777, err)
	}
	if err := os.Chmod(sub, 0o1777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(sub, &st); err != nil || st.Mode&0o7777 != 0o1777 {
		t.Errorf("chmod 1777: mode %o, %v", st.Mode&0o7777, err)
	}
}
