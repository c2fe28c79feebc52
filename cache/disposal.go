package cache

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketDisposals = []byte("disposals") // sequence (8-byte big endian) → Disposal (JSON)

// Why says how an asset came to stand for no file's current bytes.
type Why string

const (
	// Voided: the asset was never finished (its file changed, moved or went during the upload).
	// It is garbage: its multipart upload is aborted and the asset deleted.
	Voided Why = "voided"
	// Overwritten: a finished asset whose file has new bytes, or whose path another file took.
	// The overwrite policy decides, once the new bytes are an asset too (After).
	Overwritten Why = "overwritten"
	// Deleted: a finished asset whose file was unlinked. The delete policy decides.
	Deleted Why = "deleted"
)

// Disposal is cloud work a record change left behind: an asset, and maybe an unfinished
// multipart upload, that no file stands for any more. It is committed in the same transaction
// as the change, so that a crash cannot leave an orphan nobody knows of.
type Disposal struct {
	Seq     uint64    `json:"seq"`
	Path    string    `json:"path"` // where the file was, for logs
	Why     Why       `json:"why"`
	MediaID string    `json:"media_id,omitempty"`
	Upload  *Upload   `json:"upload,omitempty"` // to abort its multipart upload, if any
	After   uint64    `json:"after,omitempty"`  // Overwritten: the record whose new asset must be ready first
	Due     time.Time `json:"due,omitzero"`     // not tried before this (backoff)
	// Lost: a CreateUploadMedia for record Record's generation Gen, asked at Asked, whose answer
	// never came: the asset it may have made (Type, BusinessType) is found by its tag and deleted.
	Lost     *LostAsset `json:"lost,omitempty"`
	Attempts int        `json:"attempts,omitempty"` // failed tries
	Error    string     `json:"error,omitempty"`    // why the last try failed, for imsfs status
}

// LostAsset is an asset a CreateUploadMedia may have made, whose answer never came.
type LostAsset struct {
	Record       uint64    `json:"record"`
	Gen          uint64    `json:"gen"`
	Asked        time.Time `json:"asked"`
	Type         string    `json:"type"`
	BusinessType string    `json:"business_type"`
}

// disposalOf returns what the change from before to after (nil: the record is gone) leaves
// behind, or nil. replacedBy is the record that took before's path, for a rename over it.
func disposalOf(before, after *Record, replacedBy uint64) *Disposal {
	if before.MediaID == "" && before.Upload == nil {
		if before.State == Creating && !before.Asked.IsZero() && (after == nil || after.Gen != before.Gen) {
			// Asked for, with no answer yet: an asset may be on its way or may exist already,
			// which no record will stand for. (One whose answer does come is disposed of then
			// as well, by its MediaId: deleting twice is no harm.)
			return &Disposal{Path: before.Path, Why: Voided, Lost: &LostAsset{Record: before.ID, Gen: before.Gen,
				Asked: before.Asked, Type: before.Type, BusinessType: before.BusinessType}}
		}
		return nil
	}
	if after != nil && after.MediaID == before.MediaID {
		return nil // the same asset still stands for the file
	}
	d := &Disposal{Path: before.Path, MediaID: before.MediaID, Upload: cloneUpload(before.Upload), Why: Voided}
	if before.State.Finished() {
		d.Upload = nil // finished: nothing to abort
		switch {
		case replacedBy != 0:
			d.Why, d.After = Overwritten, replacedBy
		case after != nil:
			d.Why, d.After = Overwritten, after.ID
		default:
			d.Why = Deleted
		}
	}
	return d
}

func putDisposal(tx *bolt.Tx, d *Disposal) error {
	if d == nil {
		return nil
	}
	b := tx.Bucket(bucketDisposals)
	if d.Seq == 0 {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		d.Seq = seq
	}
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode disposal of %s: %w", d.Path, err)
	}
	return b.Put(seqKey(d.Seq), data)
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// AddDisposal records cloud work to undo, e.g. an asset created for content that changed
// before its creation could be committed.
// It returns the disposal's Seq.
func (s *Store) AddDisposal(d Disposal) (uint64, error) {
	d.Seq = 0
	err := s.update(func(tx *bolt.Tx) error { return putDisposal(tx, &d) })
	return d.Seq, err
}

// Disposals returns the pending disposals, oldest first.
func (s *Store) Disposals() ([]Disposal, error) {
	var out []Disposal
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDisposals).ForEach(func(k, v []byte) error {
			var d Disposal
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode disposal %x: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// GetDisposal returns the pending disposal seq.
func (s *Store) GetDisposal(seq uint64) (Disposal, error) {
	var d Disposal
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDisposals).Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("disposal %d: %w", seq, ErrNotFound)
		}
		return json.Unmarshal(v, &d)
	})
	return d, err
}

// UpdateDisposal rewrites a pending disposal (its tries and due time).
func (s *Store) UpdateDisposal(d Disposal) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketDisposals).Get(seqKey(d.Seq)) == nil {
			return fmt.Errorf("disposal %d: %w", d.Seq, ErrNotFound)
		}
		return putDisposal(tx, &d)
	})
}

// DoneDisposal removes a disposal that is carried out.
func (s *Store) DoneDisposal(seq uint64) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDisposals).Delete(seqKey(seq)) })
}
