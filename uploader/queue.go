package uploader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsfs/imsfs/cache"
)

// Queue schedules uploads and runs them on a pool of workers; readiness checks and disposals
// have their own schedules and one goroutine each, so that neither holds a worker.
type Queue struct {
	cfg Config // read only

	uploads   *schedule // record IDs due for a worker
	checks    *schedule // record IDs (uploaded) due for a readiness check
	disposals *schedule // disposal Seqs due

	mu       sync.Mutex
	running  map[uint64]*run          // protected by mu: records a worker is on
	creds    map[uint64]*liveCreds    // protected by mu: upload credentials by record, in memory only
	waiting  map[uint64][]uint64      // protected by mu: record → disposals waiting for it to settle
	interval map[uint64]time.Duration // protected by mu: the current wait between readiness checks of a record
	told     map[uint64]bool          // protected by mu: records whose readiness wait was logged
	early    map[uint64]*early        // protected by mu: uploads under way while their file is written
	large    int                      // protected by mu: files over one PUT a worker is on (at most Workers)
	parked   []uint64                 // protected by mu: files over one PUT due, waiting for one of those to end
	draining bool                     // protected by mu: Close was called

	progress sync.Map // ID → *progress, while an upload is in flight

	ctx    context.Context // cancelled by Close once the drain is over: stops everything
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type run struct {
	cancel  context.CancelFunc
	again   bool      // scheduled while running: scheduled when this run ends
	againAt time.Time // when
}

type progress struct{ sent, total atomic.Int64 }

// New returns a queue; Recover and Run set it going.
func New(cfg Config) *Queue {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{
		cfg: cfg, ctx: ctx, cancel: cancel,
		uploads: newSchedule(cfg.Clock), checks: newSchedule(cfg.Clock), disposals: newSchedule(cfg.Clock),
		running: map[uint64]*run{}, creds: map[uint64]*liveCreds{}, waiting: map[uint64][]uint64{},
		interval: map[uint64]time.Duration{}, told: map[uint64]bool{}, early: map[uint64]*early{},
	}
}

// Recover hands every record with unfinished work, and every pending disposal, to the schedules
// (after a crash, or an unmount with uploads pending). Call it before the mount serves anyone:
// a file still "writing" is taken as one whose writer is gone, which is true only then.
func (q *Queue) Recover() error {
	recs, err := q.cfg.Store.Unfinished()
	if err != nil {
		return fmt.Errorf("uploader: read unfinished uploads: %w", err)
	}
	retryFailed := false
	if q.cfg.ConfigID != "" {
		last, err := q.cfg.Store.Meta("config")
		if err != nil {
			return fmt.Errorf("uploader: %w", err)
		}
		retryFailed = last != "" && last != q.cfg.ConfigID
		if err := q.cfg.Store.SetMeta("config", q.cfg.ConfigID); err != nil {
			return fmt.Errorf("uploader: %w", err)
		}
	}
	resumed := 0
	for _, r := range recs {
		var ev *cache.Event
		switch {
		case r.State == cache.Failed && retryFailed && !r.Damaged:
			q.cfg.Log.Info("the configuration changed: trying a failed upload again", "path", r.Path)
			ev = &cache.Event{Kind: cache.RetryAsked}
		case r.State == cache.Writing:
			// The spool is the truth: a crash mid-write may have left the record's size older.
			size := r.Size
			if st, err := os.Stat(q.cfg.Store.SpoolPath(r.ID)); err == nil {
				size = st.Size()
			}
			ev = &cache.Event{Kind: cache.Closed, Size: size, Mode: r.Mode, Mtime: r.Mtime}
		case r.State == cache.Failed || r.State.Kept():
			continue
		}
		if ev != nil {
			rec, fx, err := q.cfg.Store.Apply(r.ID, *ev)
			if err != nil {
				return fmt.Errorf("uploader: resume %s: %w", r.Path, err)
			}
			q.do(rec, fx)
		} else {
			q.resume(r)
		}
		resumed++
	}
	if resumed > 0 {
		q.cfg.Log.Info("resuming unfinished uploads", "count", resumed)
	}
	ds, err := q.cfg.Store.Disposals()
	if err != nil {
		return fmt.Errorf("uploader: read disposals: %w", err)
	}
	for _, d := range ds {
		q.disposals.Add(d.Seq, d.Due)
	}
	return nil
}

// resume schedules a record where it stands.
func (q *Queue) resume(r cache.Record) {
	if r.State == cache.Uploaded {
		q.checks.Add(r.ID, time.Time{})
	}
	if r.State != cache.Uploaded || r.MetaPending {
		q.uploads.Add(r.ID, r.Due)
	}
}

// Run starts the workers, the readiness checker and the disposer.
func (q *Queue) Run() {
	for range q.cfg.SmallWorkers {
		q.wg.Add(1)
		go q.worker()
	}
	q.wg.Add(2)
	go q.checker()
	go q.disposer()
}

// Apply commits event ev on record id and carries out what it asks of the queue: this is how
// the file system reports what happens to a file.
func (q *Queue) Apply(id uint64, ev cache.Event) (cache.Record, error) {
	rec, fx, err := q.cfg.Store.Apply(id, ev)
	if err == nil || fx.Disposal != 0 {
		q.do(rec, fx)
	}
	return rec, err
}

// Rename moves a file or folder in the store (see cache.Store.Rename) and carries out what each
// change asks of the queue.
func (q *Queue) Rename(from, to string, follow func(cache.Record) cache.Event) (cache.Renaming, error) {
	res, err := q.cfg.Store.Rename(from, to, follow)
	if err != nil {
		return res, err
	}
	if res.Replaced != nil {
		q.do(res.Replaced.Record, res.Replaced.Effects)
	}
	for _, c := range res.Moved {
		q.do(c.Record, c.Effects)
	}
	return res, nil
}

// do carries out the effects of a committed change of rec.
func (q *Queue) do(rec cache.Record, fx cache.Effects) {
	id := rec.ID
	q.mu.Lock()
	defer q.mu.Unlock()
	if fx.Cancel {
		q.uploads.Remove(id)
		q.parked = slices.DeleteFunc(q.parked, func(p uint64) bool { return p == id })
		q.checks.Remove(id)
		delete(q.interval, id)
		if r := q.running[id]; r != nil {
			r.again = false
			r.cancel()
		}
		if c := q.creds[id]; c != nil && (fx.Removed || c.gen != rec.Gen) {
			delete(q.creds, id)
		}
	}
	switch {
	case fx.Removed, rec.State != cache.Writing && rec.State != cache.Queued && rec.State != cache.Creating && rec.State != cache.Uploading:
		// The upload is over (or the file gone): its credentials are not kept a moment longer.
		delete(q.creds, id)
	}
	if fx.Schedule && !q.draining {
		switch {
		case rec.State == cache.Uploaded && !rec.MetaPending:
			delete(q.interval, id)
			q.checks.Add(id, fx.Due.Add(q.cfg.Ready.First))
		case q.running[id] != nil:
			r := q.running[id]
			r.again, r.againAt = true, fx.Due
		default:
			q.parked = slices.DeleteFunc(q.parked, func(p uint64) bool { return p == id }) // due anew
			q.uploads.Add(id, fx.Due)
		}
	}
	if e := q.early[id]; e != nil && fx.Schedule && rec.Early && rec.State == cache.Queued {
		// The last close of a file uploaded while written: its last parts need no worker.
		e.finish(rec.Size)
	}
	if fx.Disposal != 0 {
		q.disposals.Add(fx.Disposal, time.Time{})
	}
	if fx.Settled {
		for _, seq := range q.waiting[id] {
			q.disposals.Add(seq, time.Time{})
		}
		delete(q.waiting, id)
	}
}

// Retry tries the upload of the file at path again now: a failed one from the start, one
// waiting out a backoff at once. It returns the state the file is in afterwards.
func (q *Queue) Retry(path string) (cache.State, error) {
	rec, err := q.cfg.Store.Get(path)
	if err != nil {
		return "", err
	}
	rec, err = q.Apply(rec.ID, cache.Event{Kind: cache.RetryAsked, Due: q.cfg.Clock.Now()})
	return rec.State, err
}

// Progress returns the bytes sent and the total of an upload in flight.
func (q *Queue) Progress(id uint64) (sent, total int64, ok bool) {
	v, ok := q.progress.Load(id)
	if !ok {
		return 0, 0, false
	}
	p := v.(*progress)
	return p.sent.Load(), p.total.Load(), true
}

// FileStatus is one file that is not ready, or an asset imsfs is to delete, as `imsfs status`
// shows it.
type FileStatus struct {
	Path    string `json:"path"`
	Status  string `json:"status"` // a file's state, or "deleting" for an asset whose deletion failed
	Sent    int64  `json:"sent"`
	Total   int64  `json:"total"`
	Error   string `json:"error,omitempty"`
	MediaID string `json:"media_id,omitempty"`
}

// Status lists the files that are not ready, by ID, with their progress, and then the assets
// whose deletion failed and is being tried again. Ready files are not read.
func (q *Queue) Status() ([]FileStatus, error) {
	recs, err := q.cfg.Store.Unfinished()
	if err != nil {
		return nil, err
	}
	var out []FileStatus
	for _, r := range recs {
		if r.State == cache.Local {
			continue // .DS_Store and its kind are nothing to wait for
		}
		fs := FileStatus{Path: r.Path, Status: string(r.State), Total: r.Size, Error: r.Error, MediaID: r.MediaID}
		if sent, total, ok := q.Progress(r.ID); ok {
			fs.Sent, fs.Total = sent, total
		} else if r.State.Finished() {
			fs.Sent = r.Size
		}
		out = append(out, fs)
	}
	ds, err := q.cfg.Store.Disposals()
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Attempts > 0 {
			out = append(out, FileStatus{Path: d.Path, Status: "deleting", MediaID: d.MediaID,
				Error: fmt.Sprintf("asset %s (%s) not deleted yet, try %d: %s", d.MediaID, d.Why, d.Attempts, d.Error)})
		}
	}
	return out, nil
}

// Close drains the queue: nothing new is scheduled, files waiting out their settle delay start
// at once (no writer can change them any more), and running uploads go on until they end or ctx
// is done; then what still runs is cancelled. Unfinished uploads stay in the store for the next
// mount, which resumes them; Close returns how many there are (files whose bytes are not all in
// the cloud: readiness is only waited for).
func (q *Queue) Close(ctx context.Context) (unfinished int) {
	q.mu.Lock()
	q.draining = true
	q.mu.Unlock()
	q.uploads.DueAll()
	q.uploads.Close()
	q.checks.Close()
	q.disposals.Close()

	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	q.cancel()
	<-done
	if recs, err := q.cfg.Store.Unfinished(); err == nil {
		for _, r := range recs {
			if r.State.Pending() && !r.State.Finished() {
				unfinished++
			}
		}
	}
	return unfinished
}

func (q *Queue) isDraining() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.draining
}

func (q *Queue) worker() {
	defer q.wg.Done()
	for {
		id, ok := q.uploads.Next(q.ctx)
		if !ok {
			return
		}
		q.mu.Lock()
		if q.running[id] != nil { // cannot be: a key is scheduled once and taken once
			q.mu.Unlock()
			continue
		}
		ctx, cancel := context.WithCancel(q.ctx)
		r := &run{cancel: cancel}
		q.running[id] = r
		q.mu.Unlock()

		q.process(ctx, id)

		q.mu.Lock()
		delete(q.running, id)
		cancel()
		if r.again && !q.draining {
			q.uploads.Add(id, r.againAt)
		}
		q.mu.Unlock()
	}
}

// takeLarge takes one of the Workers slots for a file over one PUT, or parks the file until
// one ends: a worker does not wait for a slot, so that small files go on meanwhile.
func (q *Queue) takeLarge(id uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.large < q.cfg.Workers {
		q.large++
		return true
	}
	if !slices.Contains(q.parked, id) {
		q.parked = append(q.parked, id)
	}
	return false
}

// endLarge gives back a slot taken by takeLarge and makes the first parked file due, during a
// drain too: it would have been uploaded by it had a worker been free. The worker ending here
// is still at the schedule to take it.
func (q *Queue) endLarge() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.large--
	if len(q.parked) > 0 {
		id := q.parked[0]
		q.parked = q.parked[1:]
		q.uploads.Add(id, q.cfg.Clock.Now())
	}
}

// process takes record id as far as it can go now without waiting, and reports a failed try.
func (q *Queue) process(ctx context.Context, id uint64) {
	rec, err := q.cfg.Store.GetID(id)
	if err != nil {
		if !errors.Is(err, cache.ErrNotFound) {
			q.cfg.Log.Error("upload: read record", "id", id, "err", err)
		}
		return
	}
	if due := rec.Due; due.After(q.cfg.Clock.Now()) {
		// Taken early by a drain: a settle delay ends now, a backoff outlasts the drain.
		if !(q.isDraining() && rec.State == cache.Queued && rec.Attempts == 0) {
			return
		}
	}
	if rec.Early || !q.cfg.onePut(rec.Size) {
		if !q.takeLarge(id) {
			return
		}
		defer q.endLarge()
	}
	j := &job{q: q, rec: rec, gen: rec.Gen, log: q.cfg.Log.With("path", rec.Path, "id", id)}
	err = j.run(ctx)
	q.progress.Delete(id)
	switch {
	case err == nil, errors.Is(err, cache.ErrSuperseded), errors.Is(err, cache.ErrNotFound):
	case ctx.Err() != nil:
		// Cancelled: by a change to the file (its new run will follow) or by Close (the
		// record stays pending for the next mount).
	default:
		j.failed(err)
	}
}
