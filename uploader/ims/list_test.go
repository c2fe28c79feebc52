package ims

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"
)

// capped lists like the strict reading of ListMediaBasicInfos' reference: at most ListCap
// matches over all pages; newest says which hundred (the newest, where SortBy asc asks the
// oldest), for a service that picks them otherwise than the client hopes.
type capped struct {
	created []time.Time // by asset index
	newest  bool
	calls   int
}

func (c *capped) ListMediaBasicInfos(_ context.Context, r ListRequest) (*ListPage, error) {
	c.calls++
	var match []int
	for i, t := range c.created {
		if (r.StartTime.IsZero() || t.After(r.StartTime)) && !t.After(r.EndTime) {
			match = append(match, i)
		}
	}
	sort.SliceStable(match, func(a, b int) bool { return c.created[match[a]].Before(c.created[match[b]]) })
	if c.newest && len(match) > ListCap {
		match = match[len(match)-ListCap:]
	}
	match = match[:min(len(match), ListCap)]
	off := 0
	fmt.Sscan(r.NextToken, &off)
	page := &ListPage{}
	for _, i := range match[off:min(len(match), off+r.MaxResults)] {
		page.Media = append(page.Media, MediaInfo{MediaID: fmt.Sprint(i), MediaBasicInfo: MediaBasicInfo{CreateTime: c.created[i].UTC().Format(TimeFormat)}})
	}
	if off+r.MaxResults < len(match) {
		page.NextToken = fmt.Sprint(off + r.MaxResults)
	}
	return page, nil
}

func TestListWindowListsPastTheCap(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		created func(i int) time.Time
		n       int
		newest  bool
		partial bool
	}{
		{"one a second", func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }, 1000, false, false},
		{"the newest hundred", func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }, 1000, true, false},
		{"thirty a second", func(i int) time.Time { return base.Add(time.Duration(i/30) * time.Second) }, 3000, false, false},
		{"a burst over years", func(i int) time.Time {
			if i%2 == 0 {
				return base.Add(-time.Duration(i) * 24 * time.Hour)
			}
			return base.Add(time.Duration(i/60) * time.Second)
		}, 1200, false, false},
		{"150 in one second", func(i int) time.Time { return base }, 150, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &capped{newest: tc.newest}
			for i := range tc.n {
				c.created = append(c.created, tc.created(i))
			}
			var seen []string
			var last time.Time
			partial := false
			err := ListWindow(context.Background(), c, ListRequest{}, Window{End: base.Add(time.Hour)}, nil, func(part Window, media []MediaInfo, complete bool) error {
				if part.Start.Before(last) {
					t.Errorf("part %s after one that ended %s", part, last)
				}
				last = part.End
				partial = partial || !complete
				for _, m := range media {
					seen = append(seen, m.MediaID)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(seen)
			if want := min(tc.n, ListCap); tc.partial {
				if !partial || len(seen) != want {
					t.Errorf("a second of %d: %d listed, partial %v", tc.n, len(seen), partial)
				}
				return
			}
			if len(slices.Compact(seen)) != tc.n || len(seen) != tc.n || partial {
				t.Errorf("%d assets: %d listed (%d distinct), partial %v", tc.n, len(seen), len(slices.Compact(seen)), partial)
			}
			t.Logf("%d assets in %d calls", tc.n, c.calls)
			if c.calls > 5*tc.n/ListCap+40 {
				t.Errorf("%d calls for %d assets", c.calls, tc.n)
			}
		})
	}
}

func TestListWindowStopsWhenItsCallsRunOut(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c := &capped{}
	for i := range 500 {
		c.created = append(c.created, base.Add(time.Duration(i)*time.Second))
	}
	calls := 3
	var parts []Window
	err := ListWindow(context.Background(), c, ListRequest{}, Window{End: base.Add(time.Hour)}, &calls, func(part Window, _ []MediaInfo, _ bool) error {
		parts = append(parts, part)
		return nil
	})
	if err != ErrBudget || c.calls != 3 || len(parts) != 1 {
		t.Errorf("with 3 calls: %v after %d calls, %d parts", err, c.calls, len(parts))
	}
}
