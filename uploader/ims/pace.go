package ims

import (
	"context"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Flow control. Alibaba Cloud answers a caller that goes too fast with one of several codes
// (Throttling, Throttling.User, Throttling.Api with HTTP 400 or 429, RequestsTooFrequent with
// 403, ServiceUnavailable with 503). Such an answer is weather, not a refusal: the call is tried
// again, and the client slows itself, action by action, so that a copy of 10,000 files does not
// hammer the service. Each action's pace is a token bucket (golang.org/x/time/rate): unlimited
// until the service throttles it; then half the rate it was called at, halved again at each
// throttled answer (at most once a second, down to one call a second), one call at a time; each
// answer that goes through raises it by 2%, back to unlimited: around the service's limit, the
// pace climbs to it in seconds and halves when it passes it.

const (
	minPace   = 1    // calls a second: the slowest an action is paced at
	freePace  = 1000 // calls a second: a pace raised past this is unlimited again
	raiseStep = 1.02 // the factor an answer that goes through raises the pace by
	// slowEvery is how often at most the pace is lowered: throttled answers close together
	// are one signal, not many.
	slowEvery = time.Second
)

// Pace is how fast the client lets itself call one action, and how often it was throttled.
type Pace struct {
	Action    string
	Limit     float64   // calls a second; 0: unlimited
	Throttled int64     // throttled answers, since the client was made
	Last      time.Time // the last throttled answer
	LastCode  string    // and its code
}

// pacer paces one action.
type pacer struct {
	lim *rate.Limiter // read only (it locks itself)

	mu        sync.Mutex
	second    int64 // protected by mu: the second calls[1] counts in (Unix)
	calls     [2]int
	throttled int64     // protected by mu
	last      time.Time // protected by mu
	lastCode  string    // protected by mu
	// slowed is when the pace was last lowered: a throttled answer to a call made before
	// then was for the old pace (calls in flight together are throttled together), and
	// lowers it no further.
	slowed time.Time // protected by mu
}

func newPacer() *pacer { return &pacer{lim: rate.NewLimiter(rate.Inf, 1)} }

// wait blocks until the action may be called (at once, while it is unlimited). The caller
// tells throttledAt when it called.
func (p *pacer) wait(ctx context.Context, now time.Time) error {
	p.mu.Lock()
	if s := now.Unix(); s != p.second {
		if s == p.second+1 {
			p.calls[0] = p.calls[1]
		} else {
			p.calls[0] = 0
		}
		p.calls[1], p.second = 0, s
	}
	p.calls[1]++
	p.mu.Unlock()
	return p.lim.Wait(ctx)
}

// throttledAt slows the action, for a call made at called and throttled at now: to half the
// rate it was called at in the last second when it was unlimited, else to half its pace.
func (p *pacer) throttledAt(called, now time.Time, code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttled++
	p.last, p.lastCode = now, code
	if called.Before(p.slowed) || now.Sub(p.slowed) < slowEvery {
		return // made at the old pace, or lowered a moment ago
	}
	p.slowed = now
	cur := float64(p.lim.Limit())
	if p.lim.Limit() == rate.Inf {
		cur = float64(max(p.calls[0], p.calls[1], 1))
	}
	next := max(cur/2, minPace)
	p.lim.SetLimitAt(now, rate.Limit(next))
}

// wentThrough raises a paced action's pace a little, up to unlimited.
func (p *pacer) wentThrough(now time.Time) {
	cur := p.lim.Limit()
	if cur == rate.Inf {
		return
	}
	next := float64(cur) * raiseStep
	if next > freePace {
		p.lim.SetLimitAt(now, rate.Inf)
		return
	}
	p.lim.SetLimitAt(now, rate.Limit(next))
}

func (p *pacer) pace(action string) Pace {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := Pace{Action: action, Throttled: p.throttled, Last: p.last, LastCode: p.lastCode}
	if l := p.lim.Limit(); l != rate.Inf {
		out.Limit = float64(l)
	}
	return out
}

// pacers holds a pacer per action, made on first use.
type pacers struct {
	mu sync.Mutex
	m  map[string]*pacer // protected by mu
}

func (ps *pacers) of(action string) *pacer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[string]*pacer{}
	}
	p := ps.m[action]
	if p == nil {
		p = newPacer()
		ps.m[action] = p
	}
	return p
}

// all returns the pace of every action called so far, by name.
func (ps *pacers) all() []Pace {
	ps.mu.Lock()
	names := make([]string, 0, len(ps.m))
	for name := range ps.m {
		names = append(names, name)
	}
	ps.mu.Unlock()
	sort.Strings(names)
	out := make([]Pace, len(names))
	for i, name := range names {
		out[i] = ps.of(name).pace(name)
	}
	return out
}
