package uploader

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// schedule holds keys until they are due: a heap ordered by due time (then by arrival), one
// timer for the earliest, and a FIFO of the keys that are due, for Next and TakeDue. A key is
// in the schedule at most once; adding it again moves it.
type schedule struct {
	clock clockwork.Clock // read only

	mu      sync.Mutex
	items   itemHeap         // protected by mu: keys not yet due
	where   map[uint64]*item // protected by mu: the heap's items by key
	due     []uint64         // protected by mu: keys that are due, oldest first
	isDue   map[uint64]bool  // protected by mu: what due holds
	timer   clockwork.Timer  // protected by mu: fires when the earliest item is due
	timerAt time.Time        // protected by mu: when it fires (zero: not armed)
	seq     uint64           // protected by mu: arrival order
	closed  bool             // protected by mu: Next returns once due is empty

	signal chan struct{} // a token: due has grown, or the schedule closed
}

type item struct {
	key uint64
	at  time.Time
	seq uint64
	pos int
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].pos = i; h[j].pos = j }
func (h *itemHeap) Push(x any)   { it := x.(*item); it.pos = len(*h); *h = append(*h, it) }
func (h *itemHeap) Pop() any     { old := *h; it := old[len(old)-1]; *h = old[:len(old)-1]; return it }
func (h itemHeap) peek() *item   { return h[0] }
func newSchedule(c clockwork.Clock) *schedule {
	return &schedule{clock: c, where: map[uint64]*item{}, isDue: map[uint64]bool{}, signal: make(chan struct{}, 1)}
}

// Add makes key due at at (now if at is zero or past), moving it if it is there already.
func (s *schedule) Add(key uint64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s._remove(key)
	if !at.After(s.clock.Now()) {
		s._makeDue(key)
		return
	}
	s.seq++
	it := &item{key: key, at: at, seq: s.seq}
	heap.Push(&s.items, it)
	s.where[key] = it
	s._arm()
}

// Remove takes key out of the schedule and reports whether it was there.
func (s *schedule) Remove(key uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s._remove(key)
}

// Has reports whether key is in the schedule.
func (s *schedule) Has(key uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.where[key] != nil || s.isDue[key]
}

// Len returns how many keys the schedule holds.
func (s *schedule) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items) + len(s.due)
}

// _remove takes key out. Call with s.mu held.
func (s *schedule) _remove(key uint64) bool {
	if it := s.where[key]; it != nil {
		heap.Remove(&s.items, it.pos)
		delete(s.where, key)
		s._arm()
		return true
	}
	if s.isDue[key] {
		delete(s.isDue, key)
		for i, k := range s.due {
			if k == key {
				s.due = append(s.due[:i], s.due[i+1:]...)
				break
			}
		}
		return true
	}
	return false
}

// _makeDue appends key to the due FIFO and passes a token. Call with s.mu held.
func (s *schedule) _makeDue(key uint64) {
	if s.isDue[key] {
		return
	}
	s.isDue[key] = true
	s.due = append(s.due, key)
	s._signal()
}

func (s *schedule) _signal() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// _arm sets the one timer for the earliest item. Call with s.mu held.
func (s *schedule) _arm() {
	if len(s.items) == 0 {
		if s.timer != nil {
			s.timer.Stop()
		}
		s.timerAt = time.Time{}
		return
	}
	at := s.items.peek().at
	if at.Equal(s.timerAt) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerAt = at
	s.timer = s.clock.AfterFunc(s.clock.Until(at), s.fire)
}

// fire moves what is due from the heap to the FIFO.
func (s *schedule) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timerAt = time.Time{}
	s._promote(s.clock.Now())
	s._arm()
}

// _promote makes every item due by until due now. Call with s.mu held.
func (s *schedule) _promote(until time.Time) {
	for len(s.items) > 0 && !s.items.peek().at.After(until) {
		it := heap.Pop(&s.items).(*item)
		delete(s.where, it.key)
		s._makeDue(it.key)
	}
}

// Next waits until a key is due and takes it. It returns false when ctx is done, or when the
// schedule is closed and nothing is due.
func (s *schedule) Next(ctx context.Context) (uint64, bool) {
	for {
		s.mu.Lock()
		if len(s.due) > 0 {
			key := s.due[0]
			s.due = s.due[1:]
			delete(s.isDue, key)
			if len(s.due) > 0 || s.closed {
				s._signal() // pass the token on: there is more for another taker
			}
			s.mu.Unlock()
			return key, true
		}
		if s.closed {
			s._signal()
			s.mu.Unlock()
			return 0, false
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, false
		case <-s.signal:
		}
	}
}

// TakeDue takes up to n keys that are due now or within slack (so that one batch takes what
// comes due together), waiting until there is at least one. It returns nil when ctx is done or
// the schedule is closed.
func (s *schedule) TakeDue(ctx context.Context, n int, slack time.Duration) []uint64 {
	key, ok := s.Next(ctx)
	if !ok {
		return nil
	}
	out := []uint64{key}
	s.mu.Lock()
	defer s.mu.Unlock()
	s._promote(s.clock.Now().Add(slack))
	s._arm()
	for len(out) < n && len(s.due) > 0 {
		k := s.due[0]
		s.due = s.due[1:]
		delete(s.isDue, k)
		out = append(out, k)
	}
	return out
}

// DueAll makes every key due now (a drain: nothing waits out its delay any more).
func (s *schedule) DueAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.items) > 0 {
		it := heap.Pop(&s.items).(*item)
		delete(s.where, it.key)
		s._makeDue(it.key)
	}
	s._arm()
}

// Close lets Next return false once nothing is due; what is not due stays.
func (s *schedule) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s._signal()
}
