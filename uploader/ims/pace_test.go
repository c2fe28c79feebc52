package ims

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlowControlIsWeather: every answer of the service's flow control is temporary, and
// slows the action it answered, not the others; answers that go through raise its pace again,
// back to unlimited.
func TestFlowControlIsWeather(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{{400, "Throttling"}, {400, "Throttling.User"}, {400, "Throttling.Api"}, {429, "Throttling.Api"}, {403, "RequestsTooFrequent"}, {503, "ServiceUnavailable"}} {
		e := &APIError{StatusCode: tc.status, Code: tc.code}
		if !(e.Throttled() || e.Overloaded()) || !e.Temporary() || e.Throttled() == (tc.code == "ServiceUnavailable") {
			t.Errorf("%d %s: throttled %v, overloaded %v, temporary %v", tc.status, tc.code, e.Throttled(), e.Overloaded(), e.Temporary())
		}
	}
	if e := (&APIError{StatusCode: 403, Code: "Forbidden.RAM"}); e.Throttled() || e.Temporary() {
		t.Errorf("Forbidden.RAM taken for flow control")
	}

	var throttle atomic.Bool
	throttle.Store(true)
	s := newServer(t, func(action string, q url.Values) (int, any) {
		if action == "GetMediaInfo" && throttle.Load() {
			return 403, map[string]any{"RequestId": "r", "Code": "RequestsTooFrequent", "Message": "Request was denied due to request throttling."}
		}
		return 200, map[string]any{"RequestId": "r", "MediaInfo": map[string]any{"MediaId": "m"}}
	})
	c := newClient(t, s)
	ctx := context.Background()
	for range 2 {
		if _, err := c.GetMediaInfo(ctx, "m", 0); err == nil {
			t.Fatal("a throttled call went through")
		}
	}
	if _, err := c.BatchGetMediaInfos(ctx, []string{"m"}, false); err != nil {
		t.Fatal(err)
	}
	paces := map[string]Pace{}
	for _, p := range c.Paces() {
		paces[p.Action] = p
	}
	got := paces["GetMediaInfo"]
	if got.Throttled != 2 || got.Limit <= 0 || got.Limit > 1 || got.LastCode != "RequestsTooFrequent" {
		t.Errorf("GetMediaInfo after two throttled answers: %+v; want paced at 1 call/s or less", got)
	}
	if p := paces["BatchGetMediaInfos"]; p.Limit != 0 || p.Throttled != 0 {
		t.Errorf("another action was slowed too: %+v", p)
	}

	// Going through raises the pace until it is unlimited again.
	p := newPacer()
	now := time.Unix(1000, 0)
	for range 10 {
		p.wait(ctx, now)
	}
	p.throttledAt(now, now, "Throttling")
	if got := p.pace("x").Limit; got != 5 {
		t.Errorf("throttled after 10 calls in a second: paced at %v, want 5", got)
	}
	p.throttledAt(now.Add(-time.Millisecond), now.Add(time.Millisecond), "Throttling")
	if got := p.pace("x").Limit; got != 5 {
		t.Errorf("a call made before the pace was lowered lowered it again, to %v", got)
	}
	for i := 0; p.pace("x").Limit != 0; i++ {
		if i > 1000 {
			t.Fatalf("still paced at %v after 1,000 answers that went through", p.pace("x").Limit)
		}
		p.wentThrough(now)
	}
}
