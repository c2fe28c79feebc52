package uploader

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestScheduleGivesKeysInDueOrderWithOneTimer(t *testing.T) {
	clock := clockwork.NewFakeClock()
	s := newSchedule(clock)
	now := clock.Now()
	s.Add(1, now.Add(3*time.Second))
	s.Add(2, now.Add(time.Second))
	s.Add(3, now.Add(2*time.Second))
	s.Add(4, now.Add(2*time.Second)) // same time: arrival order
	s.Add(5, time.Time{})            // due now
	if s.Len() != 5 || !s.Has(1) || s.Has(9) {
		t.Fatalf("len %d, has 1 %v, has 9 %v", s.Len(), s.Has(1), s.Has(9))
	}
	s.Add(1, now.Add(4*time.Second)) // moved, not added twice
	if !s.Remove(3) || s.Remove(3) || s.Len() != 4 {
		t.Fatalf("remove: len %d", s.Len())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if k, ok := s.Next(ctx); !ok || k != 5 {
		t.Fatalf("first: %d %v", k, ok)
	}
	var got []uint64
	for _, d := range []time.Duration{time.Second, time.Second, 2 * time.Second} {
		clock.BlockUntilContext(ctx, 1) // one timer, for the earliest
		clock.Advance(d)
		k, ok := s.Next(ctx)
		if !ok {
			t.Fatal("Next ended")
		}
		got = append(got, k)
	}
	if !reflect.DeepEqual(got, []uint64{2, 4, 1}) {
		t.Errorf("order %v, want [2 4 1]", got)
	}
}

func TestScheduleTakesWhatComesDueTogether(t *testing.T) {
	clock := clockwork.NewFakeClock()
	s := newSchedule(clock)
	now := clock.Now()
	for k := uint64(1); k <= 5; k++ {
		s.Add(k, now.Add(time.Duration(k)*100*time.Millisecond))
	}
	s.Add(9, now.Add(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clock.BlockUntilContext(ctx, 1)
	clock.Advance(100 * time.Millisecond)
	got := s.TakeDue(ctx, 3, time.Second)
	if !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Errorf("a batch of three: %v", got)
	}
	got = s.TakeDue(ctx, 10, time.Second)
	if !reflect.DeepEqual(got, []uint64{4, 5}) {
		t.Errorf("the rest due within the slack: %v", got)
	}
	s.DueAll()
	if k, ok := s.Next(ctx); !ok || k != 9 {
		t.Errorf("after DueAll: %d %v", k, ok)
	}
	s.Add(7, now.Add(time.Hour))
	s.Close()
	if k, ok := s.Next(ctx); ok {
		t.Errorf("Next after Close with nothing due: %d", k)
	}
	if got := s.TakeDue(ctx, 1, 0); got != nil {
		t.Errorf("TakeDue after Close: %v", got)
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, ok := newSchedule(clock).Next(done); ok {
		t.Errorf("Next on a done context")
	}
}
