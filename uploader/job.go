package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsfs/imsfs/cache"
)

// errSuperseded stops a run whose file changed under it (reopened, truncated): its result would
// describe bytes the file no longer holds. The change has scheduled a new run.
var errSuperseded = errors.New("the file changed during its upload")

// createTimeout bounds a CreateUploadMedia call, which is not cancelled with its run.
const createTimeout = time.Minute

// permanentError marks a failure that retrying cannot mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// job is one run of the upload pipeline for one record.
type job struct {
	q   *Queue
	gen uint64 // the content generation this run uploads
	log *slog.Logger

	mu  sync.Mutex   // guards rec: parts of a multipart upload commit concurrently
	rec cache.Record // as last committed by this run

	creds       *liveCreds   // the upload credentials OSS requests sign with, while uploading
	refreshMu   sync.Mutex   // one refresh at a time
	refreshes   atomic.Int64 // credential refreshes made by this run
	partRetries atomic.Int64 // parts sent again by this run
	progressed  atomic.Bool  // this run committed a step or a part
}

// record returns the record as this run last committed it.
func (j *job) record() cache.Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rec
}

// run moves the record through creating → uploading → uploaded → ready, one committed step at
// a time, starting wherever the record stands (after a restart, that may be mid-way).
func (j *job) run(ctx context.Context) error {
	for {
		var err error
		switch j.rec.State {
		case cache.Queued:
			err = j.update(func(r *cache.Record) error { r.State = cache.Creating; return nil })
		case cache.Creating:
			err = j.create(ctx)
		case cache.Uploading:
			err = j.upload(ctx)
		case cache.Uploaded:
			err = j.waitReady(ctx)
		case cache.Ready:
			if !j.rec.MetaPending {
				return nil
			}
			err = j.updateMeta(ctx)
		default:
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// update commits a change to this run's record, unless the file has changed since the run began.
func (j *job) update(fn func(*cache.Record) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec, err := j.q.cfg.Store.Update(j.rec.ID, func(r *cache.Record) error {
		if r.Gen != j.gen {
			return errSuperseded
		}
		return fn(r)
	})
	if err != nil {
		return err
	}
	if rec.State != j.rec.State || partsOf(rec) > partsOf(j.rec) {
		j.progressed.Store(true)
	}
	j.rec = rec
	return nil
}

func partsOf(r cache.Record) int {
	if r.Upload == nil {
		return 0
	}
	return len(r.Upload.Parts)
}

func (j *job) create(ctx context.Context) error {
	name, err := ParseName(path.Base(j.rec.Path))
	if err != nil {
		return &permanentError{fmt.Errorf("%s: %w", j.rec.Path, err)}
	}
	// The spool is the truth: after a crash mid-write the record's size may be older.
	st, err := os.Stat(j.q.cfg.Store.SpoolPath(j.rec.ID))
	if err != nil {
		return &permanentError{fmt.Errorf("%s: spool: %w", j.rec.Path, err)}
	}
	tag := j.tag()
	req := CreateUploadMediaRequest{
		AppID:         j.q.cfg.AppID,
		FileInfo:      FileInfo{Type: j.rec.Type, Name: name.Base, Ext: name.Ext, Size: st.Size()},
		MediaMetaData: MediaMetaData{Title: name.Title, BusinessType: j.rec.BusinessType},
		// The tag lets an asset whose creation answer was lost be recognised as this file's.
		UserData: map[string]any{"Extend": map[string]string{"imsfs": tag}},
	}
	// CreateUploadMedia is not idempotent: a call cut short by a change to the file may still
	// have made an asset, which nobody would know of. So it is let finish, and an asset that
	// is no longer wanted is disposed of below.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	var t *UploadTicket
	if j.rec.Asked.IsZero() {
		// The intent is committed before the call: if its answer is lost, the next try looks.
		if err := j.update(func(r *cache.Record) error { r.Asked = time.Now().UTC(); return nil }); err != nil {
			return err
		}
	} else if t, err = j.findAsked(cctx, tag); err != nil {
		return err
	}
	if t == nil {
		j.log.Debug("CreateUploadMedia", "type", req.FileInfo.Type, "business_type", req.MediaMetaData.BusinessType)
		if t, err = j.q.cfg.IMS.CreateUploadMedia(cctx, req); err != nil {
			return err
		}
	}
	up, err := DecodeTicket(t.UploadAddress, t.UploadAuth, time.Now())
	if err != nil {
		return fmt.Errorf("CreateUploadMedia %s: %w", t.MediaID, err)
	}
	j.log.Info("asset created", "media_id", t.MediaID)
	err = j.update(func(r *cache.Record) error {
		r.State = cache.Uploading
		r.MediaID, r.MediaURL, r.FileURL = t.MediaID, t.MediaURL, t.FileURL
		r.Upload = &up
		r.Error = ""
		return nil
	})
	if err != nil {
		// The file changed (or went) while the asset was being made: nothing will upload
		// to it, so it must not stay behind.
		if derr := j.q.cfg.Store.AddDisposal(cache.Disposal{Path: j.rec.Path, Why: cache.Voided, MediaID: t.MediaID}); derr != nil {
			j.log.Error("record the disposal of an unused asset", "media_id", t.MediaID, "err", derr)
		}
	}
	return err
}

// tag names this file's content across stores: it goes in the UserData of the asset made for it.
func (j *job) tag() string {
	return fmt.Sprintf("%s/%d.%d", j.q.cfg.Store.Instance(), j.rec.ID, j.gen)
}

// findAsked looks for the assets an earlier CreateUploadMedia for this content made although
// its answer never arrived (a crash, a cut connection). The first is taken up with new upload
// credentials (RefreshUploadMedia); any others are disposed of. It returns nil when there is
// none.
func (j *job) findAsked(ctx context.Context, tag string) (*UploadTicket, error) {
	// A margin for clocks that differ, and for the service's whole-second times.
	list, err := j.q.cfg.IMS.ListMediaSince(ctx, j.rec.Asked.Add(-2*time.Minute))
	if err != nil {
		return nil, err
	}
	var found []string
	for _, m := range list {
		var ud struct {
			Extend struct{ Imsfs string } `json:"Extend"`
		}
		if json.Unmarshal([]byte(m.UserData), &ud) == nil && ud.Extend.Imsfs == tag {
			found = append(found, m.MediaID)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	for _, extra := range found[1:] {
		j.log.Warn("a second asset for the same content was made; disposing of it", "media_id", extra)
		if err := j.q.cfg.Store.AddDisposal(cache.Disposal{Path: j.rec.Path, Why: cache.Voided, MediaID: extra}); err != nil {
			return nil, err
		}
	}
	t, err := j.q.cfg.IMS.RefreshUploadMedia(ctx, found[0])
	if err != nil {
		return nil, err
	}
	j.log.Info("taking up an asset whose creation answer was lost", "media_id", found[0])
	// MediaURL and FileURL come with GetMediaInfo once it is ready.
	return t, nil
}

// updateMeta makes a ready asset's Title and BusinessType follow its file's new name and folder.
// Its bytes are uploaded whatever happens here, so a refusal is noted, not a failure.
func (j *job) updateMeta(ctx context.Context) error {
	name, err := ParseName(path.Base(j.rec.Path))
	if err == nil {
		err = j.q.cfg.IMS.UpdateMediaInfo(ctx, j.rec.MediaID, name.Title, j.rec.BusinessType)
	}
	if err != nil && temporary(err) {
		return err
	}
	msg := ""
	if err != nil {
		msg = "title not updated after the rename: " + err.Error()
		j.log.Warn("asset title not updated", "media_id", j.rec.MediaID, "err", err)
	} else {
		j.log.Info("asset title updated", "media_id", j.rec.MediaID, "title", name.Title)
	}
	return j.update(func(r *cache.Record) error {
		r.MetaPending, r.Error, r.Attempts = false, msg, 0
		return nil
	})
}

// refresh asks RefreshUploadMedia for new credentials and commits them.
func (j *job) refresh(ctx context.Context) error {
	mediaID := j.record().MediaID
	t, err := j.q.cfg.IMS.RefreshUploadMedia(ctx, mediaID)
	if err != nil {
		return err
	}
	up, err := DecodeTicket(t.UploadAddress, t.UploadAuth, time.Now())
	if err != nil {
		return fmt.Errorf("RefreshUploadMedia %s: %w", mediaID, err)
	}
	j.log.Info("upload credentials refreshed", "media_id", mediaID, "expires", up.Expires)
	err = j.update(func(r *cache.Record) error {
		if r.Upload == nil {
			r.Upload = &up
			return nil
		}
		r.Upload.Endpoint, r.Upload.Bucket, r.Upload.Key = up.Endpoint, up.Bucket, up.Key
		r.Upload.AccessKeyID, r.Upload.AccessKeySecret, r.Upload.SecurityToken = up.AccessKeyID, up.AccessKeySecret, up.SecurityToken
		r.Upload.Expires = up.Expires
		return nil
	})
	if err == nil && j.creds != nil {
		j.creds.set(&up)
	}
	return err
}

func (j *job) waitReady(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for {
		info, err := j.q.cfg.IMS.GetMediaInfo(ctx, j.rec.MediaID)
		if err != nil {
			return err
		}
		switch info.MediaBasicInfo.Status {
		case MediaNormal:
			j.log.Info("asset ready", "media_id", j.rec.MediaID)
			return j.update(func(r *cache.Record) error {
				r.State, r.Error, r.Attempts = cache.Ready, "", 0
				// An asset taken up after a lost answer has no URLs yet: its address, unsigned.
				if r.FileURL == "" {
					r.FileURL = info.MediaBasicInfo.InputURL
				}
				if r.MediaURL == "" {
					r.MediaURL = info.MediaBasicInfo.InputURL
				}
				return nil
			})
		case MediaPrepareFail:
			return &permanentError{fmt.Errorf("IMS reports asset %s as %s", j.rec.MediaID, MediaPrepareFail)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// failed records a failed run: a permanent failure ends in Failed with the reason; any other
// keeps the record where it stands and schedules another try after a backoff.
func (j *job) failed(err error) {
	var perm *permanentError
	if errors.As(err, &perm) || !temporary(err) {
		j.log.Error("upload failed", "state", j.rec.State, "err", err)
		if uerr := j.update(func(r *cache.Record) error {
			r.State, r.Error = cache.Failed, err.Error()
			return nil
		}); uerr != nil && !errors.Is(uerr, errSuperseded) && !errors.Is(uerr, cache.ErrNotFound) {
			j.log.Error("record failure", "err", uerr)
		}
		return
	}
	var due time.Time
	attempts := j.rec.Attempts + 1
	if j.progressed.Load() {
		// The run got somewhere before it failed: the next one starts soon, not after a
		// backoff grown by earlier failures.
		attempts = 1
	}
	wait := backoff(attempts, j.q.cfg.MaxBackoff)
	if uerr := j.update(func(r *cache.Record) error {
		r.Attempts = attempts
		due = time.Now().Add(wait)
		r.Due = due
		r.Error = fmt.Sprintf("try %d failed, next at %s: %v", attempts, due.UTC().Format(time.RFC3339), err)
		return nil
	}); uerr != nil {
		if !errors.Is(uerr, errSuperseded) && !errors.Is(uerr, cache.ErrNotFound) {
			j.log.Error("record retry", "err", uerr)
		}
		return
	}
	j.log.Warn("upload try failed, will retry", "try", attempts, "in", wait.Round(time.Millisecond), "state", j.rec.State, "err", err)
	j.q.Schedule(j.rec.ID, due)
}

// backoff is the wait before try n+1: exponential from one second, capped, with ±20% jitter so
// that files failing together do not retry together.
func backoff(n int, limit time.Duration) time.Duration {
	d := time.Second << min(n-1, 20)
	d = min(d, limit)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// temporary reports whether err may pass on its own: network trouble, throttling, server errors.
func temporary(err error) bool {
	var api *APIError
	if errors.As(err, &api) {
		return api.Temporary()
	}
	if code, status, ok := ossError(err); ok {
		return status >= 500 || status == 429 || code == "RequestTimeout" || credentialExpired(code)
	}
	return true
}
