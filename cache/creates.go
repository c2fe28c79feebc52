package cache

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// A new file's record is the one commit the kernel waits for on every file a copy makes (touch,
// cp -r): bbolt copies each B+tree path it changes, some ten pages for a record in its three
// buckets, whatever the record's size. So Create commits nothing: it appends the record to a log
// (one write(2), which reaches the operating system at once, as a commit does) and leaves it
// pending, to be committed by the next write transaction of any kind, shared with others; a
// Batch is started for it if none comes. What a killed mount loses is then what it lost before:
// nothing, since Open commits every record of the log that no transaction committed.
//
// Which ones those are: every write transaction that commits pending records also records, in
// the same transaction, the highest ID handed out when it took them (metaCreated). A record of
// the log with a higher ID was handed out after the last commit that took any, so no commit holds
// it, nor could a later one have voided it (every write transaction commits the pending records
// first). One with a lower ID was committed, and may since have been removed: it is not made
// again.
//
// A pending record is read from memory by Get and GetID; any other read commits the pending
// records first (settle), so that a listing never misses one.

const (
	createsLog = "creates.log"
	// idBlock is how many IDs one commit reserves for Create to hand out from memory.
	idBlock = 1024
	// createsCompact is the log's size past which Sync rewrites it with only what may not be
	// committed.
	createsCompact = 1 << 20
)

var metaCreated = []byte("created") // the highest ID whose record is committed or voided, if logged

// creates keeps the records made and not committed yet.
type creates struct {
	mu      sync.Mutex
	log     *os.File          // protected by mu: appended one JSON record a line
	size    int64             // protected by mu: the log's length
	last    uint64            // protected by mu: the highest ID logged (IDs are logged in order)
	next    uint64            // protected by mu: the next ID to hand out
	limit   uint64            // protected by mu: the last ID reserved
	pending map[uint64]Record // protected by mu
	paths   map[string]uint64 // protected by mu: the pending records' paths
	count   atomic.Int64      // len(pending), read without mu
	kicked  atomic.Bool       // a Batch is on its way to commit the pending records
	covered atomic.Uint64     // metaCreated, as last committed
	fromLog int               // read only after Open: records Open committed from the log

	ahead    map[uint64]*os.File // protected by mu: spool files made ahead, by ID (ahead.go)
	aheadTop uint64              // protected by mu: the highest ID one was tried for
	wake     chan struct{}       // wakes fillAhead
}

// FromLog is how many new files' records Open found only in the log, and committed: the files
// a killed mount had made in its last milliseconds.
func (s *Store) FromLog() int { return s.cr.fromLog }

// logLine is a line of the log: the record, and its path as bytes, which JSON would not keep
// (a name that is not UTF-8 is a valid file name).
type logLine struct {
	Path []byte `json:"p"`
	Rec  Record `json:"r"`
}

// openCreates opens the log of dir and commits, in db, the records it holds that were never
// committed: those of a mount that was killed.
func (s *Store) openCreates() error {
	name := filepath.Join(s.dir, createsLog)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	s.cr = creates{log: f, pending: map[uint64]Record{}, paths: map[string]uint64{},
		ahead: map[uint64]*os.File{}, wake: make(chan struct{}, 1)}
	logged, err := readCreates(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("read %s: %w", name, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		covered := loggedUpTo(tx)
		files := tx.Bucket(bucketFiles)
		for _, rec := range logged {
			if rec.ID <= covered || files.Get([]byte(rec.Path)) != nil || tx.Bucket(bucketIDs).Get(idKey(rec.ID)) != nil {
				continue
			}
			// Its create made the spool before it returned: without one, it never returned, or
			// the file was removed since (a power loss kept the line, not the removal's commit).
			if _, err := os.Lstat(s.SpoolPath(rec.ID)); err != nil {
				continue
			}
			if err := putRecord(tx, &rec, nil); err != nil {
				return err
			}
			s.cr.fromLog++
		}
		seq, handed := files.Sequence(), covered
		for _, rec := range logged {
			handed = max(handed, rec.ID)
		}
		// IDs reserved past the last handed out may have spool files made ahead, never used.
		ids := tx.Bucket(bucketIDs)
		s.removeUnused(handed+1, seq, func(id uint64) bool { return ids.Get(idKey(id)) != nil })
		top := max(seq, handed)
		s.cr.covered.Store(top)
		if err := files.SetSequence(top); err != nil {
			return err
		}
		return setCreated(tx, top)
	})
	if err == nil {
		err = s.db.Sync()
	}
	if err == nil {
		err = f.Truncate(0)
	}
	if err == nil {
		err = fsyncFile(s.dir) // the log's own name
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("commit the records of %s: %w", name, err)
	}
	return nil
}

// readCreates reads a log's records, in order. A line that does not decode (the last, cut by a
// power loss; garbage a file system left after one) is skipped: its create returned no file.
func readCreates(r io.Reader) ([]Record, error) {
	var out []Record
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line) < 1<<20 {
				line = append(line, chunk...)
			} else {
				long = true // no record is this long: skip it to its end
			}
			continue
		case err != nil && !errors.Is(err, io.EOF):
			return nil, err
		}
		line = append(line, chunk...)
		var l logLine
		if !long && json.Unmarshal(line, &l) == nil && l.Rec.ID != 0 && len(l.Path) > 0 {
			l.Rec.Path = string(l.Path)
			out = append(out, l.Rec)
		}
		line, long = line[:0], false
		if err != nil {
			return out, nil
		}
	}
}

func loggedUpTo(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(metaCreated); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func setCreated(tx *bolt.Tx, id uint64) error {
	return tx.Bucket(bucketMeta).Put(metaCreated, idKey(id))
}

// Create adds a record for path in state Writing, with a new ID, and returns it. init fills in
// what the new file is (Type, BusinessType, Mode, Mtime); its state is not init's to set. The
// record is logged, and committed with the next write transaction (see above).
func (s *Store) Create(path string, init func(*Record)) (Record, error) {
	rec := Record{}
	if init != nil {
		init(&rec)
	}
	rec.Path, rec.State, rec.Gen = path, Writing, 1
	var committed uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketFiles).Get([]byte(path)) != nil {
			return fmt.Errorf("create %s: %w", path, ErrExists)
		}
		committed = loggedUpTo(tx)
		return nil
	}); err != nil {
		return Record{}, err
	}
	for {
		logged, reserve, err := s.logCreate(&rec, committed)
		if err != nil {
			return Record{}, err
		}
		if logged {
			s.kickCreates()
			s.wakeAhead()
			return rec, nil
		}
		if !reserve {
			// The log refused the line (a full volume): committed at once instead, as before.
			return rec, s.update(func(tx *bolt.Tx) error {
				if tx.Bucket(bucketFiles).Get([]byte(path)) != nil {
					return fmt.Errorf("create %s: %w", path, ErrExists)
				}
				return putRecord(tx, &rec, nil)
			})
		}
		if err := s.reserveIDs(); err != nil {
			return Record{}, fmt.Errorf("create %s: %w", path, err)
		}
	}
}

// logCreate hands rec an ID and logs it as pending. It returns reserve when no ID is left in
// memory, and logged false with no error when the log could not be written (rec has its ID).
// committed is the highest ID the store held committed when it found rec's path free: a
// pending record of the path up to it was committed, and removed or renamed since.
func (s *Store) logCreate(rec *Record, committed uint64) (logged, reserve bool, err error) {
	s.cr.mu.Lock()
	defer s.cr.mu.Unlock()
	if id, ok := s.cr.paths[rec.Path]; ok {
		if id > committed {
			return false, false, fmt.Errorf("create %s: %w", rec.Path, ErrExists)
		}
		delete(s.cr.paths, rec.Path) // its commit's OnCommit drops the rest
	}
	if s.cr.next == 0 || s.cr.next > s.cr.limit {
		return false, true, nil
	}
	rec.ID = s.cr.next
	s.cr.next++
	line, err := json.Marshal(logLine{Path: []byte(rec.Path), Rec: *rec})
	if err != nil {
		return false, false, fmt.Errorf("create %s: %w", rec.Path, err)
	}
	n, err := s.cr.log.Write(append(line, '\n'))
	if err != nil {
		// A part written (a full volume) would join the next line: cut back to the last whole one.
		if n > 0 && s.cr.log.Truncate(s.cr.size) != nil {
			m, _ := s.cr.log.Write([]byte{'\n'}) // else end it: a line that does not decode is skipped
			s.cr.size += int64(n + m)
		}
		return false, false, nil
	}
	s.cr.size += int64(n)
	s.cr.last = rec.ID
	s.cr.pending[rec.ID] = *rec
	s.cr.paths[rec.Path] = rec.ID
	s.cr.count.Store(int64(len(s.cr.pending)))
	return true, false, nil
}

// reserveIDs commits the reservation of the next idBlock IDs for Create to hand out.
func (s *Store) reserveIDs() error {
	var first uint64
	if err := s.update(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		first = files.Sequence() + 1
		return files.SetSequence(first + idBlock - 1)
	}); err != nil {
		return err
	}
	s.cr.mu.Lock()
	// Another reservation may have come first, and been used up: a block only ever follows an
	// older one, so that the highest ID handed out only grows.
	if (s.cr.next == 0 || s.cr.next > s.cr.limit) && first > s.cr.limit {
		s.cr.next, s.cr.limit = first, first+idBlock-1
	}
	s.cr.mu.Unlock()
	s.wakeAhead()
	return nil
}

// kickCreates starts a Batch for the pending records, unless one is on its way: it shares the
// transaction of the closes and creates of the next few milliseconds.
func (s *Store) kickCreates() {
	if s.cr.kicked.Swap(true) {
		return
	}
	go func() {
		if err := s.batch(func(*bolt.Tx) error { return nil }); err != nil {
			s.cr.kicked.Store(false) // the next write transaction commits them, or Close
		}
	}()
}

// putPending commits, in tx, the pending records that no transaction committed, first thing in
// every write transaction: what it does next sees them. They leave memory when it commits.
func (s *Store) putPending(tx *bolt.Tx) error {
	s.cr.kicked.Store(false) // this transaction takes what is pending: a create after it kicks again
	if s.cr.count.Load() == 0 {
		return nil
	}
	covered := loggedUpTo(tx)
	s.cr.mu.Lock()
	var recs []Record
	for id, rec := range s.cr.pending {
		if id > covered {
			recs = append(recs, rec)
		}
	}
	top := s.cr.next - 1 // every logged ID up to it is pending or committed
	s.cr.mu.Unlock()
	if len(recs) == 0 {
		return nil // committed by a transaction whose OnCommit has yet to drop them
	}
	slices.SortFunc(recs, func(a, b Record) int { return cmp.Compare(a.ID, b.ID) })
	files := tx.Bucket(bucketFiles)
	for i := range recs {
		if files.Get([]byte(recs[i].Path)) != nil {
			continue // cannot be: every change of a path commits the pending records first
		}
		if err := putRecord(tx, &recs[i], nil); err != nil {
			return err
		}
	}
	if err := setCreated(tx, top); err != nil {
		return err
	}
	tx.OnCommit(func() { s.dropCommitted(top) })
	return nil
}

// dropCommitted forgets the pending records of IDs up to top, which a commit holds.
func (s *Store) dropCommitted(top uint64) {
	for c := s.cr.covered.Load(); c < top && !s.cr.covered.CompareAndSwap(c, top); c = s.cr.covered.Load() {
	}
	s.cr.mu.Lock()
	for id, rec := range s.cr.pending {
		if id <= top {
			delete(s.cr.pending, id)
			if s.cr.paths[rec.Path] == id {
				delete(s.cr.paths, rec.Path)
			}
		}
	}
	s.cr.count.Store(int64(len(s.cr.pending)))
	s.cr.mu.Unlock()
}

// pendingRecord returns the pending record id, or path when id is 0. A caller reads the store
// after it: a record committed meanwhile is the store's, and newer.
func (s *Store) pendingRecord(id uint64, path string) (Record, bool) {
	if s.cr.count.Load() == 0 {
		return Record{}, false
	}
	s.cr.mu.Lock()
	defer s.cr.mu.Unlock()
	if id == 0 {
		id = s.cr.paths[path]
	}
	rec, ok := s.cr.pending[id]
	return rec, ok
}

// settle commits the pending records, for a read that must see them all.
func (s *Store) settle() error {
	if s.cr.count.Load() == 0 {
		return nil
	}
	return s.update(func(*bolt.Tx) error { return nil })
}

// view runs fn in a read transaction that sees every file record made so far: for a listing
// of records. Should the pending ones not commit (a full volume), it reads what is committed.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	_ = s.settle()
	return s.db.View(fn)
}

// syncCreates makes the log durable, before the store's own Sync. It holds no lock a create
// waits for: the log is replaced or closed only under the Sync lock, which its caller holds.
func (s *Store) syncCreates() error {
	s.cr.mu.Lock()
	log, size := s.cr.log, s.cr.size
	s.cr.mu.Unlock()
	if log == nil || size == 0 {
		return nil
	}
	return log.Sync()
}

// compactCreates empties the log once every record in it was committed up to covered, a point
// the store's commits are durable past; or, past createsCompact, rewrites it with the others.
func (s *Store) compactCreates(covered uint64) error {
	s.cr.mu.Lock()
	defer s.cr.mu.Unlock()
	switch {
	case s.cr.log == nil || s.cr.size == 0:
		return nil
	case s.cr.last <= covered:
		if err := s.cr.log.Truncate(0); err != nil {
			return err
		}
		s.cr.size = 0
		return nil
	case s.cr.size <= createsCompact:
		return nil
	}
	if _, err := s.cr.log.Seek(0, io.SeekStart); err != nil {
		return err
	}
	logged, err := readCreates(s.cr.log)
	if err != nil {
		return err
	}
	name := filepath.Join(s.dir, createsLog)
	tmp, err := os.OpenFile(name+".new", os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	var size int64
	for _, rec := range logged {
		if rec.ID > covered {
			line, _ := json.Marshal(logLine{Path: []byte(rec.Path), Rec: rec})
			n, _ := w.Write(append(line, '\n'))
			size += int64(n)
		}
	}
	err = errors.Join(w.Flush(), tmp.Sync())
	if err == nil {
		err = os.Rename(name+".new", name)
	}
	if err == nil {
		err = fsyncFile(s.dir)
	}
	if err != nil {
		tmp.Close()
		os.Remove(name + ".new")
		return err
	}
	s.cr.log.Close()
	s.cr.log, s.cr.size = tmp, size
	return nil
}

// closeCreates closes the log; the store committed every pending record before.
func (s *Store) closeCreates() error {
	s.cr.mu.Lock()
	defer s.cr.mu.Unlock()
	if s.cr.log == nil {
		return nil
	}
	err := s.cr.log.Close()
	s.cr.log = nil
	return err
}
