// Package cache keeps what imsfs must not lose: a bbolt file that maps each path in the mount to
// its Record, and the spool directory that holds the bytes of every file, named by record ID.
//
// A state change is committed here before it is acted on, so that a crash at any moment leaves
// a record that says truthfully what is left to do.
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
	"time"

	bolt "go.etcd.io/bbolt"
)

// The bucket layout, declared once.
var (
	bucketFiles = []byte("files") // path → Record (JSON)
	bucketIDs   = []byte("ids")   // ID (8-byte big endian) → path
	bucketDirs  = []byte("dirs")  // path → Dir (JSON), for folders users made
	bucketMeta  = []byte("meta")  // facts about the store itself: "instance", "config"
)

var (
	// ErrNotFound means no record exists for the path or ID asked for.
	ErrNotFound = errors.New("no such record")
	// ErrExists means a record already holds the path.
	ErrExists = errors.New("record exists")
	// ErrLocked means another process (another mount) holds the store.
	ErrLocked = errors.New("cache directory is in use by another imsfs process")
)

// Store is the bbolt file and the spool directory of one cache directory.
type Store struct {
	db       *bolt.DB // read only after Open
	dir      string   // the cache directory
	spoolDir string   // dir/spool
	instance string   // read only: see Instance
}

// Open opens (creating if needed) the store in dir. It fails with ErrLocked if another process
// holds it, instead of waiting forever on bbolt's file lock.
func Open(dir string) (*Store, error) {
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("cache: create %s: %w", spool, err)
	}
	dbPath := filepath.Join(dir, "imsfs.db")
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("cache: open %s: %w", dbPath, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("cache: open %s: %w", dbPath, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFiles, bucketIDs, bucketDirs, bucketDisposals, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cache: init %s: %w", dbPath, err)
	}
	var instance string
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get([]byte("instance")); v != nil {
			instance = string(v)
			return nil
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		instance = hex.EncodeToString(b[:])
		return meta.Put([]byte("instance"), []byte(instance))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cache: init %s: %w", dbPath, err)
	}
	return &Store{db: db, dir: dir, spoolDir: spool, instance: instance}, nil
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
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte(key), []byte(value)) })
}

// Instance returns the store's own random name, made when it was created: with a record ID it
// names a file uniquely across stores (the tag on the assets it creates).
func (s *Store) Instance() string { return s.instance }

// Close closes the bbolt file.
func (s *Store) Close() error { return s.db.Close() }

// Dir returns the cache directory.
func (s *Store) Dir() string { return s.dir }

// SpoolPath returns the file that holds the bytes of record id.
func (s *Store) SpoolPath(id uint64) string {
	return filepath.Join(s.spoolDir, fmt.Sprintf("%016x", id))
}

// Create adds a record for path, giving it a new ID, and returns it. init fills in the rest.
func (s *Store) Create(path string, init func(*Record)) (Record, error) {
	var rec Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		if files.Get([]byte(path)) != nil {
			return fmt.Errorf("create %s: %w", path, ErrExists)
		}
		id, err := files.NextSequence()
		if err != nil {
			return err
		}
		rec = Record{ID: id, Path: path, State: Writing}
		if init != nil {
			init(&rec)
		}
		rec.ID, rec.Path = id, path
		if !rec.State.Valid() {
			return fmt.Errorf("create %s: invalid state %q", path, rec.State)
		}
		return putRecord(tx, &rec)
	})
	return rec, err
}

// Get returns the record for path.
func (s *Store) Get(path string) (Record, error) {
	var rec Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return getRecord(tx, path, &rec)
	})
	return rec, err
}

// GetID returns the record with the given ID.
func (s *Store) GetID(id uint64) (Record, error) {
	var rec Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return getRecordID(tx, id, &rec)
	})
	return rec, err
}

// Update loads record id, lets fn change it and commits the result, all in one transaction.
// A change of State must be allowed by Transition, or nothing is written. If fn returns an
// error, nothing is written and Update returns it.
func (s *Store) Update(id uint64, fn func(*Record) error) (Record, error) {
	var rec Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := getRecordID(tx, id, &rec); err != nil {
			return err
		}
		old := rec
		old.Upload = cloneUpload(rec.Upload)
		rec.Upload = cloneUpload(rec.Upload)
		path, before := rec.Path, rec.State
		if err := fn(&rec); err != nil {
			return err
		}
		if rec.ID != id || rec.Path != path {
			return fmt.Errorf("update %s: ID and path are changed by Rename only", path)
		}
		if rec.State != before {
			if err := Transition(before, rec.State); err != nil {
				return fmt.Errorf("update %s: %w", path, err)
			}
		}
		if err := putDisposal(tx, disposalOf(&old, &rec, 0)); err != nil {
			return err
		}
		return putRecord(tx, &rec)
	})
	return rec, err
}

// Delete removes record id and returns what it held (the caller removes the spool file).
func (s *Store) Delete(id uint64) (Record, error) {
	var rec Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := getRecordID(tx, id, &rec); err != nil {
			return err
		}
		if err := putDisposal(tx, disposalOf(&rec, nil, 0)); err != nil {
			return err
		}
		return deleteRecord(tx, &rec)
	})
	return rec, err
}

// Rename moves the file or folder at oldPath, and everything below a folder, to newPath in one
// transaction. A file record already at newPath is replaced and returned (the caller removes
// its spool). fix is called on every file record moved, with its new Path set, so that the
// caller can apply what the new location means (the folder mapping); a change of State it makes
// must be allowed by Transition.
func (s *Store) Rename(oldPath, newPath string, fix func(*Record)) (replaced *Record, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		files, dirs := tx.Bucket(bucketFiles), tx.Bucket(bucketDirs)
		if v := files.Get([]byte(newPath)); v != nil {
			var old Record
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("rename: decode %s: %w", newPath, err)
			}
			if err := deleteRecord(tx, &old); err != nil {
				return err
			}
			replaced = &old
			var by Record
			if err := getRecord(tx, oldPath, &by); err == nil {
				if err := putDisposal(tx, disposalOf(&old, nil, by.ID)); err != nil {
					return err
				}
			} else if err := putDisposal(tx, disposalOf(&old, nil, 0)); err != nil {
				return err
			}
		}
		// Collect first: a bbolt cursor must not walk a bucket that is being changed.
		var moves []Record
		var dirMoves []Dir
		if v := files.Get([]byte(oldPath)); v != nil {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("rename: decode %s: %w", oldPath, err)
			}
			moves = append(moves, r)
		}
		prefix := []byte(oldPath + "/")
		if v := dirs.Get([]byte(oldPath)); v != nil {
			var d Dir
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("rename: decode dir %s: %w", oldPath, err)
			}
			dirMoves = append(dirMoves, d)
		}
		c := dirs.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var d Dir
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("rename: decode dir %s: %w", k, err)
			}
			dirMoves = append(dirMoves, d)
		}
		c = files.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("rename: decode %s: %w", k, err)
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
		for i := range moves {
			r := &moves[i]
			if err := files.Delete([]byte(r.Path)); err != nil {
				return err
			}
			r.Path = newPath + strings.TrimPrefix(r.Path, oldPath)
			if fix != nil {
				before, old := r.State, *r
				old.Upload = cloneUpload(r.Upload)
				r.Upload = cloneUpload(r.Upload)
				fix(r)
				if err := putDisposal(tx, disposalOf(&old, r, 0)); err != nil {
					return err
				}
				if r.State != before {
					if err := Transition(before, r.State); err != nil {
						return fmt.Errorf("rename %s: %w", r.Path, err)
					}
				}
			}
			if err := putRecord(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	return replaced, err
}

// Files returns every file record, ordered by path.
func (s *Store) Files() ([]Record, error) {
	var out []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// PutDir records a folder a user made (or updates its attributes).
func (s *Store) PutDir(d Dir) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketDirs), d.Path, d)
	})
}

// DeleteDir forgets a folder.
func (s *Store) DeleteDir(path string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDirs).Delete([]byte(path))
	})
}

// Dirs returns every folder users made, parents before children.
func (s *Store) Dirs() ([]Dir, error) {
	var out []Dir
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDirs).ForEach(func(k, v []byte) error {
			var d Dir
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode dir %s: %w", k, err)
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
	if err := json.Unmarshal(v, rec); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func putRecord(tx *bolt.Tx, rec *Record) error {
	if err := putJSON(tx.Bucket(bucketFiles), rec.Path, rec); err != nil {
		return err
	}
	return tx.Bucket(bucketIDs).Put(idKey(rec.ID), []byte(rec.Path))
}

func deleteRecord(tx *bolt.Tx, rec *Record) error {
	if err := tx.Bucket(bucketFiles).Delete([]byte(rec.Path)); err != nil {
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
	c.Parts = append([]Part(nil), u.Parts...)
	return &c
}
