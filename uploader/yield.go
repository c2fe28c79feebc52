package uploader

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/imsfs/imsfs/cache"
)

// Yield is how uploads give way to the writers of the mount: an upload that comes due while
// files are being created, written, closed or renamed waits for a quiet moment of the whole
// mount, so that a copy runs at the speed it would without uploads, and its files go up once
// it is over. Hold caps the wait: a file due for longer than that goes whatever the mount is
// doing, so that a writer that never stops cannot starve the uploads.
type Yield struct {
	Quiet time.Duration // how long the mount is to be without a writer's event [250ms]; < 0: uploads never wait
	Hold  time.Duration // the longest a due file waits for that [10s]
}

// DefaultYield is the Yield of a zero Config.
var DefaultYield = Yield{Quiet: 250 * time.Millisecond, Hold: 10 * time.Second}

// foreground is when the mount last saw a writer's event: how long after start, on the queue's
// clock (monotonic: a clock set back does not make the mount look busy).
type foreground struct {
	start time.Time
	last  atomic.Int64 // nanoseconds after start; never: none yet
}

const never = math.MinInt64 / 2

func newForeground(now time.Time) *foreground {
	f := &foreground{start: now}
	f.last.Store(never)
	return f
}

// touch notes a writer's event now.
func (f *foreground) touch(now time.Time) { f.last.Store(int64(now.Sub(f.start))) }

// quiet returns how long the writers have been quiet at now.
func (f *foreground) quiet(now time.Time) time.Duration {
	return now.Sub(f.start) - time.Duration(f.last.Load())
}

// isWriters reports whether an event of kind k is a writer's doing: the file system reports
// them; the uploader's own steps are not.
func isWriters(k cache.EventKind) bool {
	switch k {
	case cache.Wrote, cache.Closed, cache.Renamed, cache.Unlinked, cache.Replaced, cache.Held, cache.MetaSet:
		return true
	}
	return false
}

// yield waits, before a record due since due is uploaded, until the mount has been without a
// writer's event for Yield.Quiet, or the record has been due for Yield.Hold, or ctx is done. A
// drain does not wait: no writer is left. It reports whether it waited (the record may have
// changed meanwhile).
func (q *Queue) yield(ctx context.Context, due time.Time) (waited bool) {
	y := q.cfg.Yield
	if y.Quiet <= 0 || q.pool.isDraining() {
		return false
	}
	clock := q.cfg.Clock
	until := due
	if until.IsZero() || until.After(clock.Now()) {
		until = clock.Now()
	}
	until = until.Add(y.Hold)
	for {
		now := clock.Now()
		quiet := q.fg.quiet(now)
		if quiet >= y.Quiet || !now.Before(until) {
			if waited {
				q.cfg.Observer.Yielded()
			}
			return waited
		}
		waited = true
		select {
		case <-ctx.Done():
			return waited
		case <-clock.After(min(y.Quiet-quiet, until.Sub(now))):
		}
	}
}
