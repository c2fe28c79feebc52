package uploader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsfs/imsfs/cache"
)

// Queue uploads what the file system reports, in parts that each own their state and lock:
// the pool of workers and its slots, the readiness checker, the disposer, the sender of files
// uploaded while written, and the cache of upload credentials. The queue itself only routes:
// each committed change of a record asks for effects (cache.Effects), and route sends each to
// the part it concerns, as plan says.
type Queue struct {
	cfg Config // read only

	pool     *pool
	ready    *readiness
	disposer *disposer
	sender   *sender
	creds    *credCache
	bw       *bandwidth  // every upload byte goes through it
	fg       *foreground // when a writer was last seen, for uploads to yield to

	progress sync.Map // ID → *progress, while an upload is in flight

	ctx    context.Context // cancelled by Close once the drain is over: stops everything
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type progress struct{ sent, total atomic.Int64 }

// New returns a queue; Recover and Run set it going.
func New(cfg Config) *Queue {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{cfg: cfg, ctx: ctx, cancel: cancel, pool: newPool(cfg.Clock, cfg.Workers), creds: newCredCache(),
		bw: newBandwidth(cfg.Bandwidth, cfg.Clock), fg: newForeground(cfg.Clock.Now())}
	q.ready = newReadiness(&q.cfg, q.route)
	q.disposer = newDisposer(&q.cfg, q.pool.isRunning)
	q.sender = newSender(cfg.PartSize, func(id uint64, e *early) {
		q.wg.Add(1)
		go q.uploadEarly(id, e)
	})
	return q
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
			q.route(rec, fx)
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
		if d.Waiting {
			// Woken when its record settles, as before the restart; looked at now as well,
			// since the record may have settled meanwhile.
			q.disposer.waitFor(d.After, d.Seq)
			q.disposer.add(d.Seq, time.Time{})
			continue
		}
		q.disposer.add(d.Seq, d.Due)
	}
	return nil
}

// resume schedules a record where it stands.
func (q *Queue) resume(r cache.Record) {
	if r.State == cache.Uploaded {
		q.ready.resume(r.ID)
	}
	if r.State != cache.Uploaded || r.MetaPending {
		q.pool.resume(r.ID, r.Due)
	}
}

// Run starts the workers, the readiness checker and the disposer.
func (q *Queue) Run() {
	q.wg.Add(q.cfg.SmallWorkers + q.cfg.Ready.Calls + 1)
	for range q.cfg.SmallWorkers {
		go func() { defer q.wg.Done(); q.pool.work(q.ctx, q.process) }()
	}
	for range q.cfg.Ready.Calls {
		go func() { defer q.wg.Done(); q.ready.run(q.ctx) }()
	}
	go func() { defer q.wg.Done(); q.disposer.run(q.ctx) }()
}

// Apply commits event ev on record id and carries out what it asks of the queue: this is how
// the file system reports what happens to a file.
func (q *Queue) Apply(id uint64, ev cache.Event) (cache.Record, error) {
	if isWriters(ev.Kind) {
		q.fg.touch(q.cfg.Clock.Now())
	}
	rec, fx, err := q.cfg.Store.Apply(id, ev)
	if err == nil || fx.Disposal != 0 {
		q.route(rec, fx)
	}
	return rec, err
}

// Rename moves a file or folder in the store (see cache.Store.Rename) and carries out what each
// change asks of the queue.
func (q *Queue) Rename(from, to string, follow func(cache.Record) cache.Event) (cache.Renaming, error) {
	q.fg.touch(q.cfg.Clock.Now())
	res, err := q.cfg.Store.Rename(from, to, follow)
	if err != nil {
		return res, err
	}
	if res.Replaced != nil {
		q.route(res.Replaced.Record, res.Replaced.Effects)
	}
	for _, c := range res.Moved {
		q.route(c.Record, c.Effects)
	}
	return res, nil
}

// route carries out the effects of a committed change of rec, by the parts plan names.
func (q *Queue) route(rec cache.Record, fx cache.Effects) {
	id, p := rec.ID, plan(rec, fx)
	if p.cancel {
		q.pool.cancel(id)
		q.ready.forget(id)
	}
	switch {
	case p.dropCreds:
		q.creds.drop(id)
	case p.cancel:
		q.creds.dropOther(id, rec.Gen)
	}
	switch {
	case p.check:
		q.ready.first(id, fx.Due.Add(q.cfg.Ready.First))
	case p.upload:
		q.pool.schedule(id, fx.Due)
	}
	if p.lastClose {
		q.sender.closed(id, rec.Size)
	}
	if fx.Disposal != 0 {
		q.disposer.add(fx.Disposal, time.Time{})
	}
	if fx.Settled {
		q.disposer.settled(id)
	}
}

// routing is what the parts of the queue are asked to do after one committed change.
type routing struct {
	cancel    bool // the pool drops the record's run and schedule, the checker its check
	dropCreds bool // the upload is over, or the file gone: its credentials leave memory
	check     bool // the checker asks about the asset from the first wait
	upload    bool // the pool runs the record at Due
	lastClose bool // the sender of a file uploaded while written sends its last parts
}

// plan says what a committed change asks of each part of the queue: the in-memory half of the
// life-cycle, beside the table that makes the change (its matrix test covers both).
func plan(rec cache.Record, fx cache.Effects) routing {
	under := rec.State == cache.Writing || rec.State == cache.Queued || rec.State == cache.Creating || rec.State == cache.Uploading
	return routing{
		cancel:    fx.Cancel,
		dropCreds: fx.Removed || !under,
		check:     fx.Schedule && rec.State == cache.Uploaded && !rec.MetaPending,
		upload:    fx.Schedule && !(rec.State == cache.Uploaded && !rec.MetaPending),
		lastClose: fx.Schedule && rec.Early && rec.State == cache.Queued,
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

// Bandwidth returns the upload limit (--bwlimit) and the rate it gives now, in bytes a second
// (0: no limit).
func (q *Queue) Bandwidth() (Timetable, int64) { return q.cfg.Bandwidth, q.bw.Rate() }

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
	q.sender.drain()
	q.pool.drain()
	q.ready.drain()
	q.disposer.drain()

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

// dueNow reads record id and reports whether it is to be uploaded now.
func (q *Queue) dueNow(id uint64) (cache.Record, bool) {
	rec, err := q.cfg.Store.GetID(id)
	if err != nil {
		if !errors.Is(err, cache.ErrNotFound) {
			q.cfg.Log.Error("upload: read record", "id", id, "err", err)
		}
		return rec, false
	}
	if rec.Due.After(q.cfg.Clock.Now()) {
		// Taken early by a drain: a settle delay ends now, a backoff outlasts the drain.
		return rec, q.pool.isDraining() && rec.State == cache.Queued && rec.Attempts == 0
	}
	return rec, true
}

// process takes record id as far as it can go now without waiting, and reports a failed try.
func (q *Queue) process(ctx context.Context, id uint64) {
	rec, ok := q.dueNow(id)
	if !ok {
		return
	}
	if q.yield(ctx, rec.Due) {
		if ctx.Err() != nil {
			return // cancelled while it waited: by a change (its new run follows) or by Close
		}
		if rec, ok = q.dueNow(id); !ok { // it may have changed while it waited
			return
		}
	}
	if rec.Early || !q.cfg.onePut(rec.Size) {
		if !q.pool.takeLarge(id) {
			return
		}
		defer q.pool.endLarge()
	}
	j := &job{q: q, cfg: &q.cfg, rec: rec, gen: rec.Gen, log: q.cfg.Log.With("path", rec.Path, "id", id)}
	err := j.run(ctx)
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
