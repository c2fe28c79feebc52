package cache

import (
	"errors"
	"fmt"
	"maps"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Extended attributes other than imsfs's own: what Samba keeps of Windows and macOS files
// (user.DOSATTRIB, streams as user.DosStream.*), browsers' user.xdg.*, what an archive
// carries. They are the file's: kept with its record, they follow it through a rename and
// survive a restart. The limits are ext4's with 4 KiB blocks, so that what is kept here could
// be kept on a local disk and no more.

// Xattrs are the kept attributes of a file or folder, by full name.
type Xattrs map[string][]byte

const (
	// XattrNameMax is the longest name, as the kernel takes it (XATTR_NAME_MAX).
	XattrNameMax = 255
	// xattrBlock is the room the attributes of one file have on ext4: one block of 4 KiB,
	// less its header and end marker, each attribute costing an entry of 16 bytes besides its
	// name (without "user.") and value, each rounded up to 4 bytes.
	xattrBlock = 4096 - 32 - 4
)

var (
	// ErrNoXattr: no attribute of that name (ENODATA).
	ErrNoXattr = errors.New("no such attribute")
	// ErrXattrExists: XATTR_CREATE of an attribute there is (EEXIST).
	ErrXattrExists = errors.New("the attribute exists")
	// ErrXattrSpace: the file's attributes would not fit where ext4 keeps them (ENOSPC).
	ErrXattrSpace = errors.New("no room for the attribute")
	// ErrXattrName: a name over XattrNameMax bytes (ERANGE).
	ErrXattrName = errors.New("the attribute's name is too long")
)

// XattrFlags are setxattr(2)'s flags.
type XattrFlags struct{ Create, Replace bool }

func round4(n int) int { return (n + 3) &^ 3 }

// room is what xs take of a file's block.
func (xs Xattrs) room() int {
	n := 0
	for name, v := range xs {
		n += 16 + round4(len(name)-len("user.")) + round4(len(v))
	}
	return n
}

// set sets (or, value nil, removes) name in xs, as setxattr(2) and removexattr(2) on ext4.
func (xs Xattrs) set(name string, value []byte, remove bool, f XattrFlags) (Xattrs, error) {
	if len(name) > XattrNameMax {
		return nil, fmt.Errorf("%s: %w", name, ErrXattrName)
	}
	_, there := xs[name]
	switch {
	case remove && !there, f.Replace && !there:
		return nil, fmt.Errorf("%s: %w", name, ErrNoXattr)
	case f.Create && there:
		return nil, fmt.Errorf("%s: %w", name, ErrXattrExists)
	}
	out := maps.Clone(xs)
	if out == nil {
		out = Xattrs{}
	}
	if remove {
		delete(out, name)
		return out, nil
	}
	out[name] = append([]byte(nil), value...)
	if out.room() > xattrBlock {
		return nil, fmt.Errorf("%s: %d bytes of attributes, ext4 keeps %d: %w", name, out.room(), xattrBlock, ErrXattrSpace)
	}
	return out, nil
}

// SetXattr sets (or, with remove, removes) a kept attribute of the file of record id.
func (s *Store) SetXattr(id uint64, name string, value []byte, remove bool, f XattrFlags) error {
	return s.update(func(tx *bolt.Tx) error {
		var rec Record
		if err := getRecordID(tx, id, &rec); err != nil {
			return err
		}
		xs, err := rec.Xattrs.set(name, value, remove, f)
		if err != nil {
			return err
		}
		before := rec
		rec.Xattrs = xs
		return putRecord(tx, &rec, &before)
	})
}

// SetDirXattr sets (or, with remove, removes) a kept attribute of the folder at path. A folder
// a user made has its record; one of the mapping's (or the root, ".") gets one, with make,
// that keeps nothing else; with neither, the folder is gone (ErrNotFound).
func (s *Store) SetDirXattr(path, name string, value []byte, remove bool, f XattrFlags, make bool) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDirs)
		d := Dir{Path: path, Mode: 0o755, Mtime: time.Now().UTC()}
		switch v := b.Get([]byte(path)); {
		case v != nil:
			if err := decodeDir([]byte(path), v, &d); err != nil {
				return err
			}
		case !make:
			return fmt.Errorf("folder %s: %w", path, ErrNotFound)
		}
		xs, err := d.Xattrs.set(name, value, remove, f)
		if err != nil {
			return err
		}
		d.Xattrs = xs
		return putJSON(b, path, d)
	})
}

// DirXattrs returns the kept attributes of the folder at path (none: nil).
func (s *Store) DirXattrs(path string) (Xattrs, error) {
	var d Dir
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDirs).Get([]byte(path))
		if v == nil {
			return nil
		}
		return decodeDir([]byte(path), v, &d)
	})
	return d.Xattrs, err
}

// SetMetaRefused keeps why a field written in the file's sidecar was refused ("": none now), for
// the sidecar to say.
func (s *Store) SetMetaRefused(id uint64, why string) error {
	return s.update(func(tx *bolt.Tx) error {
		var rec Record
		if err := getRecordID(tx, id, &rec); err != nil {
			return err
		}
		if rec.MetaRefused == why {
			return nil
		}
		before := rec
		rec.MetaRefused = why
		return putRecord(tx, &rec, &before)
	})
}
