package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/fake"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/transfer"
	"github.com/jonboulle/clockwork"
)

// TestPlanMatrix is the in-memory half of the life-cycle: what each committed change asks of
// the parts of the queue, by the state it leaves and the effects the table gave. Letters: c the
// pool and the checker drop the record, x its credentials leave memory, k the checker asks
// about its asset, u the pool runs it, l the sender of a file uploaded while written sends its
// last parts.
func TestPlanMatrix(t *testing.T) {
	type row struct {
		state         cache.State
		meta, early   bool
		none, c, s    string
		cs, goneByRec string
	}
	rows := []row{
		{state: cache.Writing, none: "", c: "c", s: "u", cs: "c u", goneByRec: "c x"},
		{state: cache.Queued, none: "", c: "c", s: "u", cs: "c u", goneByRec: "c x"},
		{state: cache.Queued, early: true, none: "", c: "c", s: "u l", cs: "c u l", goneByRec: "c x"},
		{state: cache.Creating, none: "", c: "c", s: "u", cs: "c u", goneByRec: "c x"},
		{state: cache.Uploading, none: "", c: "c", s: "u", cs: "c u", goneByRec: "c x"},
		{state: cache.Uploaded, none: "x", c: "c x", s: "x k", cs: "c x k", goneByRec: "c x"},
		{state: cache.Uploaded, meta: true, none: "x", c: "c x", s: "x u", cs: "c x u", goneByRec: "c x"},
		{state: cache.Ready, none: "x", c: "c x", s: "x u", cs: "c x u", goneByRec: "c x"},
		{state: cache.Failed, none: "x", c: "c x", s: "x u", cs: "c x u", goneByRec: "c x"},
		{state: cache.Skipped, none: "x", c: "c x", s: "x u", cs: "c x u", goneByRec: "c x"},
		{state: cache.Local, none: "x", c: "c x", s: "x u", cs: "c x u", goneByRec: "c x"},
	}
	covered := map[cache.State]bool{}
	for _, r := range rows {
		covered[r.state] = true
		rec := cache.Record{State: r.state, MetaPending: r.meta, Early: r.early}
		for _, cell := range []struct {
			fx   cache.Effects
			want string
		}{
			{cache.Effects{}, r.none},
			{cache.Effects{Cancel: true}, r.c},
			{cache.Effects{Schedule: true}, r.s},
			{cache.Effects{Cancel: true, Schedule: true}, r.cs},
			{cache.Effects{Cancel: true, Removed: true}, r.goneByRec},
		} {
			if got := plan(rec, cell.fx).String(); got != cell.want {
				t.Errorf("%s (meta %v, early %v) with %+v: got %q, want %q", r.state, r.meta, r.early, cell.fx, got, cell.want)
			}
		}
	}
	for _, s := range cache.States() {
		if !covered[s] {
			t.Errorf("no row for %s", s)
		}
	}
}

func (r routing) String() string {
	var out []string
	for _, f := range []struct {
		on bool
		s  string
	}{{r.cancel, "c"}, {r.dropCreds, "x"}, {r.check, "k"}, {r.upload, "u"}, {r.lastClose, "l"}} {
		if f.on {
			out = append(out, f.s)
		}
	}
	return strings.Join(out, " ")
}

// TestThePoolKeepsItsInvariants drives the pool with random schedules, cancels, runs and slots
// from several goroutines, and checks its invariants throughout; every record scheduled and
// not cancelled is run, and each at most once at a time.
func TestThePoolKeepsItsInvariants(t *testing.T) {
	clock := clockwork.NewRealClock()
	p := newPool(clock, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	runningNow := map[uint64]bool{}
	ran := map[uint64]int{}
	process := func(ctx context.Context, id uint64) {
		mu.Lock()
		if runningNow[id] {
			t.Errorf("record %d run twice at once", id)
		}
		runningNow[id] = true
		mu.Unlock()
		if id%3 == 0 { // a large file
			if p.takeLarge(id) {
				time.Sleep(time.Millisecond)
				p.endLarge()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(id%4) * time.Millisecond):
		}
		mu.Lock()
		delete(runningNow, id)
		ran[id]++
		mu.Unlock()
	}
	var workers sync.WaitGroup
	for range 4 {
		workers.Add(1)
		go func() { defer workers.Done(); p.work(ctx, process) }()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		id := uint64(rng.IntN(40) + 1)
		switch rng.IntN(3) {
		case 0:
			p.cancel(id)
		default:
			p.schedule(id, clock.Now().Add(time.Duration(rng.IntN(3))*time.Millisecond))
		}
		if err := p.check(); err != nil {
			t.Fatal(err)
		}
	}
	// Everything left scheduled runs; then the pool is idle.
	deadline := time.Now().Add(20 * time.Second)
	for {
		q, r := p.depth()
		if q == 0 && r == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool does not settle: %d queued, %d running", q, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.mu.Lock()
	large := p.large
	p.mu.Unlock()
	if large != 0 {
		t.Errorf("%d slots still taken", large)
	}
	if err := p.check(); err != nil {
		t.Error(err)
	}
	p.drain()
	workers.Wait()
	p.schedule(99, time.Time{})
	if q, _ := p.depth(); q != 0 {
		t.Error("a drained pool took a new record")
	}
}

// TestAParkedFileIsDueWhenASlotFrees: a large file that finds the slots taken is parked
// without a worker, and due when a slot frees; a cancel unparks it.
func TestAParkedFileIsDueWhenASlotFrees(t *testing.T) {
	clock := clockwork.NewFakeClock()
	p := newPool(clock, 1)
	if !p.takeLarge(1) {
		t.Fatal("the first large file got no slot")
	}
	if p.takeLarge(2) || p.takeLarge(3) {
		t.Fatal("a second large file got a slot")
	}
	p.cancel(3)
	if q, _ := p.depth(); q != 1 {
		t.Fatalf("parked: %d, want 1 (the cancelled one unparked)", q)
	}
	p.endLarge()
	if !p.uploads.Has(2) {
		t.Error("the parked file is not due once the slot freed")
	}
	if err := p.check(); err != nil {
		t.Error(err)
	}
}

// TestAFileScheduledWhileRunningRunsAgainAfter: a change during a run schedules the record
// after it, not beside it; a cancel during the run drops that.
func TestAFileScheduledWhileRunningRunsAgainAfter(t *testing.T) {
	clock := clockwork.NewRealClock()
	p := newPool(clock, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, release := make(chan struct{}), make(chan struct{})
	runs := make(chan uint64, 4)
	go p.work(ctx, func(ctx context.Context, id uint64) {
		runs <- id
		if len(runs) == 1 {
			close(started)
			<-release
		}
	})
	p.schedule(7, time.Time{})
	<-started
	p.schedule(7, time.Time{})
	if p.uploads.Has(7) {
		t.Fatal("scheduled beside its run")
	}
	close(release)
	for range 2 {
		select {
		case <-runs:
		case <-time.After(10 * time.Second):
			t.Fatal("the run after the run did not come")
		}
	}
}

// TestTheCheckerWaitsLongerEachTime: the waits between readiness checks of one asset are
// Ready.First for the first readyFlat, then double up to Ready.Max; each check falls on the grid
// of Ready.First (files uploaded within one step are asked about in one call), no sooner than
// its wait; first starts the waits over; a drained checker schedules nothing.
func TestTheCheckerWaitsLongerEachTime(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(1000, 300_000_000)) // off the grid of seconds
	cfg := Config{Clock: clock, Ready: ReadyCheck{First: time.Second, Max: 4 * time.Second}}
	q := newReadiness(&cfg, func(cache.Record, cache.Effects) {})
	r := cache.Record{ID: 5}
	due := func() time.Time {
		q.checks.mu.Lock()
		defer q.checks.mu.Unlock()
		if it := q.checks.where[5]; it != nil {
			return it.at
		}
		return time.Time{}
	}
	want := []time.Duration{}
	for range readyFlat + 1 {
		want = append(want, time.Second)
	}
	want = append(want, 2*time.Second, 4*time.Second, 4*time.Second)
	for i, w := range want {
		q.checkLater(r, false)
		at := due()
		if wait := at.Sub(clock.Now()); wait < w || wait >= w+time.Second || at.UnixNano()%int64(time.Second) != 0 {
			t.Errorf("wait %d: due in %v (at %v), want %v rounded up to a whole second", i+1, wait, at, w)
		}
	}
	q.first(5, clock.Now())
	q.checkLater(r, false)
	if wait := due().Sub(clock.Now()); wait >= 2*time.Second {
		t.Errorf("after first, the wait is %v", wait)
	}
	q.checkLater(r, true)
	if wait := due().Sub(clock.Now()); wait < 4*time.Second {
		t.Errorf("the longest wait is %v", wait)
	}
	q.forget(5)
	if q.checks.Has(5) {
		t.Error("forgotten, still scheduled")
	}
	q.drain()
	q.first(6, clock.Now())
	if q.checks.Has(6) {
		t.Error("a drained checker scheduled a check")
	}
}

// TestCredentialsAreOnePerGeneration: a new generation's upload does not sign with the old
// one's credentials, and a dropped record has none in memory.
func TestCredentialsAreOnePerGeneration(t *testing.T) {
	c := newCredCache()
	now := time.Now()
	c.keep(1, 1, ims.Auth{AccessKeyID: "a", Expires: now.Add(time.Hour)}, now)
	if got := c.of(1, 1).get().AccessKeyID; got != "a" {
		t.Errorf("generation 1 signs with %q", got)
	}
	c.dropOther(1, 1)
	if c.len() != 1 {
		t.Error("dropOther dropped the generation's own")
	}
	if got := c.of(1, 2).get().AccessKeyID; got != "" {
		t.Errorf("generation 2 signs with generation 1's %q", got)
	}
	c.dropOther(1, 1)
	if c.len() != 0 {
		t.Error("dropOther kept another generation's")
	}
	c.keep(2, 1, ims.Auth{AccessKeyID: "b"}, now)
	c.drop(2)
	if c.len() != 0 {
		t.Error("drop kept them")
	}
}

// TestAnErrorOfNoKnownKindFailsTheFileAfterTheCap: an error imsfs cannot tell will pass is
// tried Retry.Cap times in a row, then fails the file with it; a network error as often as
// that is tried on, and the file becomes ready.
func TestAnErrorOfNoKnownKindFailsTheFileAfterTheCap(t *testing.T) {
	fast := Retry{First: time.Millisecond, Max: 5 * time.Millisecond, Cap: 3}

	cloud := fake.New()
	cloud.Fail = failN("ims.create", 1000, errors.New("the signer's clock is a potato"))
	r := newRig(t, cloud, Config{Retry: fast})
	rec := r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, cache.Failed)
	if !strings.Contains(rec.Error, "gave up after 3 tries") || !strings.Contains(rec.Error, "potato") || !strings.Contains(rec.Error, "imsfs retry") {
		t.Errorf("failed with %q", rec.Error)
	}
	if n := cloud.Calls("ims.create"); n != 3 {
		t.Errorf("CreateUploadMedia called %d times, want 3 (the cap)", n)
	}

	cloud = fake.New()
	cloud.Fail = failN("ims.create", 6, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	r = newRig(t, cloud, Config{Retry: fast})
	r.waitFor(r.add("video/b.mp4", []byte("abc")).ID, cache.Ready)

	// The cap counts the unknown failures in a row, not the network's before them.
	cloud = fake.New()
	var mu sync.Mutex
	calls := 0
	cloud.Fail = func(op string) error {
		mu.Lock()
		defer mu.Unlock()
		if op != "ims.create" {
			return nil
		}
		calls++
		if calls <= 5 {
			return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return errors.New("a gateway's page")
	}
	r = newRig(t, cloud, Config{Retry: fast})
	rec = r.waitFor(r.add("video/c.mp4", []byte("abc")).ID, cache.Failed)
	if n := cloud.Calls("ims.create"); n != 5+3 {
		t.Errorf("CreateUploadMedia called %d times, want 5 refused by the network, then 3 of an unknown error (the cap)", n)
	}
	if !strings.Contains(rec.Error, "gave up after 3 tries") {
		t.Errorf("failed with %q", rec.Error)
	}
}

// TestErrorsAreSortedInOnePlace: kindOf, the one sorting of errors for retrying.
func TestErrorsAreSortedInOnePlace(t *testing.T) {
	for _, c := range []struct {
		err  error
		want errKind
	}{
		{errIMS503, temporaryErr},
		{&ims.APIError{StatusCode: 400, Code: "Throttling.Api"}, temporaryErr},
		{&ims.APIError{StatusCode: 400, Code: "InvalidParameter"}, permanentErr},
		{errOSS500, temporaryErr},
		{&transfer.Error{Status: 403, Code: "AccessDenied"}, permanentErr},
		{fmt.Errorf("upload a.mp4: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), temporaryErr},
		{fmt.Errorf("x: %w", syscall.ECONNREFUSED), temporaryErr},
		{io.ErrUnexpectedEOF, temporaryErr},
		{context.DeadlineExceeded, temporaryErr},
		{&permanentError{errors.New("no")}, permanentErr},
		{errors.New("something else"), unknownErr},
		{fmt.Errorf("BatchGetMediaInfos: %w", &json.SyntaxError{Offset: 1}), temporaryErr}, // a gateway's HTML page
		{fmt.Errorf("x: %w", syscall.EDQUOT), temporaryErr},
		{fmt.Errorf("x: %w", syscall.EMFILE), temporaryErr},
		{fmt.Errorf("open spool: %w", os.ErrPermission), unknownErr},
	} {
		if got := kindOf(c.err); got != c.want {
			t.Errorf("kindOf(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestInStepTriesAFewTimesOnTheClock: a step's op is tried PartTries times while it fails for a
// reason that may pass, waiting on the injected clock; not again once stop says so, nor after a
// refusal.
func TestInStepTriesAFewTimesOnTheClock(t *testing.T) {
	clock := clockwork.NewFakeClock()
	r := Retry{PartTries: 3, PartFirst: time.Second}.withDefaults()
	ctx := context.Background()
	tries := 0
	done := make(chan error, 1)
	go func() { done <- r.inStep(ctx, clock, nil, func() error { tries++; return errIMS503 }) }()
	for range 2 {
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(3 * time.Second)
	}
	if err := <-done; !errors.Is(err, errIMS503) || tries != 3 {
		t.Errorf("got %v after %d tries, want the error after 3", err, tries)
	}
	tries = 0
	err := r.inStep(ctx, clock, func(error) bool { return true }, func() error { tries++; return errIMS503 })
	if err == nil || tries != 1 {
		t.Errorf("stop: %d tries", tries)
	}
	tries = 0
	err = r.inStep(ctx, clock, nil, func() error { tries++; return &ims.APIError{StatusCode: 400, Code: "InvalidParameter"} })
	if err == nil || tries != 1 {
		t.Errorf("a refusal: %d tries", tries)
	}
}

// TestAWaitingDisposalWaitsAcrossARestart: an overwritten asset waits, in the store, for the
// new bytes to be ready; after a restart it is woken by that record, not by its long look.
func TestAWaitingDisposalWaitsAcrossARestart(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{OnOverwrite: Delete, Retry: Retry{First: time.Millisecond, Max: time.Hour}})
	b := r.waitFor(r.add("video/b.mp4", []byte("one")).ID, cache.Ready)
	cloud.ReadyAfter = time.Hour
	if _, err := r.queue.Apply(b.ID, cache.Event{Kind: cache.Wrote}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(r.store.SpoolPath(b.ID), []byte("two"), 0o600)
	if _, err := r.queue.Apply(b.ID, cache.Event{Kind: cache.Closed, Size: 3}); err != nil {
		t.Fatal(err)
	}
	r.waitFor(b.ID, cache.Uploaded)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, _ := r.store.Disposals()
		if len(ds) == 1 && ds[0].Stage() == cache.DisposalWaiting && ds[0].After == b.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disposals %+v, want one waiting for record %d", ds, b.ID)
		}
		time.Sleep(time.Millisecond)
	}
	r.stop()
	cloud.ReadyAfter = 0
	r.start()
	r.waitFor(b.ID, cache.Ready)
	r.waitUntilAsset(b.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
}

// TestUploadsYieldToTheWriters: while the mount's writers keep creating and closing files, a due
// upload waits for them to pause; once they do, it goes. A writer that never pauses holds it
// Yield.Hold at the most.
func TestUploadsYieldToTheWriters(t *testing.T) {
	busy := func(r *rig, stop <-chan struct{}) {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			// A writer's event: a file's write session starts and ends, as cp's files do.
			rec, err := r.store.Create(fmt.Sprintf("other/busy%d.bin", i), func(rec *cache.Record) { rec.Type, rec.BusinessType = "other", "general" })
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Wrote}); err != nil {
				t.Error(err)
				return
			}
		}
	}

	cloud := fake.New()
	r := newRig(t, cloud, Config{Yield: Yield{Quiet: 300 * time.Millisecond, Hold: time.Hour}})
	stop := make(chan struct{})
	go busy(r, stop)
	time.Sleep(100 * time.Millisecond)
	a := r.add("video/a.mp4", []byte("abc"))
	time.Sleep(time.Second)
	if n := cloud.Calls("ims.create"); n != 0 {
		t.Errorf("CreateUploadMedia called %d times while the writers were busy", n)
	}
	close(stop)
	r.waitFor(a.ID, cache.Ready)

	cloud = fake.New()
	r = newRig(t, cloud, Config{Yield: Yield{Quiet: 300 * time.Millisecond, Hold: 200 * time.Millisecond}})
	stop = make(chan struct{})
	defer close(stop)
	go busy(r, stop)
	time.Sleep(100 * time.Millisecond)
	r.waitFor(r.add("video/b.mp4", []byte("abc")).ID, cache.Ready) // while the writers go on
}

// TestADrainPastItsTimeMakesNoMoreAssets: once Close's time is up, the files still due are left
// for the next mount; no CreateUploadMedia is made for them (its call is not cancelled once made).
func TestADrainPastItsTimeMakesNoMoreAssets(t *testing.T) {
	cloud := fake.New()
	block := make(chan struct{})
	cloud.Block["ims.create"] = block
	r := newRig(t, cloud, Config{Workers: 1, SmallWorkers: 1})
	first := r.add("video/first.mp4", []byte("abc"))
	deadline := time.Now().Add(10 * time.Second)
	for cloud.Calls("ims.create") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first file's CreateUploadMedia was not called")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 20 {
		r.add(fmt.Sprintf("video/later%02d.mp4", i), []byte("abc"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan int)
	go func() { done <- r.queue.Close(ctx) }()
	time.Sleep(50 * time.Millisecond)
	close(block)
	left := <-done
	if n := cloud.Calls("ims.create"); n != 1 {
		t.Errorf("%d CreateUploadMedia calls, want only the first file's (the drain's time was up)", n)
	}
	if left < 20 {
		t.Errorf("%d uploads left for the next mount, want the 20 not started (and maybe %s)", left, first.Path)
	}
	r.store.Close()
	r.queue, r.store = nil, nil
}
