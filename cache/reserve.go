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

	mu       sync.Mutex
	held     bool   // protected by mu
	released uint64 // protected by mu: how many times it was freed, for commits that failed together
}

// newReserve returns the reserve of the cache directory dir; one a mount left whole is held.
func newReserve(dir string) *reserve {
	r := &reserve{path: filepath.Join(dir, "reserve")}
	if st, err := os.Stat(r.path); err == nil && st.Size() == reserveSize {
		r.held = true
	}
	return r
}

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

// freed returns how many times the reserve was freed so far.
func (r *reserve) freed() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.released
}

// release frees the reserve; it reports whether there is room a commit that failed for a full
// volume since the reserve had been freed before times did not have: this call freed it, or a
// concurrent one did after that commit began.
func (r *reserve) release(before uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.released != before {
		return true
	}
	if !r.held {
		return false
	}
	r.held = false
	r.released++
	return os.Remove(r.path) == nil
}

// isFull reports whether err is a full volume's.
func isFull(err error) bool { return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) }
