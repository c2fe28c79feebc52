package test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The random-operation model test: thousands of random writes, truncates, renames, reopens and
// unlinks against the mount and against an in-memory model of what a local disk would hold,
// checked after every step, and at the end against the objects the emulator received.

type modelFile struct{ data []byte }

type modelHandle struct {
	f     *os.File
	obj   *modelFile
	dirty bool // written through: its file is being written until the handle ends
}

type model struct {
	t       *testing.T
	root    string
	rng     *rand.Rand
	files   map[string]*modelFile // mount-relative path → content
	handles []*modelHandle
	ops     map[string]int
	history []string // the last operations, for the failure message
}

func (m *model) note(format string, args ...any) {
	m.history = append(m.history, fmt.Sprintf(format, args...))
	if len(m.history) > 40 {
		m.history = m.history[1:]
	}
}

var (
	modelDirs  = []string{"video", "video/sub", "image/cover", "other"}
	modelNames = []string{"a.mp4", "b.mp4", "c.mov", "d.png", "e", "f.tmp", ".g.mp4.swp", "h.mp4~"}
)

func (m *model) randomPath() string {
	return modelDirs[m.rng.IntN(len(modelDirs))] + "/" + modelNames[m.rng.IntN(len(modelNames))]
}

// existing returns a random path that holds a file, or "".
func (m *model) existing() string {
	if len(m.files) == 0 {
		return ""
	}
	paths := make([]string, 0, len(m.files))
	for p := range m.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths[m.rng.IntN(len(paths))]
}

func (m *model) bytes(max int) []byte {
	b := make([]byte, m.rng.IntN(max+1))
	for i := range b {
		b[i] = byte('a' + m.rng.IntN(26))
	}
	return b
}

func writeAt(data []byte, off int, p []byte) []byte {
	if need := off + len(p); need > len(data) {
		data = append(data, make([]byte, need-len(data))...)
	}
	copy(data[off:], p)
	return data
}

func resize(data []byte, n int) []byte {
	if n <= len(data) {
		return data[:n]
	}
	return append(data, make([]byte, n-len(data))...)
}

func (m *model) full(p string) string { return filepath.Join(m.root, p) }

// step does one random operation on the mount and the model, and checks the file it touched.
func (m *model) step() {
	t := m.t
	t.Helper()
	op := m.rng.IntN(100)
	var touched string
	switch {
	case op < 20: // write a whole file (create or replace)
		p := m.randomPath()
		data := m.bytes(64 << 10)
		if err := os.WriteFile(m.full(p), data, 0o644); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
		if f := m.files[p]; f != nil {
			f.data = data // O_TRUNC on the same file: open handles see it too
		} else {
			m.files[p] = &modelFile{data: data}
		}
		m.note("write %s: %d bytes", p, len(data))
		touched, m.ops["write"] = p, m.ops["write"]+1
	case op < 32: // pwrite into an existing file through a new handle
		p := m.existing()
		if p == "" {
			return
		}
		f, err := os.OpenFile(m.full(p), os.O_WRONLY, 0)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		off, data := m.rng.IntN(len(m.files[p].data)+1000), m.bytes(8<<10)
		if _, err := f.WriteAt(data, int64(off)); err != nil {
			t.Fatalf("pwrite %s: %v", p, err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close %s: %v", p, err)
		}
		m.files[p].data = writeAt(m.files[p].data, off, data)
		m.note("pwrite %s: %d bytes at %d", p, len(data), off)
		touched, m.ops["pwrite"] = p, m.ops["pwrite"]+1
	case op < 40: // append
		p := m.existing()
		if p == "" {
			return
		}
		f, err := os.OpenFile(m.full(p), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		data := m.bytes(4 << 10)
		f.Write(data)
		f.Close()
		m.files[p].data = append(m.files[p].data, data...)
		m.note("append %s: %d bytes", p, len(data))
		touched, m.ops["append"] = p, m.ops["append"]+1
	case op < 48: // truncate
		p := m.existing()
		if p == "" {
			return
		}
		n := m.rng.IntN(len(m.files[p].data) + 2000)
		if err := os.Truncate(m.full(p), int64(n)); err != nil {
			t.Fatalf("truncate %s: %v", p, err)
		}
		m.files[p].data = resize(m.files[p].data, n)
		m.note("truncate %s to %d", p, n)
		touched, m.ops["truncate"] = p, m.ops["truncate"]+1
	case op < 62: // rename, maybe over another file
		p, q := m.existing(), m.randomPath()
		if p == "" || p == q {
			return
		}
		if err := os.Rename(m.full(p), m.full(q)); err != nil {
			t.Fatalf("rename %s %s: %v", p, q, err)
		}
		m.files[q] = m.files[p]
		delete(m.files, p)
		if _, err := os.Stat(m.full(p)); !os.IsNotExist(err) {
			t.Fatalf("after rename %s is still there: %v", p, err)
		}
		m.note("rename %s %s", p, q)
		touched, m.ops["rename"] = q, m.ops["rename"]+1
	case op < 70: // unlink
		p := m.existing()
		if p == "" {
			return
		}
		if err := os.Remove(m.full(p)); err != nil {
			t.Fatalf("unlink %s: %v", p, err)
		}
		delete(m.files, p)
		if _, err := os.Stat(m.full(p)); !os.IsNotExist(err) {
			t.Fatalf("after unlink %s is still there: %v", p, err)
		}
		m.note("unlink %s", p)
		m.ops["unlink"]++
	case op < 78: // open a writer that stays open across steps
		p := m.existing()
		if p == "" || len(m.handles) >= 3 {
			return
		}
		f, err := os.OpenFile(m.full(p), os.O_RDWR, 0)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		m.handles = append(m.handles, &modelHandle{f: f, obj: m.files[p]})
		m.note("open %s as handle %p", p, f)
		m.ops["open"]++
	case op < 90: // write through an open handle (its file may since be renamed or unlinked)
		if len(m.handles) == 0 {
			return
		}
		h := m.handles[m.rng.IntN(len(m.handles))]
		off, data := m.rng.IntN(len(h.obj.data)+100), m.bytes(8<<10)
		if _, err := h.f.WriteAt(data, int64(off)); err != nil {
			t.Fatalf("write through a handle: %v", err)
		}
		h.obj.data = writeAt(h.obj.data, off, data)
		h.dirty = true
		m.note("handle %p write: %d bytes at %d", h.f, len(data), off)
		m.ops["handle write"]++
	case op < 94: // close a handle
		m.closeHandle()
	case op < 96: // a reader opens, reads and closes a file (a FLUSH of its own)
		p := m.existing()
		if p == "" {
			return
		}
		m.check(p)
		m.note("read %s", p)
		m.ops["read"]++
	case op < 98: // a duplicate of a held descriptor is closed (a FLUSH for the writer's handle)
		if len(m.handles) == 0 {
			return
		}
		h := m.handles[m.rng.IntN(len(m.handles))]
		fd, err := syscall.Dup(int(h.f.Fd()))
		if err != nil {
			t.Fatalf("dup: %v", err)
		}
		if err := syscall.Close(fd); err != nil {
			t.Fatalf("close a dup: %v", err)
		}
		m.note("dup of handle %p closed", h.f)
		m.ops["dup close"]++
	default: // a child inherits a held descriptor and exits (FLUSHes: at exec, and at exit)
		if len(m.handles) == 0 {
			return
		}
		h := m.handles[m.rng.IntN(len(m.handles))]
		cmd := exec.Command("true")
		cmd.ExtraFiles = []*os.File{h.f}
		if err := cmd.Run(); err != nil {
			t.Fatalf("a child holding handle %p: %v", h.f, err)
		}
		m.note("child with handle %p exited", h.f)
		m.ops["child"]++
	}
	m.checkHeld()
	if touched != "" {
		m.check(touched)
	}
}

// closeHandle closes a random open handle.
func (m *model) closeHandle() {
	m.t.Helper()
	if len(m.handles) == 0 {
		return
	}
	i := m.rng.IntN(len(m.handles))
	if err := m.handles[i].f.Close(); err != nil {
		m.t.Fatalf("close: %v", err)
	}
	m.note("close handle %p", m.handles[i].f)
	m.handles = append(m.handles[:i], m.handles[i+1:]...)
	m.ops["close"]++
}

// checkHeld checks that every file a handle has written through, and that handle still holds,
// says it is being written: nothing is uploaded before the last writer ends.
func (m *model) checkHeld() {
	m.t.Helper()
	for _, h := range m.handles {
		if !h.dirty {
			continue
		}
		for p, f := range m.files {
			if f != h.obj {
				continue
			}
			if s, err := xattr(m.full(p), "user.ims.status"); err != nil || s != "writing" {
				m.m(p, "held by handle %p that wrote to it: status %q (%v), want writing", h.f, s, err)
			}
		}
	}
}

func (m *model) check(p string) {
	m.t.Helper()
	got, err := os.ReadFile(m.full(p))
	if err != nil {
		m.m(p, "read: %v", err)
	}
	if want := m.files[p].data; !bytes.Equal(got, want) {
		m.m(p, "reads %d bytes, the model holds %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
}

func (m *model) m(p, format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("%s: "+format+" (operations so far: %v)\nlast operations:\n  %s", append([]any{p}, append(args, m.ops, strings.Join(m.history, "\n  "))...)...)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// checkTree compares every file in the model's folders with the mount, and the listings.
func (m *model) checkTree() {
	m.t.Helper()
	for _, d := range modelDirs {
		entries, err := os.ReadDir(m.full(d))
		if err != nil {
			m.t.Fatal(err)
		}
		var got, want []string
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			if strings.HasSuffix(e.Name(), ".ims.json") {
				// Every file has its sidecar, and no sidecar is without its file.
				if _, ok := m.files[d+"/"+strings.TrimSuffix(e.Name(), ".ims.json")]; !ok {
					m.t.Fatalf("%s lists the sidecar %s of no file", d, e.Name())
				}
				continue
			}
			got = append(got, d+"/"+e.Name())
			if _, err := os.Stat(m.full(d + "/" + e.Name() + ".ims.json")); err != nil {
				m.t.Fatalf("%s/%s has no sidecar: %v", d, e.Name(), err)
			}
		}
		for p := range m.files {
			if filepath.Dir(p) == d {
				want = append(want, p)
			}
		}
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			m.t.Fatalf("%s lists %v, the model %v", d, got, want)
		}
	}
	for p := range m.files {
		m.check(p)
	}
}

func TestRandomOperationsMatchAModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("IMSFS_MODEL_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	for _, passthrough := range []bool{true, false} {
		t.Run(fmt.Sprintf("passthrough=%v", passthrough), func(t *testing.T) {
			t.Parallel()
			randomOperations(t, seed, fmt.Sprintf("--passthrough=%v", passthrough))
		})
	}
}

func randomOperations(t *testing.T, seed uint64, args ...string) {
	emu := startEmulator(t)
	mp := startMount(t, emu, "", append([]string{"--on-overwrite", "delete", "--on-delete", "delete"}, args...)...)
	os.MkdirAll(filepath.Join(mp.Dir, "video", "sub"), 0o755)
	t.Logf("seed %d (IMSFS_MODEL_SEED=%d repeats this run)", seed, seed)
	m := &model{t: t, root: mp.Dir, rng: rand.New(rand.NewPCG(seed, 1)), files: map[string]*modelFile{}, ops: map[string]int{}}
	const steps = 2000
	for i := range steps {
		m.step()
		if i%250 == 249 {
			m.checkTree()
		}
	}
	for _, h := range m.handles {
		if err := h.f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m.handles = nil
	m.checkTree()
	figure(t, "%s: seed %d, %d steps: %v; %d files at the end", args, seed, steps, m.ops, len(m.files))

	// Every file whose name becomes an asset must end as exactly one asset with its bytes.
	want := map[string][]byte{}
	for p, f := range m.files {
		var errno syscall.Errno
		s, err := xattr(m.full(p), "user.ims.status")
		if err != nil {
			errno, _ = err.(syscall.Errno)
			t.Fatalf("%s: status: %v (%d)", p, err, errno)
		}
		if s != "skipped" && s != "local" {
			want[p] = f.data
		}
	}
	settled(t, emu, mp, want)
}
