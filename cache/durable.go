package cache

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// What a close promises, and how:
//
//   - A commit reaches the operating system at once (bbolt without fsync), and so does every
//     byte written to a spool and every line of the log of new files (creates.go): a killed
//     mount (kill -9, a crash of imsfs) loses nothing that a close returned for.
//   - Sync makes durable, in this order, the spool files written since the last Sync, the spool
//     folder if a spool file was made, the log of new files, then the store: a record never outlives the bytes it
//     describes (as ext4's data=ordered). It runs every SyncEvery (5 s, ext4's default commit
//     interval), so that a power loss loses no more than a local disk would; and whenever
//     something must be durable now: an application's fsync(2), a close under --sync-on-close,
//     a CreateUploadMedia about to be called.
//   - Concurrent Syncs are grouped: one fsync of the store serves every caller waiting for it.

// durability tracks what Sync has to make durable.
type durability struct {
	syncFile func(name string) error // fsync by name; tests watch it

	mu      sync.Mutex
	spools  map[uint64]bool // protected by mu: spools written since the last Sync
	newName bool            // protected by mu: a spool file was made or renamed into the folder
	started uint64          // protected by mu: runs of Sync begun, numbered from 1
	done    uint64          // protected by mu: the latest run that succeeded

	syncMu sync.Mutex // one run at a time
	closed bool       // protected by syncMu: the store is closed; nothing is synced any more
}

// ErrClosed means the store was closed.
var ErrClosed = errors.New("the store is closed")

// Written notes that the spool of record id, now size bytes, has bytes that are not durable yet
// (a close without fsync); newName says that the spool file itself is new to the spool folder.
// An empty spool has no bytes to fsync: its length is the file system's journal's, which the
// store's own fsync commits before the record.
func (s *Store) Written(id uint64, newName bool, size int64) {
	s.dur.mu.Lock()
	if size > 0 {
		s.dur.spools[id] = true
	}
	s.dur.newName = s.dur.newName || newName
	s.dur.mu.Unlock()
}

// NewName notes that a file was made or renamed in the spool folder (a restored spool).
func (s *Store) NewName() {
	s.dur.mu.Lock()
	s.dur.newName = true
	s.dur.mu.Unlock()
}

// Sync makes durable the spools written since the last Sync, the spool folder, then the
// records (see above). A caller that waited while another run went on returns as soon as a run
// that began after its call has succeeded: that run covered what it wrote.
func (s *Store) Sync() error {
	s.dur.mu.Lock()
	covered := s.dur.started + 1 // the first run to begin from now on
	s.dur.mu.Unlock()
	s.dur.syncMu.Lock()
	defer s.dur.syncMu.Unlock()
	if s.dur.closed {
		return ErrClosed
	}
	s.dur.mu.Lock()
	if s.dur.done >= covered {
		s.dur.mu.Unlock()
		return nil
	}
	s.dur.started++
	run := s.dur.started
	spools, newName := s.dur.spools, s.dur.newName
	s.dur.spools, s.dur.newName = map[uint64]bool{}, false
	s.dur.mu.Unlock()
	var errs []error
	for id := range spools {
		// A spool unlinked since is gone; nothing of it needs to last.
		if err := s.dur.syncFile(s.SpoolPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("sync spool %d: %w", id, err))
		}
	}
	if newName {
		if err := s.dur.syncFile(s.spoolDir); err != nil {
			errs = append(errs, fmt.Errorf("sync %s: %w", s.spoolDir, err))
		}
	}
	if err := s.syncCreates(); err != nil {
		errs = append(errs, fmt.Errorf("sync the log of new files: %w", err))
	}
	upTo := s.cr.covered.Load() // commits up to here are durable once the store is synced
	if err := s.db.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("sync the store: %w", err))
	} else {
		// All is durable: a log not made shorter (a full volume) is tried again next time.
		_ = s.compactCreates(upTo)
	}
	if err := errors.Join(errs...); err != nil {
		// Try again at the next Sync.
		s.dur.mu.Lock()
		for id := range spools {
			s.dur.spools[id] = true
		}
		s.dur.newName = s.dur.newName || newName
		s.dur.mu.Unlock()
		return err
	}
	s.dur.mu.Lock()
	s.dur.done = run
	s.dur.mu.Unlock()
	return nil
}

// syncLoop runs Sync every interval until stop is closed.
func (s *Store) syncLoop(every time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = s.Sync() // what failed stays pending for the next round, or for Close
			s.res.take() // used up while the volume was full: taken again once it has room
		}
	}
}

// fsyncFile fsyncs a file or a folder by name.
func fsyncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
