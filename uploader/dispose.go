package uploader

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/imsfs/imsfs/cache"
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

// disposeEvery is how often the store is read for disposals that are due.
const disposeEvery = 500 * time.Millisecond

// disposer carries out the disposals record changes leave in the store: it aborts the
// multipart uploads and deletes the assets of voided uploads, and applies the overwrite and
// delete policies to finished assets. It runs beside the upload workers and, like them, takes
// up after a restart where the store says it stopped.
func (q *Queue) disposer() {
	defer q.wg.Done()
	t := time.NewTicker(disposeEvery)
	defer t.Stop()
	last := false
	for {
		ds, err := q.cfg.Store.Disposals()
		if err != nil {
			q.cfg.Log.Error("read disposals", "err", err)
		}
		for _, d := range ds {
			if q.ctx.Err() != nil {
				return
			}
			if time.Now().Before(d.Due) {
				continue
			}
			q.dispose(q.ctx, d)
		}
		if last {
			return
		}
		select {
		case <-q.ctx.Done():
			return
		case <-q.quit:
			last = true // one more pass, for what the last changes left
		case <-t.C:
		}
	}
}

// dispose carries out one disposal, or schedules its next try.
func (q *Queue) dispose(ctx context.Context, d cache.Disposal) {
	log := q.cfg.Log.With("path", d.Path, "media_id", d.MediaID, "why", d.Why)
	act, wait := q.decide(d)
	if wait {
		return
	}
	var err error
	if act {
		err = q.undo(ctx, d)
	}
	if err == nil {
		if act {
			log.Info("asset deleted")
		}
		if err := q.cfg.Store.DoneDisposal(d.Seq); err != nil {
			log.Error("record disposal", "err", err)
		}
		return
	}
	if !temporary(err) || d.Attempts >= 20 {
		log.Error("cannot delete asset; giving up", "err", err)
		if err := q.cfg.Store.DoneDisposal(d.Seq); err != nil {
			log.Error("record disposal", "err", err)
		}
		return
	}
	d.Attempts++
	d.Due = time.Now().Add(backoff(d.Attempts, q.cfg.MaxBackoff))
	log.Warn("asset deletion failed, will retry", "try", d.Attempts, "err", err)
	if err := q.cfg.Store.UpdateDisposal(d); err != nil && !errors.Is(err, cache.ErrNotFound) {
		log.Error("record disposal", "err", err)
	}
}

// decide says whether a disposal deletes its asset, or waits. A voided upload always goes. A
// finished asset follows its policy; an overwritten one only once the new bytes are an asset
// (or their file is gone, or under a name that is not uploaded), so that the cloud never holds
// neither while an upload is on its way. A file under a temporary name
// that is deleted was an old version moved aside (vim's "name~"), so it counts as overwritten.
func (q *Queue) decide(d cache.Disposal) (act, wait bool) {
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
			// Wait while the new bytes are on their way (or failed, to be retried); a file
			// that is gone, or under a name that is not uploaded, has nothing to wait for.
			r, err := q.cfg.Store.GetID(d.After)
			if err == nil && r.State != cache.Ready && r.State != cache.Skipped {
				return false, true
			}
		}
		return true, false
	}
	return false, false
}

// undo aborts a disposal's multipart upload, if it has one, and deletes its asset.
func (q *Queue) undo(ctx context.Context, d cache.Disposal) error {
	if up := d.Upload; up != nil && up.MultipartID != "" {
		if err := q.abort(ctx, d); err != nil {
			return err
		}
	}
	if d.MediaID == "" {
		return nil
	}
	return q.cfg.IMS.DeleteMediaInfos(ctx, d.MediaID)
}

// abort aborts a multipart upload with the asset's upload credentials, refreshed if need be.
func (q *Queue) abort(ctx context.Context, d cache.Disposal) error {
	up := *d.Upload
	for try := 0; ; try++ {
		client, err := oss.New(up.Endpoint, up.AccessKeyID, up.AccessKeySecret, oss.SecurityToken(up.SecurityToken), oss.Timeout(10, 60))
		if err != nil {
			return &permanentError{err}
		}
		bucket, err := client.Bucket(up.Bucket)
		if err != nil {
			return &permanentError{err}
		}
		err = bucket.AbortMultipartUpload(oss.InitiateMultipartUploadResult{Bucket: up.Bucket, Key: up.Key, UploadID: up.MultipartID}, oss.WithContext(ctx))
		code, _, isOSS := ossError(err)
		switch {
		case err == nil, isOSS && code == "NoSuchUpload":
			return nil
		case isOSS && credentialExpired(code) && try == 0 && d.MediaID != "":
			t, err := q.cfg.IMS.RefreshUploadMedia(ctx, d.MediaID)
			if err != nil {
				return err
			}
			fresh, err := DecodeTicket(t.UploadAddress, t.UploadAuth, time.Now())
			if err != nil {
				return err
			}
			up.AccessKeyID, up.AccessKeySecret, up.SecurityToken = fresh.AccessKeyID, fresh.AccessKeySecret, fresh.SecurityToken
		default:
			return fmt.Errorf("abort multipart upload of %s: %w", d.Path, err)
		}
	}
}
