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
	// Waiting: an overwritten asset waits for record After to settle (its new bytes an asset,
	// or gone) before the policy deletes it; kept, so that a restart waits as well.
	Waiting bool `json:"waiting,omitempty"`
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
	var seq uint64
	err := s.update(func(tx *bolt.Tx) error {
		// A copy each time: a commit refused (a full volume) is made again, with a new Seq.
		dd := d
		dd.Seq = 0
		if err := putDisposal(tx, &dd); err != nil {
			return err
		}
		seq = dd.Seq
		return nil
	})
	return seq, err
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

// DisposalStage is where a disposal stands: due (never tried, or woken), waiting for the
// record it follows, or retrying after failed tries. Done is its end: it is removed.
type DisposalStage string

const (
	DisposalDue      DisposalStage = "due"
	DisposalWaiting  DisposalStage = "waiting"
	DisposalRetrying DisposalStage = "retrying"
	DisposalDone     DisposalStage = "done"
)

// Stage returns where d stands.
func (d Disposal) Stage() DisposalStage {
	switch {
	case d.Waiting:
		return DisposalWaiting
	case d.Attempts > 0:
		return DisposalRetrying
	}
	return DisposalDue
}

// DisposalEventKind names what happened to a disposal.
type DisposalEventKind int

const (
	// Disposed: its asset is deleted (or there was none to delete, or the policy keeps it).
	Disposed DisposalEventKind = iota + 1
	// DisposeFailed: a try failed (Reason); the next is at Due.
	DisposeFailed
	// DisposeWaits: it waits for record After to settle, or until Due at the latest.
	DisposeWaits
	// DisposeWoken: the record it waited for settled (or the wait ran out): it is tried now.
	DisposeWoken
)

var disposalEventNames = [...]string{"", "disposed", "dispose-failed", "dispose-waits", "dispose-woken"}

func (k DisposalEventKind) String() string {
	if k > 0 && int(k) < len(disposalEventNames) {
		return disposalEventNames[k]
	}
	return fmt.Sprintf("disposal-event(%d)", int(k))
}

// DisposalEvent is one thing that happened to a disposal.
type DisposalEvent struct {
	Kind   DisposalEventKind
	Due    time.Time // DisposeFailed, DisposeWaits
	Reason string    // DisposeFailed
}

// disposalTransition is the table of a disposal's life: what ev does to d, where it stands.
// Nothing else changes a disposal.
func disposalTransition(d Disposal, ev DisposalEvent) (Disposal, DisposalStage, error) {
	stage := d.Stage()
	bad := func() (Disposal, DisposalStage, error) {
		return d, stage, fmt.Errorf("disposal %d of %s: %s when %s: %w", d.Seq, d.Path, ev.Kind, stage, ErrBadTransition)
	}
	switch ev.Kind {
	case Disposed:
		if stage == DisposalWaiting {
			return bad() // woken first: a waiting disposal is not carried out
		}
		return d, DisposalDone, nil
	case DisposeFailed:
		if stage == DisposalWaiting {
			return bad()
		}
		d.Attempts++
		d.Error, d.Due = ev.Reason, ev.Due.UTC()
	case DisposeWaits:
		if d.After == 0 {
			return bad() // nothing to wait for
		}
		d.Waiting, d.Due = true, ev.Due.UTC()
	case DisposeWoken:
		if stage != DisposalWaiting {
			return bad() // a retrying disposal keeps its backoff
		}
		d.Waiting, d.Due = false, time.Time{}
	default:
		return bad()
	}
	return d, d.Stage(), nil
}

// ApplyDisposal commits ev on disposal seq through the table, and returns the disposal as it
// now stands (removed once Done).
func (s *Store) ApplyDisposal(seq uint64, ev DisposalEvent) (Disposal, error) {
	var out Disposal
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDisposals)
		v := b.Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("disposal %d: %w", seq, ErrNotFound)
		}
		var d Disposal
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode disposal %d: %w", seq, err)
		}
		next, stage, err := disposalTransition(d, ev)
		if err != nil {
			return err
		}
		out = next
		if stage == DisposalDone {
			return b.Delete(seqKey(seq))
		}
		return putDisposal(tx, &out)
	})
	return out, err
}
