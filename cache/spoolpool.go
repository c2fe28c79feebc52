package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// New files take their spool from a few made ahead: making a file costs the cache's file
// system an inode, which a create over FUSE would otherwise wait for on top of its own round
// trips, while naming a made one costs a rename. The pool sits beside the spool folder, not in
// it, so that the spool holds only files that have records; what a stopped mount left in it is
// removed at the next Open.

const spoolPoolSize = 32

// spoolPool holds empty files, open, in dir/pool, made while nobody waits for them.
type spoolPool struct {
	dir  string
	want chan struct{} // one slot: more are wanted
	done chan struct{} // closed when the filler has stopped

	mu    sync.Mutex
	files []*os.File // protected by mu
	next  uint64     // protected by mu: the number of the next file made
}

func openSpoolPool(dir string) (*spoolPool, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("cache: clear %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: create %s: %w", dir, err)
	}
	p := &spoolPool{dir: dir, want: make(chan struct{}, 1), done: make(chan struct{})}
	return p, nil
}

// fill makes files until the pool is full, each time more are wanted, until stop is closed.
func (p *spoolPool) fill(stop <-chan struct{}) {
	defer close(p.done)
	for {
		select {
		case <-stop:
			return
		case <-p.want:
		}
		for {
			p.mu.Lock()
			full := len(p.files) >= spoolPoolSize
			n := p.next
			p.next++
			p.mu.Unlock()
			if full {
				break
			}
			f, err := os.OpenFile(filepath.Join(p.dir, fmt.Sprintf("%016x", n)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				break // a file is made the usual way when taken; the pool tries again then
			}
			p.mu.Lock()
			p.files = append(p.files, f)
			p.mu.Unlock()
			select {
			case <-stop:
				return
			default:
			}
		}
	}
}

// take returns a made file and asks for another, or nil when none is ready. The file's Name is
// its name in the pool: the caller renames it.
func (p *spoolPool) take() *os.File {
	p.mu.Lock()
	var f *os.File
	if n := len(p.files); n > 0 {
		f = p.files[n-1]
		p.files = p.files[:n-1]
	}
	p.mu.Unlock()
	select {
	case p.want <- struct{}{}:
	default:
	}
	return f
}

// close removes the files not taken.
func (p *spoolPool) close() error {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, f := range p.files {
		f.Close()
		if err := os.Remove(f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	p.files = nil
	return errors.Join(errs...)
}

// CreateSpool makes the empty spool file of record id and returns it open for reading and
// writing: one made ahead, renamed, when there is one (its Name is then the name it was made
// with); else a new one.
func (s *Store) CreateSpool(id uint64) (*os.File, error) {
	name := s.SpoolPath(id)
	if f := s.pool.take(); f != nil {
		if err := os.Rename(f.Name(), name); err == nil {
			return f, nil
		}
		f.Close()
		os.Remove(f.Name())
	}
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
}
