package ims

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ListCap is how many matches ListMediaBasicInfos returns at most, over all the pages of one
// listing: its reference says "at most the first 100 entries that meet the specified conditions
// are returned". Read strictly, a listing that returns 100 may have left some out.
const ListCap = 100

// Lister is the call ListWindow makes: the Client, or a fake of it.
type Lister interface {
	ListMediaBasicInfos(ctx context.Context, r ListRequest) (*ListPage, error)
}

// Window is a span of creation times as ListMediaBasicInfos takes it: created after Start
// (exclusive; the zero time: from the first), up to End (inclusive), in whole seconds.
type Window struct {
	Start, End time.Time
}

func (w Window) String() string {
	start := "the first"
	if !w.Start.IsZero() {
		start = w.Start.UTC().Format(TimeFormat)
	}
	return fmt.Sprintf("(%s, %s]", start, w.End.UTC().Format(TimeFormat))
}

// ErrStop, returned by a visit, ends ListWindow early without error.
var ErrStop = errors.New("stop listing")

// Visit is given each part of a window, in creation order, with the assets listed in it;
// complete is false when the part could not be listed whole: more than ListCap assets of the
// request's filters were made in its one second, and ListMediaBasicInfos has no finer bound.
type Visit func(part Window, media []MediaInfo, complete bool) error

// ListWindow lists every asset of r's filters made in w, whole, whatever the cap: a part whose
// listing comes back full is split in two and each half listed. It splits just before the
// last creation time listed, so that where the service returns the first matches in creation
// order (as SortBy asc asks) the first half comes back short and whole, and the walk costs two
// calls a hundred assets. Once a first half comes back full all the same (the service returned
// other matches than the first), it splits at the middle one listed instead, which halves what
// is left whichever hundred come back. It stops when calls (decremented once a call; nil: no
// bound) runs out, returning ErrBudget after the parts visited so far, or when visit returns
// an error.
func ListWindow(ctx context.Context, l Lister, r ListRequest, w Window, calls *int, visit Visit) error {
	r.SortBy, r.MaxResults, r.NextToken = "asc", ListCap, ""
	type todoPart struct {
		Window
		first bool // the first half of a split before the last listed
	}
	todo := []todoPart{{Window: w}}
	ordered := true // the service has returned the first matches in creation order so far
	for len(todo) > 0 {
		part, first := todo[0].Window, todo[0].first
		todo = todo[1:]
		var media []MediaInfo
		r.StartTime, r.EndTime, r.NextToken = part.Start, part.End, ""
		for {
			if calls != nil {
				if *calls <= 0 {
					return ErrBudget
				}
				*calls--
			}
			page, err := l.ListMediaBasicInfos(ctx, r)
			if err != nil {
				return fmt.Errorf("list the assets made in %s: %w", part, err)
			}
			media = append(media, page.Media...)
			if page.NextToken == "" || len(media) >= ListCap {
				break
			}
			r.NextToken = page.NextToken
		}
		if len(media) < ListCap {
			if err := visit(part, media, true); err != nil {
				return stopped(err)
			}
			continue
		}
		if first {
			ordered = false
		}
		mid, byLast, ok := split(part, media, ordered)
		if !ok {
			if err := visit(part, media, false); err != nil {
				return stopped(err)
			}
			continue
		}
		// Only a first half cut just before the last listed says, coming back full, that the
		// service did not return the first matches.
		todo = append([]todoPart{{Window{part.Start, mid}, byLast}, {Window: Window{mid, part.End}}}, todo...)
	}
	return nil
}

// ErrBudget is returned by ListWindow when the calls it was given ran out.
var ErrBudget = errors.New("the listing calls allowed ran out")

func stopped(err error) error {
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// split returns a time strictly inside part (whole seconds) to cut it at: a second before the
// last creation time listed (ordered; byLast) or the middle one listed, or else halfway. ok is
// false for a part of one second.
func split(part Window, media []MediaInfo, ordered bool) (cut time.Time, byLast, ok bool) {
	start := part.Start
	if start.IsZero() {
		start = time.Unix(0, 0)
	}
	inside := func(t time.Time) bool { return t.After(start) && t.Before(part.End) }
	var times []time.Time
	for _, m := range media {
		if t, err := time.Parse(TimeFormat, m.MediaBasicInfo.CreateTime); err == nil {
			times = append(times, t)
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	if len(times) > 0 {
		last := times[len(times)-1].Add(-time.Second).Truncate(time.Second)
		if ordered && inside(last) {
			return last, true, true
		}
		if mid := times[len(times)/2].Truncate(time.Second); inside(mid) {
			return mid, false, true
		}
		// All in a second or two: cut before the last second listed.
		if inside(last) {
			return last, false, true
		}
	}
	if t := start.Add(part.End.Sub(start) / 2).Truncate(time.Second); inside(t) {
		return t, false, true
	}
	return time.Time{}, false, false
}
