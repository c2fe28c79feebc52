package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Chunks keeps what was fetched of the library's files, chunk by chunk, in the cache
// directory: library/VERSION/INDEX, each written whole under a temporary name and renamed into
// place, so that a chunk file there is whole whatever crashed. Its bytes count towards the
// cache's bound; the least recently used go first. Nothing here is the only copy of anything.
type Chunks struct {
	dir string // read only

	noDirect atomic.Bool // O_DIRECT was refused: chunks are written through the page cache

	mu    sync.Mutex
	files map[chunkKey]*chunkFile // protected by mu
	total int64                   // protected by mu: bytes of files
}

type chunkKey struct {
	version string
	index   int64
}

type chunkFile struct {
	size int64
	used time.Time
}

const chunkTemp = ".incoming-"

// Chunks returns the store of fetched library bytes of the cache directory, counting what an
// earlier run left there.
func (s *Store) Chunks() (*Chunks, error) {
	dir := filepath.Join(s.dir, "library")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Chunks{dir: dir, files: map[chunkKey]*chunkFile{}}
	versions, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, v := range versions {
		entries, err := os.ReadDir(filepath.Join(dir, v.Name()))
		if err != nil {
			continue
		}
		for _, e := range entries {
			p := filepath.Join(dir, v.Name(), e.Name())
			i, err := strconv.ParseInt(e.Name(), 10, 64)
			info, ierr := e.Info()
			if err != nil || ierr != nil || strings.HasPrefix(e.Name(), chunkTemp) {
				os.Remove(p) // a chunk cut short by a crash
				continue
			}
			c.files[chunkKey{v.Name(), i}] = &chunkFile{size: info.Size(), used: info.ModTime()}
			c.total += info.Size()
		}
	}
	return c, nil
}

func (c *Chunks) path(k chunkKey) string {
	return filepath.Join(c.dir, k.version, strconv.FormatInt(k.index, 10))
}

// Open opens chunk index of version; fs.ErrNotExist when it was never fetched or has gone.
func (c *Chunks) Open(version string, index int64) (*os.File, error) {
	k := chunkKey{version, index}
	c.mu.Lock()
	f := c.files[k]
	if f != nil {
		f.used = time.Now()
	}
	c.mu.Unlock()
	if f == nil {
		return nil, fs.ErrNotExist
	}
	return os.Open(c.path(k))
}

// Has reports whether chunk index of version is kept.
func (c *Chunks) Has(version string, index int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.files[chunkKey{version, index}] != nil
}

// Put keeps data as chunk index of version.
func (c *Chunks) Put(version string, index int64, data []byte) error {
	if version == "" || strings.ContainsAny(version, "/\x00") || strings.HasPrefix(version, ".") {
		return fmt.Errorf("cache: %q names no chunk folder", version)
	}
	k := chunkKey{version, index}
	dir := filepath.Join(c.dir, version)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, chunkTemp)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	err = c.write(tmp, data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path(k))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cache: keep a fetched chunk: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.files[k]; old != nil {
		c.total -= old.size
	}
	c.files[k] = &chunkFile{size: int64(len(data)), used: time.Now()}
	c.total += int64(len(data))
	return nil
}

// directAlign is what O_DIRECT asks of a buffer's address and length (the largest logical block
// size of a disk).
const directAlign = 4096

// write writes data to f. The whole blocks go with O_DIRECT where the file system takes it:
// a reader of the library fetches a GiB faster than the kernel writes dirty pages back, and a
// buffered write then stalls on them (and copies each byte once more); the blocks go to the disk
// from data itself. The tail, and a file system without O_DIRECT (tmpfs), are written as usual.
func (c *Chunks) write(f *os.File, data []byte) error {
	whole := len(data) &^ (directAlign - 1)
	if whole > 0 && !c.noDirect.Load() && uintptr(unsafe.Pointer(&data[0]))%directAlign == 0 {
		if d, err := os.OpenFile(f.Name(), os.O_WRONLY|syscall.O_DIRECT, 0); err == nil {
			_, err := d.Write(data[:whole])
			if cerr := d.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				_, err = f.WriteAt(data[whole:], int64(whole))
				return err
			}
		}
		c.noDirect.Store(true) // and never again
	}
	_, err := f.Write(data)
	return err
}

// Size is how many bytes the chunks hold.
func (c *Chunks) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Trim drops the least recently used chunks until they hold at most limit bytes, and returns
// how many bytes it dropped. A reader with a chunk open reads on: the file goes with its close.
func (c *Chunks) Trim(limit int64) int64 {
	c.mu.Lock()
	if c.total <= limit {
		c.mu.Unlock()
		return 0
	}
	keys := make([]chunkKey, 0, len(c.files))
	for k := range c.files {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.files[keys[i]].used.Before(c.files[keys[j]].used) })
	var drop []chunkKey
	freed := int64(0)
	for _, k := range keys {
		if c.total <= limit {
			break
		}
		freed += c.files[k].size
		c.total -= c.files[k].size
		delete(c.files, k)
		drop = append(drop, k)
	}
	c.mu.Unlock()
	for _, k := range drop {
		os.Remove(c.path(k))
		os.Remove(filepath.Dir(c.path(k))) // once empty
	}
	return freed
}

// Drop forgets every chunk of the versions of mediaID but keep (an asset whose bytes changed,
// or that is gone: keep "").
func (c *Chunks) Drop(mediaID, keep string) error {
	c.mu.Lock()
	var dirs []string
	seen := map[string]bool{}
	for k, f := range c.files {
		if k.version != keep && strings.HasPrefix(k.version, mediaID+".") {
			c.total -= f.size
			delete(c.files, k)
			if !seen[k.version] {
				seen[k.version] = true
				dirs = append(dirs, filepath.Join(c.dir, k.version))
			}
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, d := range dirs {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}
