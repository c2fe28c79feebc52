package cache

import (
	"errors"
	"os"
)

// Making a file on ext4 is most of what a create costs, and it is not always the same cost:
// without a journal, ext4 skips, one by one, the inodes freed in the last half minute near the
// folder, 40 µs to 500 µs a file on the development VM after a large deletion. The spool files
// of the next IDs Create hands out are made ahead, in the background, and handed to the create
// already open (TakeSpool): its own cost, and the kernel's, leave the path the writer waits on.

// aheadFiles is how many spool files are kept made ahead of the IDs handed out.
const aheadFiles = 32

// fillAhead makes the spool files of the next IDs to hand out, whenever woken, until stop.
func (s *Store) fillAhead(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case <-s.cr.wake:
		}
		for {
			s.cr.mu.Lock()
			id := max(s.cr.next, s.cr.aheadTop+1)
			full := s.cr.next == 0 || id > s.cr.limit || id >= s.cr.next+aheadFiles
			if !full {
				s.cr.aheadTop = id
			}
			s.cr.mu.Unlock()
			if full {
				break
			}
			f, err := os.OpenFile(s.SpoolPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				continue // made by its create meanwhile, or the volume is full: the create makes it
			}
			s.cr.mu.Lock()
			if id >= s.cr.next && s.cr.ahead != nil {
				s.cr.ahead[id] = f
				f = nil
			}
			s.cr.mu.Unlock()
			if f != nil {
				f.Close() // handed out meanwhile: its create opened the same file
			}
		}
	}
}

// TakeSpool returns the spool file of record id, made ahead and open for reading and writing,
// or nil: the caller makes it.
func (s *Store) TakeSpool(id uint64) *os.File {
	s.cr.mu.Lock()
	defer s.cr.mu.Unlock()
	f := s.cr.ahead[id]
	delete(s.cr.ahead, id)
	return f
}

// wakeAhead asks fillAhead for more spool files.
func (s *Store) wakeAhead() {
	select {
	case s.cr.wake <- struct{}{}:
	default:
	}
}

// closeAhead removes the spool files made for IDs never handed out. One handed out and not
// taken (its caller opened the spool by its name) is the record's: it stays.
func (s *Store) closeAhead() error {
	s.cr.mu.Lock()
	ahead, next := s.cr.ahead, s.cr.next
	s.cr.ahead = nil
	s.cr.mu.Unlock()
	var errs []error
	for id, f := range ahead {
		f.Close()
		if id < next {
			continue
		}
		if err := os.Remove(s.SpoolPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeUnused removes the spool files a killed mount made ahead for IDs it never handed out:
// those reserved after the last one handed out, with no record.
func (s *Store) removeUnused(from, to uint64, exists func(id uint64) bool) {
	for id := from; id <= to && id-from < 4*idBlock; id++ {
		if !exists(id) {
			_ = os.Remove(s.SpoolPath(id))
		}
	}
}
