package uploader

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// pool is the queue's workers: the schedule of records due for one, the runs under way, and the
// slots of files over one PUT. A worker never waits for a slot: a large file that finds them
// taken is parked, without a worker, until one ends, so that small files go on meanwhile.
type pool struct {
	clock clockwork.Clock // read only
	slots int             // read only: files over one PUT a worker may be on at once

	uploads *schedule // record IDs due for a worker

	mu       sync.Mutex
	running  map[uint64]*run // protected by mu: records a worker is on
	large    int             // protected by mu: files over one PUT a worker is on (at most slots)
	parked   []uint64        // protected by mu: files over one PUT due, waiting for a slot, oldest first
	draining bool            // protected by mu: nothing new is scheduled
}

type run struct {
	cancel  context.CancelFunc
	again   bool      // scheduled while running: scheduled when this run ends
	againAt time.Time // when
}

func newPool(clock clockwork.Clock, slots int) *pool {
	return &pool{clock: clock, slots: slots, uploads: newSchedule(clock), running: map[uint64]*run{}}
}

// schedule makes record id due at at: after the run under way, if one is; unparked, since it is
// due anew. Nothing is scheduled once the pool drains.
func (p *pool) schedule(id uint64, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return
	}
	if r := p.running[id]; r != nil {
		r.again, r.againAt = true, at
		return
	}
	p._unpark(id)
	p.uploads.Add(id, at)
}

// resume schedules record id at at, as found in the store at mount.
func (p *pool) resume(id uint64, at time.Time) { p.uploads.Add(id, at) }

// cancel takes record id out of the pool: unscheduled, unparked, and its run (if any) cancelled
// and not run again.
func (p *pool) cancel(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.uploads.Remove(id)
	p._unpark(id)
	if r := p.running[id]; r != nil {
		r.again = false
		r.cancel()
	}
}

func (p *pool) _unpark(id uint64) {
	p.parked = slices.DeleteFunc(p.parked, func(k uint64) bool { return k == id })
}

// isRunning reports whether a worker is on record id.
func (p *pool) isRunning(id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running[id] != nil
}

// isDraining reports whether Close began.
func (p *pool) isDraining() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.draining
}

// work runs one worker: it takes the records as they come due and runs process on each, until
// ctx is done or the pool is drained.
func (p *pool) work(ctx context.Context, process func(context.Context, uint64)) {
	for {
		id, ok := p.uploads.Next(ctx)
		if !ok || ctx.Err() != nil {
			return // Next hands out what is due even once ctx is done: a drain past its time takes no more
		}
		p.mu.Lock()
		if p.running[id] != nil { // cannot be: a key is scheduled once and taken once
			p.mu.Unlock()
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &run{cancel: cancel}
		p.running[id] = r
		p.mu.Unlock()

		process(rctx, id)

		p.mu.Lock()
		delete(p.running, id)
		cancel()
		if r.again && !p.draining {
			p._unpark(id) // parked by this run, due anew: its next run parks it again if need be
			p.uploads.Add(id, r.againAt)
		}
		p.mu.Unlock()
	}
}

// takeLarge takes a slot for a file over one PUT, or parks the file until one ends.
func (p *pool) takeLarge(id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.large < p.slots {
		p.large++
		return true
	}
	if !slices.Contains(p.parked, id) {
		p.parked = append(p.parked, id)
	}
	return false
}

// endLarge gives back a slot taken by takeLarge and makes the first parked file due, during a
// drain too: it would have been uploaded by it had a worker been free. The worker ending here
// is still at the schedule to take it.
func (p *pool) endLarge() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.large--
	if len(p.parked) > 0 {
		id := p.parked[0]
		p.parked = p.parked[1:]
		p.uploads.Add(id, p.clock.Now())
	}
}

// drain stops scheduling, makes every file waiting out its delay due now (no writer can change
// it any more) and lets the workers end once nothing is due.
func (p *pool) drain() {
	p.mu.Lock()
	p.draining = true
	p.mu.Unlock()
	p.uploads.DueAll()
	p.uploads.Close()
}

// depth is how many files wait for a worker (or, over one PUT, for a slot) and how many are
// being uploaded now.
func (p *pool) depth() (queued, running int) {
	p.mu.Lock()
	running, parked := len(p.running), len(p.parked)
	p.mu.Unlock()
	return p.uploads.Len() + parked, running
}

// check returns what breaks the pool's invariants, for tests: slots within bounds, a parked
// file parked once and not also scheduled, a running one not scheduled unless as its next run.
func (p *pool) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.large < 0 || p.large > p.slots {
		return fmt.Errorf("pool: %d large files under way, %d slots", p.large, p.slots)
	}
	seen := map[uint64]bool{}
	for _, id := range p.parked {
		if seen[id] {
			return fmt.Errorf("pool: record %d parked twice", id)
		}
		seen[id] = true
		if p.uploads.Has(id) {
			return fmt.Errorf("pool: record %d parked and scheduled", id)
		}
	}
	return nil
}
