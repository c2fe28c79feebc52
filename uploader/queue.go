// Package uploader turns closed files into IMS assets: it calls CreateUploadMedia, sends the
// bytes to OSS with the credentials it gets back, and polls GetMediaInfo until the asset is
// Normal, committing each step to the cache store before it acts on it.
//
// NB lock order: Queue.mu is never held while calling the store, IMS or OSS.
package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsfs/imsfs/cache"
)

// Config holds what a Queue needs. Zero values take the defaults in brackets.
type Config struct {
	Store       *cache.Store
	IMS         *IMS
	Log         *slog.Logger
	Workers     int           // files uploaded at once [4]
	PartSize    int64         // multipart part size; a file up to this size goes in one PUT [8 MiB]
	PartWorkers int           // parts of one file sent at once [4]
	AppID       string        // CreateUploadMedia AppId [IMS's default]
	MaxBackoff  time.Duration // longest wait between tries of a failing upload [5m]
	Names       *Admitter     // which names become assets [DefaultTempNames]
	OnOverwrite Policy        // what becomes of the asset of an overwritten file [keep]
	OnDelete    Policy        // what becomes of the asset of a deleted file [keep]
	// ConfigID names the settings uploads depend on (endpoint, region, key): when it differs
	// from the last mount's, failed uploads are tried again at Start [never].
	ConfigID string
}

const (
	defaultPartSize = 8 << 20
	minPartSize     = 100 << 10 // OSS refuses smaller parts (but the last)
)

// Queue schedules uploads and runs them on a pool of workers.
type Queue struct {
	cfg Config // read only

	mu      sync.Mutex
	timers  map[uint64]*time.Timer // protected by mu: uploads waiting for their due time
	ready   []uint64               // protected by mu: due, waiting for a worker, FIFO
	inReady map[uint64]bool        // protected by mu: what ready holds
	running map[uint64]*run        // protected by mu: uploads a worker is on
	closed  bool                   // protected by mu: draining: nothing new is scheduled
	wake    chan struct{}          // a token tells an idle worker that ready has grown
	quit    chan struct{}          // closed by Close: idle workers stop once ready is empty

	progress sync.Map // ID → *progress, while an upload is in flight

	ctx    context.Context // cancelled by Close: stops every worker
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type run struct {
	cancel context.CancelFunc
	again  bool // scheduled again while running: run once more when this run ends
}

type progress struct{ sent, total atomic.Int64 }

// New returns a queue; Start sets it going.
func New(cfg Config) *Queue {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = defaultPartSize
	}
	if cfg.PartSize < minPartSize {
		cfg.PartSize = minPartSize
	}
	if cfg.PartWorkers <= 0 {
		cfg.PartWorkers = 4
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Names == nil {
		cfg.Names, _ = NewAdmitter(DefaultTempNames)
	}
	if cfg.OnOverwrite == "" {
		cfg.OnOverwrite = Keep
	}
	if cfg.OnDelete == "" {
		cfg.OnDelete = Keep
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{
		cfg: cfg, ctx: ctx, cancel: cancel,
		timers: map[uint64]*time.Timer{}, inReady: map[uint64]bool{}, running: map[uint64]*run{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}),
	}
}

// Start hands every record with unfinished work to the queue (after a crash or an unmount with
// uploads pending) and starts the workers.
func (q *Queue) Start() error {
	recs, err := q.cfg.Store.Files()
	if err != nil {
		return fmt.Errorf("uploader: read pending uploads: %w", err)
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
		if r.State == cache.Failed && retryFailed && !r.Damaged {
			if _, err := q.retry(r.ID); err != nil {
				return fmt.Errorf("uploader: retry %s: %w", r.Path, err)
			}
			q.cfg.Log.Info("the configuration changed: trying a failed upload again", "path", r.Path)
			resumed++
			continue
		}
		if !r.State.Pending() && !r.MetaPending {
			continue
		}
		if r.State == cache.Writing {
			// Nothing can have the file open before the mount is up: its last writer is gone.
			queue := false
			if _, err := q.cfg.Store.Update(r.ID, func(r *cache.Record) error {
				queue = q.cfg.Names.Admit(r, time.Time{})
				return nil
			}); err != nil {
				return fmt.Errorf("uploader: requeue %s: %w", r.Path, err)
			}
			if !queue {
				continue
			}
		}
		q.Schedule(r.ID, r.Due)
		resumed++
	}
	if resumed > 0 {
		q.cfg.Log.Info("resuming unfinished uploads", "count", resumed)
	}
	for range q.cfg.Workers {
		q.wg.Add(1)
		go q.worker()
	}
	q.wg.Add(1)
	go q.disposer()
	return nil
}

// FileStatus is one file that is not ready, as `imsfs status` shows it.
type FileStatus struct {
	Path   string      `json:"path"`
	Status cache.State `json:"status"`
	Sent   int64       `json:"sent"`
	Total  int64       `json:"total"`
	Error  string      `json:"error,omitempty"`
}

// Status lists the files that are not ready, by path, with their progress.
func (q *Queue) Status() ([]FileStatus, error) {
	recs, err := q.cfg.Store.Files()
	if err != nil {
		return nil, err
	}
	var out []FileStatus
	for _, r := range recs {
		if r.State == cache.Ready && !r.MetaPending {
			continue
		}
		fs := FileStatus{Path: r.Path, Status: r.State, Total: r.Size, Error: r.Error}
		if sent, total, ok := q.Progress(r.ID); ok {
			fs.Sent, fs.Total = sent, total
		} else if r.State == cache.Uploaded || r.State == cache.Ready {
			fs.Sent = r.Size
		}
		out = append(out, fs)
	}
	return out, nil
}

// ErrNothingToRetry means a file has no upload to try again: it is ready, or being written.
var ErrNothingToRetry = errors.New("nothing to retry")

// Retry tries the upload of the file at path again now: a failed one from where it stopped,
// one waiting out a backoff at once. It returns the state the file is in afterwards.
func (q *Queue) Retry(path string) (cache.State, error) {
	rec, err := q.cfg.Store.Get(path)
	if err != nil {
		return "", err
	}
	return q.retry(rec.ID)
}

func (q *Queue) retry(id uint64) (cache.State, error) {
	queue := false
	rec, err := q.cfg.Store.Update(id, func(r *cache.Record) error {
		switch {
		case r.Damaged:
			return fmt.Errorf("%w: a write to it failed, so its bytes are not what was meant; write it again", ErrNothingToRetry)
		case r.State == cache.Failed:
			if r.MediaID != "" || r.Upload != nil {
				// Where it failed may be the asset itself (PrepareFail): start clean.
				r.NewGeneration()
			}
			queue = q.cfg.Names.Admit(r, time.Time{})
		case r.State.Pending() && r.State != cache.Writing:
			r.Due, r.Attempts = time.Time{}, 0
			queue = true
		default:
			return ErrNothingToRetry
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if queue {
		q.Schedule(id, time.Time{})
	}
	return rec.State, nil
}

// Schedule makes record id due at time due (now if zero or past). A later Schedule of the same
// id replaces the earlier one, which is how a reopen inside the settle delay re-arms it.
func (q *Queue) Schedule(id uint64, due time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if t := q.timers[id]; t != nil {
		t.Stop()
		delete(q.timers, id)
	}
	if d := time.Until(due); d > 0 {
		q.timers[id] = time.AfterFunc(d, func() { q.makeReady(id) })
		return
	}
	q._makeReady(id)
}

// Cancel withdraws record id: a waiting upload is dropped, a running one is stopped. The caller
// has already changed the record (reopened, renamed, deleted), so the stopped run finds it changed.
func (q *Queue) Cancel(id uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if t := q.timers[id]; t != nil {
		t.Stop()
		delete(q.timers, id)
	}
	if q.inReady[id] {
		delete(q.inReady, id)
		for i, r := range q.ready {
			if r == id {
				q.ready = append(q.ready[:i], q.ready[i+1:]...)
				break
			}
		}
	}
	if r := q.running[id]; r != nil {
		r.again = false
		r.cancel()
	}
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

// Close drains the queue: nothing new is scheduled, files waiting out their settle delay start
// at once (no writer can change them any more), and running uploads go on until they end or
// ctx is done; then what still runs is cancelled. Unfinished uploads stay in the store for the
// next mount, which resumes them; Close returns how many there are.
func (q *Queue) Close(ctx context.Context) (unfinished int) {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		for id, t := range q.timers {
			t.Stop()
			delete(q.timers, id)
			q._makeReady(id)
		}
		close(q.quit)
	}
	q.mu.Unlock()

	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	q.cancel()
	<-done
	if recs, err := q.cfg.Store.Files(); err == nil {
		for _, r := range recs {
			if r.State.Pending() {
				unfinished++
			}
		}
	}
	return unfinished
}

func (q *Queue) draining() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

func (q *Queue) makeReady(id uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.timers, id)
	if !q.closed {
		q._makeReady(id)
	}
}

// _makeReady queues id for a worker. Call with q.mu held.
func (q *Queue) _makeReady(id uint64) {
	if r := q.running[id]; r != nil {
		r.again = true
		return
	}
	if q.inReady[id] {
		return
	}
	q.inReady[id] = true
	q.ready = append(q.ready, id)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next blocks until an upload is ready or the queue is closed, and marks it running.
func (q *Queue) next() (uint64, context.Context, bool) {
	for {
		q.mu.Lock()
		if q.closed && len(q.ready) == 0 || q.ctx.Err() != nil {
			q.mu.Unlock()
			return 0, nil, false
		}
		if len(q.ready) > 0 {
			id := q.ready[0]
			q.ready = q.ready[1:]
			delete(q.inReady, id)
			ctx, cancel := context.WithCancel(q.ctx)
			q.running[id] = &run{cancel: cancel}
			if len(q.ready) > 0 {
				select { // pass the token on: there is more for another worker
				case q.wake <- struct{}{}:
				default:
				}
			}
			q.mu.Unlock()
			return id, ctx, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-q.quit:
		}
	}
}

func (q *Queue) worker() {
	defer q.wg.Done()
	for {
		id, ctx, ok := q.next()
		if !ok {
			return
		}
		q.process(ctx, id)
		q.mu.Lock()
		r := q.running[id]
		delete(q.running, id)
		r.cancel()
		if r.again && !q.closed {
			q._makeReady(id)
		}
		q.mu.Unlock()
	}
}

// process drives record id as far as it can go now, and schedules a retry if a try failed for
// a reason that may pass.
func (q *Queue) process(ctx context.Context, id uint64) {
	rec, err := q.cfg.Store.GetID(id)
	if err != nil {
		if !errors.Is(err, cache.ErrNotFound) {
			q.cfg.Log.Error("upload: read record", "id", id, "err", err)
		}
		return
	}
	if !rec.State.Pending() && !rec.MetaPending || rec.State == cache.Writing {
		return
	}
	if d := time.Until(rec.Due); d > 0 && !(rec.State == cache.Queued && q.draining()) {
		q.Schedule(id, rec.Due) // dropped while draining: a backoff outlasts the drain
		return
	}
	j := &job{q: q, rec: rec, gen: rec.Gen, log: q.cfg.Log.With("path", rec.Path, "id", id)}
	err = j.run(ctx)
	q.progress.Delete(id)
	if err == nil || errors.Is(err, errSuperseded) || errors.Is(err, cache.ErrNotFound) {
		return
	}
	if ctx.Err() != nil {
		// Cancelled: by a change to the file (its new run will follow) or by Close (the
		// record stays pending for the next mount).
		return
	}
	j.failed(err)
}
