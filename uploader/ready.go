package uploader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/ims"
)

// readiness asks IMS, in batches, about the assets of uploaded files until each is Normal
// (ready) or PrepareFail (failed). It holds no worker: a file waits for IMS's processing in its
// schedule, however long that takes, each wait twice the last.
type readiness struct {
	cfg   *Config                           // read only
	route func(cache.Record, cache.Effects) // the queue's: carries out what a committed change asks

	checks *schedule // record IDs (uploaded) due for a check

	mu       sync.Mutex
	waits    map[uint64]int  // protected by mu: checks of a record that found its asset not ready yet
	told     map[uint64]bool // protected by mu: records whose wait was logged
	draining bool            // protected by mu: nothing new is scheduled
}

func newReadiness(cfg *Config, route func(cache.Record, cache.Effects)) *readiness {
	return &readiness{cfg: cfg, route: route, checks: newSchedule(cfg.Clock),
		waits: map[uint64]int{}, told: map[uint64]bool{}}
}

// run checks what comes due until ctx is done or the checker is drained.
func (q *readiness) run(ctx context.Context) {
	for {
		// Checks due soon (Gather) go together: one call asks about many assets.
		ids := q.checks.TakeDue(ctx, q.cfg.Ready.Batch, q.cfg.Ready.Gather)
		if ids == nil {
			return
		}
		q.check(ctx, ids)
	}
}

// first schedules the first check of record id, at at; its waits start again from the first.
func (q *readiness) first(id uint64, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.draining {
		return
	}
	delete(q.waits, id)
	q.checks.Add(id, q.due(at))
}

// resume schedules a check of record id now, as found in the store at mount.
func (q *readiness) resume(id uint64) { q.checks.Add(id, time.Time{}) }

// forget takes record id out: its asset is no longer the one to wait for.
func (q *readiness) forget(id uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.checks.Remove(id)
	delete(q.waits, id)
	delete(q.told, id)
}

// drain stops the checks: readiness is only waited for, and the next mount asks again.
func (q *readiness) drain() {
	q.mu.Lock()
	q.draining = true
	q.mu.Unlock()
	q.checks.Close()
}

// check asks about the assets of records ids in one call and reports what IMS says.
func (q *readiness) check(ctx context.Context, ids []uint64) {
	recs := make(map[string]cache.Record, len(ids))
	var mediaIDs []string
	for _, id := range ids {
		rec, err := q.cfg.Store.GetID(id)
		if err != nil || rec.State != cache.Uploaded {
			continue // gone, or changed since: nothing to check
		}
		recs[rec.MediaID] = rec
		mediaIDs = append(mediaIDs, rec.MediaID)
	}
	if len(mediaIDs) == 0 {
		return
	}
	batch, err := q.cfg.IMS.BatchGetMediaInfos(ctx, mediaIDs, false)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		q.cfg.Log.Warn("readiness check failed; asking again later", "assets", len(mediaIDs), "err", err)
		for _, r := range recs {
			switch {
			case isThrottled(err):
				q.checkAgain(r) // the client's pace for the action is the backoff
			default:
				q.checkLater(r, !temporary(err))
			}
		}
		return
	}
	seen := make(map[string]bool, len(batch.MediaInfos))
	var said []saying
	for _, id := range batch.Ignored {
		r, ok := recs[id]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		said = append(said, saying{r, cache.Event{Kind: cache.UploadFailed, Reason: fmt.Sprintf(
			"IMS no longer knows asset %s (it was deleted, in the console or by another program): imsfs retry uploads the file again as a new asset", id)}, "AssetGone"})
	}
	for _, info := range batch.MediaInfos {
		r, ok := recs[info.MediaID]
		if !ok {
			continue
		}
		seen[info.MediaID] = true
		var ev *cache.Event
		code := "ReadyTimeout" // what a failure here is counted as
		switch status := info.MediaBasicInfo.Status; status {
		case ims.MediaNormal:
			ev = &cache.Event{Kind: cache.AssetReady, URL: info.MediaBasicInfo.InputURL}
		case ims.MediaPrepareFail:
			ev = &cache.Event{Kind: cache.UploadFailed, Reason: fmt.Sprintf("IMS reports asset %s as %s: it could not process the file", r.MediaID, status)}
			code = status
		case ims.MediaInit, ims.MediaPreparing:
			ev = q.waited(r, status)
		default:
			q.once(r.ID, "IMS reports an asset status imsfs does not know; waiting for Normal or PrepareFail", "path", r.Path, "media_id", r.MediaID, "status", status)
			ev = q.waited(r, status)
		}
		if ev != nil {
			said = append(said, saying{r, *ev, code})
		}
	}
	for mediaID, r := range recs {
		if !seen[mediaID] {
			q.once(r.ID, "IMS does not list the asset of an uploaded file yet; asking again later", "path", r.Path, "media_id", mediaID)
			if ev := q.waited(r, "not listed"); ev != nil {
				said = append(said, saying{r, *ev, "ReadyTimeout"})
			}
		}
	}
	q.reportAll(said)
}

// saying is what one answer of IMS said of one file's asset: the event to commit, and the code
// a failure is counted as.
type saying struct {
	r    cache.Record
	ev   cache.Event
	code string
}

// reportAll commits what one answer said of each file in one transaction, and reports each.
// Should that commit fail, each is committed (and may fail) on its own.
func (q *readiness) reportAll(said []saying) {
	if len(said) == 0 {
		return
	}
	reports := make([]cache.Report, len(said))
	now := q.cfg.Clock.Now()
	for i := range said {
		said[i].ev.Gen, said[i].ev.Now = said[i].r.Gen, now
		reports[i] = cache.Report{ID: said[i].r.ID, Event: said[i].ev}
	}
	applied, err := q.cfg.Store.ApplyEach(reports)
	if err != nil {
		q.cfg.Log.Warn("record readiness together failed; recording each alone", "files", len(said), "err", err)
		for _, s := range said {
			q.report(s.r, s.ev, s.code)
		}
		return
	}
	for i, a := range applied {
		if a.Err == nil || a.Effects.Disposal != 0 {
			q.route(a.Record, a.Effects)
		}
		q.reported(said[i].r, said[i].ev, said[i].code, a.Record, a.Err)
	}
}

// report commits what IMS said of r's asset: ready, or failed (counted as code).
func (q *readiness) report(r cache.Record, ev cache.Event, code string) {
	ev.Gen, ev.Now = r.Gen, q.cfg.Clock.Now()
	rec, fx, err := q.cfg.Store.Apply(r.ID, ev)
	if err == nil || fx.Disposal != 0 {
		q.route(rec, fx)
	}
	q.reported(r, ev, code, rec, err)
}

// reported tells what became of r once ev, what IMS said of its asset, was committed (or not,
// err): its outcome, or a later check when the commit failed.
func (q *readiness) reported(r cache.Record, ev cache.Event, code string, rec cache.Record, err error) {
	switch {
	case err == nil && rec.State == cache.Ready:
		// The file's outcome in one line: how big, how long its upload and its preparation took.
		args := []any{"path", rec.Path, "media_id", rec.MediaID, "size", rec.Size, "tries", rec.Retries + 1}
		if !rec.Uploaded.IsZero() {
			if !rec.Asked.IsZero() && rec.Asked.Before(rec.Uploaded) {
				args = append(args, "upload_took", rec.Uploaded.Sub(rec.Asked).Round(time.Millisecond))
			}
			args = append(args, "ready_took", ev.Now.Sub(rec.Uploaded).Round(time.Millisecond))
			q.cfg.Observer.Ready(ev.Now.Sub(rec.Uploaded))
		}
		q.cfg.Log.Info("asset ready", args...)
		q.cfg.Observer.Outcome(rec.Path, true, "")
	case err == nil:
		q.cfg.Observer.Failed(code)
		q.cfg.Observer.Outcome(rec.Path, false, rec.Error)
		q.cfg.Log.Error("upload failed", "path", rec.Path, "media_id", rec.MediaID, "size", rec.Size, "tries", rec.Retries+1, "err", rec.Error)
	case errors.Is(err, cache.ErrSuperseded), errors.Is(err, cache.ErrNotFound), errors.Is(err, cache.ErrBadTransition):
		// The file changed since it was asked about: its new content has its own way.
	default:
		q.cfg.Log.Error("record readiness", "path", r.Path, "err", err)
		q.checkLater(r, false)
		return
	}
	q.mu.Lock()
	delete(q.waits, r.ID)
	delete(q.told, r.ID)
	q.mu.Unlock()
}

// waited schedules the next check of an asset that is not ready yet, or, past Ready.Timeout
// since its upload, returns the event that fails it.
func (q *readiness) waited(r cache.Record, status string) *cache.Event {
	if !r.Uploaded.IsZero() && q.cfg.Clock.Since(r.Uploaded) > q.cfg.Ready.Timeout {
		return &cache.Event{Kind: cache.UploadFailed, Reason: fmt.Sprintf(
			"IMS did not report asset %s Normal within --ready-timeout %v of its upload (it says %s); imsfs retry uploads it again as a new asset",
			r.MediaID, q.cfg.Ready.Timeout, status)}
	}
	q.checkLater(r, false)
	return nil
}

// checkLater schedules the next check of r: Ready.First after this one for the first readyFlat,
// then each wait twice the last up to Ready.Max (at once the longest, after a refusal that will
// not pass by itself).
func (q *readiness) checkLater(r cache.Record, longest bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.draining {
		return
	}
	q.waits[r.ID]++
	if longest {
		q.waits[r.ID] = readyFlat + 64 // past any doubling: Max from here on
	}
	q.checks.Add(r.ID, q.due(q.cfg.Clock.Now().Add(q.backoff().delay(q.waits[r.ID]))))
}

// readyFlat is how many checks of an asset come each Ready.First after the last, before the
// waits double: most assets are ready within seconds (the emulator's in one), and a file
// reported ready a whole doubled wait after it was is what the user waits on. A real asset
// that takes minutes is asked 8 more times, in calls shared with other assets.
const readyFlat = 7 // backoff.flat: the first readyFlat+1 waits are flat, 8 in all

// backoff is the shape of the waits between checks: the retry policy's, from Ready.First to
// Ready.Max after readyFlat waits of Ready.First, without its jitter: files uploaded together
// are best asked about together, in one call, and a check that finds an asset not ready is no
// failure to spread out.
func (q *readiness) backoff() backoff {
	return backoff{first: q.cfg.Ready.First, max: q.cfg.Ready.Max, flat: readyFlat}
}

// due is when a check wanted at t is made: t rounded up to a multiple of Ready.First, so that
// the checks of files uploaded within one step are asked in the same calls, and batches are
// full. A check comes no sooner for it, and at most a step later.
func (q *readiness) due(t time.Time) time.Time {
	step := int64(q.cfg.Ready.First)
	n := t.UnixNano()
	if r := n % step; r != 0 {
		n += step - r
	}
	return time.Unix(0, n)
}

// checkAgain schedules the next check of r after the wait it had: the last one told nothing.
func (q *readiness) checkAgain(r cache.Record) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.draining {
		return
	}
	q.checks.Add(r.ID, q.due(q.cfg.Clock.Now().Add(q.backoff().delay(q.waits[r.ID]))))
}

// once logs msg the first time a warning is given of record id's readiness in this mount: a
// wait that may last minutes is said once, not at every check.
func (q *readiness) once(id uint64, msg string, args ...any) {
	q.mu.Lock()
	told := q.told[id]
	q.told[id] = true
	q.mu.Unlock()
	if !told {
		q.cfg.Log.Warn(msg, args...)
	}
}
