// Package cache keeps what imsfs must not lose: a bbolt file that maps each path in the mount to
// its Record, and the spool directory that holds the bytes of every file, named by record ID.
//
// A record changes state only through Apply, which runs the life-cycle table (lifecycle.go) and
// commits the new record together with what the change leaves behind (a disposal, finished
// parts), so that a crash at any moment leaves a record that says truthfully what is left to do.
package cache

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The bucket layout, declared once.
var (
	bucketFiles      = []byte("files")      // path → Record (JSON)
	bucketIDs        = []byte("ids")        // ID (8-byte big endian) → path
	bucketUnfinished = []byte("unfinished") // ID → State, for every record that is not ready: what the uploader resumes and status lists
	bucketParts      = []byte("parts")      // ID, Gen (8 bytes each), part number (4 bytes) → Part (JSON)
	bucketDirs       = []byte("dirs")       // path → Dir (JSON), for folders users made
	bucketMeta       = []byte("meta")       // facts about the store itself: "instance", "config", "schema"
)

// schemaVersion names the layout above. Version 1 kept the parts and the upload credentials in
// each record; Open moves a store of version 1 on.
const schemaVersion = "2"

var (
	// ErrNotFound means no record exists for the path or ID asked for.
	ErrNotFound = errors.New("no such record")
	// ErrExists means a record already holds the path.
	ErrExists = errors.New("record exists")
	// ErrLocked means another process (another mount) holds the store.
	ErrLocked = errors.New("cache directory is in use by another imsfs process")
)

// Options configures a store.
type Options struct {
	Admission Admission // which files become assets [all]
	// SyncEvery is how often what was written is made durable against a power loss (see
	// durable.go) [5s, ext4's default commit interval].
	SyncEvery time.Duration
	// SyncFile makes a file or folder durable [fsync]; tests watch it.
	SyncFile func(name string) error
}

// Store is the bbolt file and the spool directory of one cache directory.
type Store struct {
	db       *bolt.DB  // read only after Open
	dir      string    // the cache directory
	spoolDir string    // dir/spool
	instance string    // read only: see Instance
	adm      Admission // read only
	dur      durability
	cr       creates       // records made and not committed yet: creates.go
	stopSync chan struct{} // closed by Close: the periodic Sync stops, and so does fillAhead
	syncDone chan struct{} // closed when it has
	fillDone chan struct{} // closed when fillAhead has

	res      *reserve      // room on the cache volume for the store's commits
	commits  atomic.Uint64 // write transactions committed; see Commits
	lastTxID atomic.Int64  // the highest counted: the calls a Batch groups share one
}

// Commits is how many write transactions the store has committed since Open: the cost per
// file that grouping commits cuts, counted where a timing would drown in a machine's noise.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// update runs fn in a write transaction of its own, counted. A commit the full volume refused
// is made again in the room the reserve frees.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	freed := s.res.freed()
	err := s.db.Update(func(tx *bolt.Tx) error { return s.inTx(tx, fn) })
	if isFull(err) && s.res.release(freed) {
		err = s.db.Update(func(tx *bolt.Tx) error { return s.inTx(tx, fn) })
	}
	return err
}

// batch runs fn in a write transaction shared with concurrent callers (bbolt's Batch), counted
// once per transaction. fn may run more than once, so it must only act through tx.
func (s *Store) batch(fn func(*bolt.Tx) error) error {
	freed := s.res.freed()
	err := s.db.Batch(func(tx *bolt.Tx) error { return s.inTx(tx, fn) })
	if isFull(err) && s.res.release(freed) {
		err = s.db.Batch(func(tx *bolt.Tx) error { return s.inTx(tx, fn) })
	}
	return err
}

// inTx runs fn in write transaction tx, counted, after the records Create left pending.
func (s *Store) inTx(tx *bolt.Tx, fn func(*bolt.Tx) error) error {
	s.count(tx)
	if err := s.putPending(tx); err != nil {
		return err
	}
	return fn(tx)
}

// count counts tx once when it commits. A write transaction's ID is one more than the last
// committed one's, and the handlers of two commits may run interleaved: only a higher ID counts.
func (s *Store) count(tx *bolt.Tx) {
	id := int64(tx.ID()) // read now: a closed transaction has none
	tx.OnCommit(func() {
		for last := s.lastTxID.Load(); id > last; last = s.lastTxID.Load() {
			if s.lastTxID.CompareAndSwap(last, id) {
				s.commits.Add(1)
				return
			}
		}
	})
}

// batchDelay is how long a grouped commit waits for others to share its transaction: a tenth
// of a cp's files at a time, at a few hundred microseconds a file, for a few milliseconds of a
// close the writer does not wait for.
const batchDelay = 3 * time.Millisecond

// Open opens (creating if needed) the store in dir. It fails with ErrLocked if another process
// holds it, instead of waiting forever on bbolt's file lock.
func Open(dir string, opts Options) (*Store, error) {
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("cache: create %s: %w", spool, err)
	}
	// The spool holds what users saved, the control socket lives here: the owner's alone,
	// whatever mode the folder had.
	for _, d := range []string{dir, spool} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	dbPath := filepath.Join(dir, "imsfs.db")
	// NoSync: a commit reaches the OS at once, and Sync makes it durable, grouped (durable.go).
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("cache: open %s: %w", dbPath, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("cache: open %s: %w", dbPath, err)
	}
	db.MaxBatchDelay = batchDelay
	s := &Store{db: db, dir: dir, spoolDir: spool, adm: opts.Admission, res: newReserve(dir),
		dur:      durability{syncFile: opts.SyncFile, spools: map[uint64]bool{}},
		stopSync: make(chan struct{}), syncDone: make(chan struct{}), fillDone: make(chan struct{})}
	if s.adm == nil {
		s.adm = admitAll{}
	}
	if s.dur.syncFile == nil {
		s.dur.syncFile = fsyncFile
	}
	if err := db.Update(s.init); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache: init %s: %w", dbPath, err)
	}
	if err := db.Sync(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache: init %s: %w", dbPath, err)
	}
	if err := s.openCreates(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	every := opts.SyncEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	s.res.take()
	go s.syncLoop(every, s.stopSync, s.syncDone)
	go s.fillAhead(s.stopSync, s.fillDone)
	return s, nil
}

// init makes the buckets, names the store, and moves an older layout on.
func (s *Store) init(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketFiles, bucketIDs, bucketUnfinished, bucketParts, bucketDirs, bucketDisposals, bucketMeta, bucketLibrary} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get([]byte("instance")); v != nil {
		s.instance = string(v)
	} else {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		s.instance = hex.EncodeToString(b[:])
		if err := meta.Put([]byte("instance"), []byte(s.instance)); err != nil {
			return err
		}
	}
	if string(meta.Get([]byte("schema"))) == schemaVersion {
		return nil
	}
	if err := migrate1(tx); err != nil {
		return fmt.Errorf("move the store to layout %s: %w", schemaVersion, err)
	}
	return meta.Put([]byte("schema"), []byte(schemaVersion))
}

// migrate1 moves a store of layout 1 on: each record's finished parts go to their bucket, its
// upload credentials are dropped (a resumed upload asks for new ones), and the index of
// unfinished records is built. Rewriting through Record drops the fields it no longer has.
func migrate1(tx *bolt.Tx) error {
	var recs []Record
	err := tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
		var r Record
		var old struct {
			Upload *struct{ Parts []Part } `json:"upload"`
		}
		if err := decodeRecord(k, v, &r); err != nil {
			return err
		}
		if err := json.Unmarshal(v, &old); err == nil && old.Upload != nil && r.State == Uploading && r.Upload != nil && r.Upload.MultipartID != "" {
			for _, p := range old.Upload.Parts {
				if err := putPart(tx, r.ID, r.Gen, p); err != nil {
					return err
				}
			}
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range recs {
		if err := putRecord(tx, &recs[i], nil); err != nil {
			return err
		}
	}
	var ds []Disposal
	err = tx.Bucket(bucketDisposals).ForEach(func(k, v []byte) error {
		var d Disposal
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode disposal %x: %w", k, err)
		}
		ds = append(ds, d)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range ds {
		if err := putDisposal(tx, &ds[i]); err != nil {
			return err
		}
	}
	return nil
}

// Meta returns a fact the store keeps about itself ("" when unset).
func (s *Store) Meta(key string) (string, error) {
	var v string
	err := s.db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get([]byte(key)))
		return nil
	})
	return v, err
}

// SetMeta records a fact about the store.
func (s *Store) SetMeta(key, value string) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte(key), []byte(value)) })
}

// Instance returns the store's own random name, made when it was created: with a record ID it
// names a file uniquely across stores (the tag on the assets it creates).
func (s *Store) Instance() string { return s.instance }

// Close makes everything durable and closes the bbolt file. A second Close does nothing.
func (s *Store) Close() error {
	select {
	case <-s.stopSync:
		return nil
	default:
	}
	close(s.stopSync)
	<-s.syncDone
	<-s.fillDone
	err := errors.Join(s.settle(), s.Sync())
	// No Sync runs while the file closes, nor after: bbolt's own Sync reads its file unlocked.
	s.dur.syncMu.Lock()
	defer s.dur.syncMu.Unlock()
	s.dur.closed = true
	return errors.Join(err, s.closeAhead(), s.db.Close(), s.closeCreates())
}

// Dir returns the cache directory.
func (s *Store) Dir() string { return s.dir }

// SpoolDir returns the directory of the spool files.
func (s *Store) SpoolDir() string { return s.spoolDir }

// SpoolPath returns the file that holds the bytes of record id.
func (s *Store) SpoolPath(id uint64) string {
	return filepath.Join(s.spoolDir, fmt.Sprintf("%016x", id))
}

// Get returns the record for path.
func (s *Store) Get(path string) (Record, error) {
	pending, ok := s.pendingRecord(0, path)
	var rec Record
	var covered uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		covered = loggedUpTo(tx)
		return getRecord(tx, path, &rec)
	})
	if ok && errors.Is(err, ErrNotFound) && pending.ID > covered {
		return pending, nil
	}
	return rec, err
}

// GetID returns the record with the given ID.
func (s *Store) GetID(id uint64) (Record, error) {
	pending, ok := s.pendingRecord(id, "")
	var rec Record
	var covered uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		covered = loggedUpTo(tx)
		return getRecordID(tx, id, &rec)
	})
	if ok && errors.Is(err, ErrNotFound) && pending.ID > covered {
		return pending, nil
	}
	return rec, err
}

// SetAttr records a file's permission bits and its modification and access times (chmod,
// touch), which are no part of its upload.
func (s *Store) SetAttr(id uint64, mode uint32, mtime, atime time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		var rec Record
		if err := getRecordID(tx, id, &rec); err != nil {
			return err
		}
		before := rec
		rec.Mode, rec.Mtime, rec.Atime = mode, mtime, atime
		return putRecord(tx, &rec, &before)
	})
}

// Apply commits event ev on record id: the life-cycle table decides the record's next state,
// and what the change leaves (a disposal, a finished part) is committed in the same
// transaction. The caller carries out the returned Effects. An event the table refuses changes
// nothing and returns ErrBadTransition (or ErrSuperseded, ErrNothingToRetry, ErrNotEvictable);
// but an asset created for bytes the file no longer holds is committed as a disposal, whose
// Effects come with the ErrSuperseded.
func (s *Store) Apply(id uint64, ev Event) (Record, Effects, error) {
	var (
		rec Record
		fx  Effects
		ret error // returned after a commit, for a refusal that still leaves something behind
	)
	run := s.update
	if ev.Kind == PartStored || ev.Grouped {
		// Parts of one upload finish together, and a copy's files close one after another:
		// their commits are grouped (and idempotent).
		run = s.batch
	}
	err := run(func(tx *bolt.Tx) error {
		ret = nil
		var before Record
		err := getRecordID(tx, id, &before)
		if err == nil {
			rec, fx, err = s.applyTx(tx, before, ev, false)
		}
		if (errors.Is(err, ErrSuperseded) || errors.Is(err, ErrNotFound)) && ev.Kind == AssetCreated && ev.Asset != nil {
			// The asset was made for bytes the file no longer holds, or for a file that is
			// gone: nothing will upload to it, so it must not stay behind.
			where := before.Path
			if where == "" {
				where = fmt.Sprintf("(record %d, gone)", id)
			}
			up := ev.Asset.Upload
			d := &Disposal{Path: where, Why: Voided, MediaID: ev.Asset.MediaID, Upload: &up}
			if err := putDisposal(tx, d); err != nil {
				return err
			}
			rec, fx, ret = before, Effects{Disposal: d.Seq}, err
			return nil
		}
		return err
	})
	if err == nil {
		err = ret
	}
	return rec, fx, err
}

// Report is an event for one record, one of several that ApplyEach commits together.
type Report struct {
	ID    uint64
	Event Event
}

// Applied is what ApplyEach did with one Report: as Apply returns.
type Applied struct {
	Record  Record
	Effects Effects
	Err     error
}

// ApplyEach applies each report's event to its record, as Apply does, in one transaction: what
// one answer of IMS says of many files costs one commit, not one each. An event the table
// refuses (or a record gone) is refused alone and changes nothing; a failure to write fails
// the call, and nothing of it is committed.
func (s *Store) ApplyEach(reports []Report) ([]Applied, error) {
	var out []Applied
	err := s.update(func(tx *bolt.Tx) error {
		out = make([]Applied, len(reports))
		for i, r := range reports {
			var before Record
			err := getRecordID(tx, r.ID, &before)
			if err == nil {
				out[i].Record, out[i].Effects, err = s.applyTx(tx, before, r.Event, false)
			}
			if err != nil && !refused(err) {
				return err
			}
			out[i].Err = err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// refused reports whether err is the life-cycle table's (or a lookup's) refusal of an event,
// which comes before anything is written.
func refused(err error) bool {
	for _, r := range []error{ErrNotFound, ErrBadTransition, ErrSuperseded, ErrNothingToRetry, ErrNotEvictable} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// applyTx runs ev on before and writes what follows. moved says the record's path changed
// (a rename): it is written whether or not the event changed it.
func (s *Store) applyTx(tx *bolt.Tx, before Record, ev Event, moved bool) (Record, Effects, error) {
	after := before
	after.Upload = cloneUpload(before.Upload)
	fx, err := transition(&after, &ev, s.adm)
	if err != nil {
		return before, fx, err
	}
	if fx.part != nil {
		return before, fx, putPart(tx, after.ID, after.Gen, *fx.part)
	}
	var d *Disposal
	if fx.Removed {
		d = disposalOf(&before, nil, ev.By)
		if err := deleteRecord(tx, &before); err != nil {
			return before, fx, err
		}
	} else {
		d = disposalOf(&before, &after, 0)
		if moved || !sameRecord(&before, &after) {
			prev := &before
			if moved {
				prev = nil // its path changed: every index is written
			}
			if err := putRecord(tx, &after, prev); err != nil {
				return before, fx, err
			}
		}
	}
	if partsVoided(&before, &after, fx.Removed) {
		if err := deleteParts(tx, before.ID); err != nil {
			return before, fx, err
		}
	}
	if d != nil {
		if err := putDisposal(tx, d); err != nil {
			return before, fx, err
		}
		fx.Disposal = d.Seq
	}
	return after, fx, nil
}

// partsVoided reports whether the finished parts before held are of no more use after.
func partsVoided(before, after *Record, removed bool) bool {
	if before.Upload == nil || before.Upload.MultipartID == "" {
		return false
	}
	// A file uploaded while written keeps its parts from writing to queued to uploading.
	sending := after.State == Uploading || after.Early && (after.State == Writing || after.State == Queued)
	return removed || after.Gen != before.Gen || !sending || after.Upload == nil ||
		after.Upload.MultipartID != before.Upload.MultipartID
}

func sameRecord(a, b *Record) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// Change is one record a rename touched, and what the queue is to do about it.
type Change struct {
	Record  Record
	Effects Effects
}

// Renaming is what Rename did: the file records it moved, and the one it replaced (nil if none).
type Renaming struct {
	Moved    []Change
	Replaced *Change
}

// Rename moves the file or folder at oldPath, and everything below a folder, to newPath in one
// transaction. A file record already at newPath is replaced (a Replaced event; the caller
// removes its spool). Each moved file record gets the Renamed event follow returns for it, with
// its new Path already set, so that the mapping of the new place applies.
func (s *Store) Rename(oldPath, newPath string, follow func(r Record) Event) (Renaming, error) {
	var out Renaming
	err := s.update(func(tx *bolt.Tx) error {
		out = Renaming{}
		files, dirs := tx.Bucket(bucketFiles), tx.Bucket(bucketDirs)
		var src Record
		srcIsFile := getRecord(tx, oldPath, &src) == nil
		var target Record
		if err := getRecord(tx, newPath, &target); err == nil {
			ev := Event{Kind: Replaced}
			if srcIsFile {
				ev.By = src.ID
			}
			rec, fx, err := s.applyTx(tx, target, ev, false)
			if err != nil {
				return err
			}
			out.Replaced = &Change{rec, fx}
		}
		// Collect first: a bbolt cursor must not walk a bucket that is being changed.
		var moves []Record
		var dirMoves []Dir
		if srcIsFile {
			moves = append(moves, src)
		}
		prefix := []byte(oldPath + "/")
		if v := dirs.Get([]byte(oldPath)); v != nil {
			var d Dir
			if err := decodeDir([]byte(oldPath), v, &d); err != nil {
				return fmt.Errorf("rename: %w", err)
			}
			dirMoves = append(dirMoves, d)
		}
		c := dirs.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var d Dir
			if err := decodeDir(k, v, &d); err != nil {
				return fmt.Errorf("rename: %w", err)
			}
			dirMoves = append(dirMoves, d)
		}
		c = files.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var r Record
			if err := decodeRecord(k, v, &r); err != nil {
				return fmt.Errorf("rename: %w", err)
			}
			moves = append(moves, r)
		}
		for _, d := range dirMoves {
			if err := dirs.Delete([]byte(d.Path)); err != nil {
				return err
			}
			d.Path = newPath + strings.TrimPrefix(d.Path, oldPath)
			if err := putJSON(dirs, d.Path, d); err != nil {
				return err
			}
		}
		for _, r := range moves {
			if err := files.Delete([]byte(r.Path)); err != nil {
				return err
			}
			r.Path = newPath + strings.TrimPrefix(r.Path, oldPath)
			ev := Event{Kind: Renamed, Type: r.Type, BusinessType: r.BusinessType}
			if follow != nil {
				ev = follow(r)
			}
			rec, fx, err := s.applyTx(tx, r, ev, true)
			if err != nil {
				return fmt.Errorf("rename %s: %w", r.Path, err)
			}
			out.Moved = append(out.Moved, Change{rec, fx})
		}
		return nil
	})
	return out, err
}

// Files returns every file record, ordered by path.
func (s *Store) Files() ([]Record, error) {
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
			var r Record
			if err := decodeRecord(k, v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Unfinished returns the records that are not ready (or whose asset waits for an update), by
// ID, from their index: the ready ones, however many, are not read.
func (s *Store) Unfinished() ([]Record, error) {
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUnfinished).ForEach(func(k, _ []byte) error {
			var r Record
			if err := getRecordID(tx, binary.BigEndian.Uint64(k), &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// CountByState returns how many files are in each state, from the index of unfinished records
// and the number of records: no record is read.
func (s *Store) CountByState() (map[State]int, error) {
	out := map[State]int{}
	err := s.view(func(tx *bolt.Tx) error {
		total := tx.Bucket(bucketFiles).Stats().KeyN
		notReady := 0
		err := tx.Bucket(bucketUnfinished).ForEach(func(_, v []byte) error {
			if st := State(v); st != Ready { // a ready file waiting for a retitle is ready
				out[st]++
				notReady++
			}
			return nil
		})
		out[Ready] = total - notReady
		return err
	})
	return out, err
}

// Parts returns the finished parts of record id's upload of generation gen, by number.
func (s *Store) Parts(id, gen uint64) ([]Part, error) {
	var out []Part
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := partKey(id, gen, 0)[:16]
		c := tx.Bucket(bucketParts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var p Part
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode part %x: %w", k, err)
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// PutDir records a folder a user made (or updates its mode and time; its kept attributes stay).
func (s *Store) PutDir(d Dir) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDirs)
		if v := b.Get([]byte(d.Path)); v != nil && d.Xattrs == nil {
			var old Dir
			if err := decodeDir([]byte(d.Path), v, &old); err != nil {
				return err
			}
			d.Xattrs = old.Xattrs
		}
		return putJSON(b, d.Path, d)
	})
}

// DeleteDir forgets a folder.
func (s *Store) DeleteDir(path string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDirs).Delete([]byte(path))
	})
}

// Dirs returns every folder users made, parents before children.
func (s *Store) Dirs() ([]Dir, error) {
	var out []Dir
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDirs).ForEach(func(k, v []byte) error {
			var d Dir
			if err := decodeDir(k, v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	// Byte order puts "a/b" after "a-c", but "a" before both; sorting by depth makes parents first.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Path, "/") < strings.Count(out[j].Path, "/")
	})
	return out, err
}

func idKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

func partKey(id, gen uint64, n int) []byte {
	var k [20]byte
	binary.BigEndian.PutUint64(k[0:], id)
	binary.BigEndian.PutUint64(k[8:], gen)
	binary.BigEndian.PutUint32(k[16:], uint32(n))
	return k[:]
}

func putPart(tx *bolt.Tx, id, gen uint64, p Part) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketParts).Put(partKey(id, gen, p.Number), data)
}

// deleteParts drops every part of record id, whatever its generation.
func deleteParts(tx *bolt.Tx, id uint64) error {
	prefix := idKey(id)
	c := tx.Bucket(bucketParts).Cursor()
	var keys [][]byte
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := tx.Bucket(bucketParts).Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// getRecordID reads record id through the ID index.
func getRecordID(tx *bolt.Tx, id uint64, rec *Record) error {
	p := tx.Bucket(bucketIDs).Get(idKey(id))
	if p == nil {
		return fmt.Errorf("record %d: %w", id, ErrNotFound)
	}
	return getRecord(tx, string(p), rec)
}

func getRecord(tx *bolt.Tx, path string, rec *Record) error {
	v := tx.Bucket(bucketFiles).Get([]byte(path))
	if v == nil {
		return fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	return decodeRecord([]byte(path), v, rec)
}

// decodeDir reads the folder stored under key k; its Path is the key, as a record's is.
func decodeDir(k, v []byte, d *Dir) error {
	if err := json.Unmarshal(v, d); err != nil {
		return fmt.Errorf("decode folder %q: %w", k, err)
	}
	d.Path = string(k)
	return nil
}

// decodeRecord reads the record stored under key k. Its Path is the key, byte for byte: JSON
// holds strings as UTF-8 and would change a name that is not (a file name may be any bytes).
func decodeRecord(k, v []byte, rec *Record) error {
	if err := json.Unmarshal(v, rec); err != nil {
		return fmt.Errorf("decode %q: %w", k, err)
	}
	rec.Path = string(k)
	return nil
}

// putRecord writes a record and those of its two indexes that change from before (nil: a new
// record). An index left alone is a page less written per commit.
func putRecord(tx *bolt.Tx, rec *Record, before *Record) error {
	if err := putJSON(tx.Bucket(bucketFiles), rec.Path, rec); err != nil {
		return err
	}
	if before == nil || before.Path != rec.Path {
		if err := tx.Bucket(bucketIDs).Put(idKey(rec.ID), []byte(rec.Path)); err != nil {
			return err
		}
	}
	if before != nil && before.unfinished() == rec.unfinished() && (!rec.unfinished() || before.State == rec.State) {
		return nil
	}
	if rec.unfinished() {
		return tx.Bucket(bucketUnfinished).Put(idKey(rec.ID), []byte(rec.State))
	}
	return tx.Bucket(bucketUnfinished).Delete(idKey(rec.ID))
}

func deleteRecord(tx *bolt.Tx, rec *Record) error {
	if err := tx.Bucket(bucketFiles).Delete([]byte(rec.Path)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketUnfinished).Delete(idKey(rec.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketIDs).Delete(idKey(rec.ID))
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put([]byte(key), data)
}

// cloneUpload copies an Upload, so that a change can be compared with what it was.
func cloneUpload(u *Upload) *Upload {
	if u == nil {
		return nil
	}
	c := *u
	return &c
}
