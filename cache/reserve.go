package cache

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reserveSize is the room the store keeps for itself on the cache volume: many thousands of
// commits, and a bbolt file that grows by a step or two.
const reserveSize = 16 << 20

// reserve is room kept on the cache volume for the store: a file of reserveSize bytes, really
// allocated, that a commit refused for a full volume frees, so that the store still records what
// happens to files (an upload's steps, a retry) while a writer has filled the volume; it is
// taken again once the volume has room. Without it, a full volume would stop every upload until
// the next mount, though the bytes to upload are all there.
type reserve struct {
	path string

	mu   sync.Mutex
	held bool // protected by mu
}

func newReserve(dir string) *reserve { return &reserve{path: filepath.Join(dir, "reserve")} }

// take allocates the reserve if it is not held and the volume has room for it and as much again.
func (r *reserve) take() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held {
		return
	}
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(r.path), &st); err != nil || st.Bavail*uint64(st.Bsize) < 2*reserveSize {
		return
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, reserveSize); err != nil {
		os.Remove(r.path)
		return
	}
	r.held = true
}

// release frees the reserve; it reports whether there was one to free.
func (r *reserve) release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held {
		return false
	}
	r.held = false
	return os.Remove(r.path) == nil
}

// isFull reports whether err is a full volume's.
func isFull(err error) bool { return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) }
