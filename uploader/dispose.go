package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// Policy says what happens to a finished asset whose file was overwritten or deleted.
type Policy string

const (
	Keep   Policy = "keep"   // the asset stays in IMS
	Delete Policy = "delete" // the asset is deleted (DeleteMediaInfos, with its stored file)
)

// ParsePolicy reads a --on-overwrite or --on-delete value.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Keep, Delete:
		return p, nil
	}
	return "", fmt.Errorf("policy %q: want keep or delete", s)
}

// disposer carries out the disposals record changes leave in the store, one at a time as they
// come due: it aborts the multipart uploads and deletes the assets of voided uploads, and
// applies the overwrite and delete policies to finished assets. A disposal that fails is tried
// again, with the retry policy's backoff, for as long as it takes (an orphan asset costs the
// user money): it stays in the store, and `imsfs status` shows it with its last error.
type disposer struct {
	cfg     *Config              // read only
	running func(id uint64) bool // the pool's: whether a worker is on a record

	disposals *schedule // disposal Seqs due

	mu      sync.Mutex
	waiting map[uint64][]uint64 // protected by mu: record → disposals waiting for it to settle
}

func newDisposer(cfg *Config, running func(uint64) bool) *disposer {
	return &disposer{cfg: cfg, running: running, disposals: newSchedule(cfg.Clock), waiting: map[uint64][]uint64{}}
}

// add makes disposal seq due at at (now if zero).
func (q *disposer) add(seq uint64, at time.Time) { q.disposals.Add(seq, at) }

// settled wakes the disposals that waited for record id to settle.
func (q *disposer) settled(id uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, seq := range q.waiting[id] {
		q.disposals.Add(seq, time.Time{})
	}
	delete(q.waiting, id)
}

// drain lets run end once nothing is due; what is not due waits for the next mount.
func (q *disposer) drain() { q.disposals.Close() }

// run carries out the disposals as they come due, until ctx is done or the disposer drained.
func (q *disposer) run(ctx context.Context) {
	for {
		seq, ok := q.disposals.Next(ctx)
		if !ok {
			return
		}
		d, err := q.cfg.Store.GetDisposal(seq)
		if errors.Is(err, cache.ErrNotFound) {
			continue
		}
		if err != nil {
			q.cfg.Log.Error("read disposal", "seq", seq, "err", err)
			continue
		}
		q.dispose(ctx, d)
	}
}

// dispose carries out one disposal, or schedules its next try. Each change of the disposal
// goes through its table (cache.Store.ApplyDisposal).
func (q *disposer) dispose(ctx context.Context, d cache.Disposal) {
	log := q.cfg.Log.With("path", d.Path, "media_id", d.MediaID, "why", d.Why)
	if l := d.Lost; l != nil && d.MediaID == "" {
		// Not looked for while a call that may make it can still be under way (a run of the
		// record's goes on; a call is let finish), nor before the service lists what it made.
		// The wait is the schedule's only: a restart looks again.
		now := q.cfg.Clock.Now()
		if after := l.Asked.Add(lostListed); q.running(l.Record) || now.Before(after) {
			next := now.Add(time.Second)
			if after.After(next) {
				next = after
			}
			q.disposals.Add(d.Seq, next)
			return
		}
	}
	if d.Waiting {
		var err error
		if d, err = q.cfg.Store.ApplyDisposal(d.Seq, cache.DisposalEvent{Kind: cache.DisposeWoken}); err != nil {
			q.refused(log, d.Seq, err)
			return
		}
	}
	act, wait := q.decide(d)
	if wait {
		q.wait(log, d)
		return
	}
	var err error
	deleted := ""
	if act {
		deleted, err = q.undo(ctx, d)
	}
	if err == nil {
		switch {
		case deleted != "" && deleted == d.MediaID:
			log.Info("asset deleted")
		case deleted != "":
			log.Info("an asset found by its tag is deleted: its creation answer was lost, and its file changed or went", "found", deleted)
		case act && d.Lost != nil:
			log.Info("no asset was made for a creation whose answer was lost")
		}
		_, err := q.cfg.Store.ApplyDisposal(d.Seq, cache.DisposalEvent{Kind: cache.Disposed})
		q.recordFailed(log, err)
		return
	}
	if ctx.Err() != nil {
		return // stopped by Close: the next mount goes on
	}
	wait2 := q.cfg.Retry.Delay(d.Attempts + 1)
	if !temporary(err) {
		// A refusal may pass when the account or its permissions change: try again at the
		// longest interval, and say so loudly.
		wait2 = q.cfg.Retry.Max
		log.Error("cannot delete the asset; trying again later (see imsfs status)", "try", d.Attempts+1, "err", err)
	} else {
		log.Warn("asset deletion failed, will retry", "try", d.Attempts+1, "err", err)
	}
	due := q.cfg.Clock.Now().Add(wait2)
	_, err = q.cfg.Store.ApplyDisposal(d.Seq, cache.DisposalEvent{Kind: cache.DisposeFailed, Reason: err.Error(), Due: due})
	q.recordFailed(log, err)
	q.disposals.Add(d.Seq, due)
}

// wait makes d wait for the record it follows to settle: woken then (settled), and looked at
// again after Retry.Max in any case. The order matters: the late look is set first (a wake
// after it must not be pushed back), then the wake is asked for, then the record is looked at
// again, since it may have settled (and found nobody to wake) between the first look and the
// asking.
func (q *disposer) wait(log *slog.Logger, d cache.Disposal) {
	due := q.cfg.Clock.Now().Add(q.cfg.Retry.Max)
	if _, err := q.cfg.Store.ApplyDisposal(d.Seq, cache.DisposalEvent{Kind: cache.DisposeWaits, Due: due}); err != nil {
		q.refused(log, d.Seq, err)
		return
	}
	q.disposals.Add(d.Seq, due)
	q.waitFor(d.After, d.Seq)
	if _, still := q.decide(d); !still {
		q.disposals.Add(d.Seq, time.Time{})
	}
}

// waitFor asks that disposal seq be made due when record id settles.
func (q *disposer) waitFor(id, seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !slices.Contains(q.waiting[id], seq) { // asked again at each late look
		q.waiting[id] = append(q.waiting[id], seq)
	}
}

// refused logs a step of disposal seq the store did not take (a full volume) and looks at it
// again later: it stays in the store as it was.
func (q *disposer) refused(log *slog.Logger, seq uint64, err error) {
	q.recordFailed(log, err)
	if !errors.Is(err, cache.ErrNotFound) {
		q.disposals.Add(seq, q.cfg.Clock.Now().Add(q.cfg.Retry.Delay(1)))
	}
}

// recordFailed logs a disposal's change the store did not take, but for one gone meanwhile.
func (q *disposer) recordFailed(log *slog.Logger, err error) {
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		log.Error("record disposal", "err", err)
	}
}

// lostListed is how long after a CreateUploadMedia was asked the asset it made is looked for
// by its tag, if its answer was lost: the listing shows it by then.
const lostListed = 5 * time.Second

// decide says whether a disposal deletes its asset, or waits. A voided upload always goes. A
// finished asset follows its policy; an overwritten one only once the new bytes are an asset
// (or their file is gone, or under a name that is not uploaded), so that the cloud never holds
// neither while an upload is on its way. A file under a temporary name that is deleted was an
// old version moved aside (vim's "name~"), so it counts as overwritten.
func (q *disposer) decide(d cache.Disposal) (act, wait bool) {
	switch d.Why {
	case cache.Voided:
		return true, false
	case cache.Deleted:
		if _, temp := q.cfg.Names.TempName(path.Base(d.Path)); temp {
			return q.cfg.OnOverwrite == Delete, false
		}
		return q.cfg.OnDelete == Delete, false
	case cache.Overwritten:
		if q.cfg.OnOverwrite != Delete {
			return false, false
		}
		if d.After != 0 {
			r, err := q.cfg.Store.GetID(d.After)
			if err == nil && r.State != cache.Ready && !r.State.Kept() {
				return false, true
			}
		}
		return true, false
	}
	return false, false
}

// undo aborts a disposal's multipart upload, if it has one, and deletes its asset, found by its
// tag when its creation answer was lost. It returns the asset deleted ("": none).
func (q *disposer) undo(ctx context.Context, d cache.Disposal) (string, error) {
	if up := d.Upload; up != nil && up.MultipartID != "" && d.MediaID != "" {
		if err := q.abort(ctx, d); err != nil {
			return "", err
		}
	}
	mediaID := d.MediaID
	if l := d.Lost; l != nil && mediaID == "" {
		m, err := findTagged(ctx, q.cfg.IMS, q.cfg.Log.With("path", d.Path), tagOf(q.cfg.Store.Instance(), l.Record, l.Gen), l.Asked, l.Type, l.BusinessType)
		if err != nil || m == nil {
			return "", err // none found: none was made
		}
		mediaID = m.MediaID
	}
	if mediaID == "" {
		return "", nil
	}
	return mediaID, q.cfg.IMS.DeleteMediaInfos(ctx, mediaID)
}

// abort aborts a multipart upload with new upload credentials for its asset (none are kept).
func (q *disposer) abort(ctx context.Context, d cache.Disposal) error {
	t, err := q.cfg.IMS.RefreshUploadMedia(ctx, d.MediaID)
	if err != nil && !temporary(err) {
		// No credentials for the object (the asset is gone, say): deleting the asset is what
		// is left to do, and IMS drops its stored files with it.
		q.cfg.Log.Warn("cannot abort the multipart upload of a voided asset; deleting the asset", "path", d.Path, "media_id", d.MediaID, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("abort the multipart upload of %s: %w", d.Path, err)
	}
	_, auth, err := t.Decode(q.cfg.Clock.Now())
	if err != nil {
		return err
	}
	up := d.Upload
	target := targetOf(up)
	creds := func() transfer.Credentials {
		return transfer.Credentials{AccessKeyID: auth.AccessKeyID, AccessKeySecret: auth.AccessKeySecret, SecurityToken: auth.SecurityToken}
	}
	if err := q.cfg.Objects.Abort(ctx, target, creds, up.MultipartID); err != nil {
		return fmt.Errorf("abort the multipart upload of %s: %w", d.Path, err)
	}
	return nil
}

// addNew records d, an asset no record knows of, and makes it due at once.
func (q *disposer) addNew(d cache.Disposal) error {
	seq, err := q.cfg.Store.AddDisposal(d)
	if err != nil {
		return err
	}
	q.disposals.Add(seq, time.Time{})
	return nil
}
