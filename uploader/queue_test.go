package uploader

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/fake"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/imsrules"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// rig is a queue over a real store and the fake cloud.
type rig struct {
	t     *testing.T
	store *cache.Store
	cloud *fake.Cloud
	queue *Queue
	cfg   Config
	dir   string
}

// fast is a retry policy for tests: the same shape, in milliseconds.
var fast = Retry{First: 5 * time.Millisecond, Max: 50 * time.Millisecond, PartFirst: time.Millisecond}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.DiscardHandler)
}

// newRig opens a store in a new directory and a queue on it, recovered and running.
func newRig(t *testing.T, cloud *fake.Cloud, cfg Config) *rig {
	t.Helper()
	r := &rig{t: t, cloud: cloud, cfg: cfg, dir: t.TempDir()}
	r.start()
	return r
}

// start opens the store and starts a queue on it (again, after stop: a restart).
func (r *rig) start() {
	r.t.Helper()
	names, _ := imsrules.NewAdmitter(imsrules.DefaultTempNames)
	store, err := cache.Open(r.dir, cache.Options{Admission: names})
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := r.cfg
	cfg.Store, cfg.IMS, cfg.Objects, cfg.Names = store, r.cloud, r.cloud, names
	if cfg.Retry == (Retry{}) {
		cfg.Retry = fast
	}
	if cfg.Ready == (ReadyCheck{}) {
		cfg.Ready = ReadyCheck{First: time.Millisecond, Max: 20 * time.Millisecond}
	}
	switch {
	case cfg.Yield != (Yield{}):
	case cfg.Clock != nil:
		cfg.Yield = Yield{Quiet: -1} // a test on a fake clock moves time itself: nothing waits for it
	default:
		cfg.Yield = Yield{Quiet: 5 * time.Millisecond, Hold: 100 * time.Millisecond}
	}
	cfg.Log = testLog(r.t)
	q := New(cfg)
	if err := q.Recover(); err != nil {
		r.t.Fatal(err)
	}
	q.Run()
	r.store, r.queue = store, q
	r.t.Cleanup(r.stop)
}

// stop closes the queue at once and the store, as a crash would leave them (but for the lock).
func (r *rig) stop() {
	if r.queue == nil {
		return
	}
	ctx, cancel := contextDone()
	defer cancel()
	r.queue.Close(ctx)
	r.store.Close()
	r.queue, r.store = nil, nil
}

// add spools data at path as a closed file, as the file system does.
func (r *rig) add(path string, data []byte) cache.Record {
	r.t.Helper()
	typ, biz := "video", "general"
	switch {
	case strings.HasPrefix(path, "image/"):
		typ, biz = "image", "default"
	case strings.HasPrefix(path, "other/"):
		typ = "other"
	}
	rec, err := r.store.Create(path, func(rec *cache.Record) { rec.Type, rec.BusinessType = typ, biz })
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(r.store.SpoolPath(rec.ID), data, 0o600); err != nil {
		r.t.Fatal(err)
	}
	rec, err = r.queue.Apply(rec.ID, cache.Event{Kind: cache.Closed, Size: int64(len(data))})
	if err != nil {
		r.t.Fatal(err)
	}
	return rec
}

// waitFor waits until record id is in state want (failing at once on an unexpected failure).
func (r *rig) waitFor(id uint64, want cache.State) cache.Record {
	r.t.Helper()
	return r.waitUntil(id, func(rec cache.Record) bool { return rec.State == want }, string(want))
}

func (r *rig) waitUntil(id uint64, ok func(cache.Record) bool, what string) cache.Record {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := r.store.GetID(id)
		if err != nil {
			r.t.Fatal(err)
		}
		if ok(rec) {
			return rec
		}
		if rec.State == cache.Failed && what != string(cache.Failed) || time.Now().After(deadline) {
			r.t.Fatalf("%s: state %s (error %q), want %s", rec.Path, rec.State, rec.Error, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// failN makes op fail with err the first n times it is called.
func failN(op string, n int, err error) func(string) error {
	var mu sync.Mutex
	return func(o string) error {
		mu.Lock()
		defer mu.Unlock()
		if o == op && n > 0 {
			n--
			return err
		}
		return nil
	}
}

var (
	errIMS503 = &ims.APIError{Action: "x", StatusCode: 503, Code: "ServiceUnavailable", Message: "busy"}
	errOSS500 = &transfer.Error{Op: "x", Code: "InternalError", Status: 500, Msg: "busy"}
)

// TestAnEmptyFileIsNotAnAsset: a file closed with no bytes (touch, a placeholder) is skipped,
// saying why, and no asset is asked for; closed again with bytes, it is uploaded.
func TestAnEmptyFileIsNotAnAsset(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{})
	rec := r.waitFor(r.add("video/placeholder.mp4", nil).ID, cache.Skipped)
	if !strings.Contains(rec.Error, "is empty") {
		t.Errorf("skipped saying %q", rec.Error)
	}
	if n := cloud.Calls("ims.create"); n != 0 {
		t.Errorf("CreateUploadMedia called %d times for an empty file", n)
	}
	if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Wrote}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(r.store.SpoolPath(rec.ID), []byte("now with bytes"), 0o600)
	if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Closed, Size: 14}); err != nil {
		t.Fatal(err)
	}
	r.waitFor(rec.ID, cache.Ready)
	if n := len(cloud.Assets()); n != 1 {
		t.Errorf("%d assets, want 1", n)
	}
}

func TestSinglePutAndMultipartReachReady(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize})
	files := map[string][]byte{
		"video/small.mp4":       randomBytes(t, 50<<10),          // one PUT
		"image/big.png":         randomBytes(t, 5*minPartSize+7), // six parts, the last short
		"video/exact-parts.mov": randomBytes(t, 2*minPartSize),   // two full parts
		"other/one-byte.bin":    {7},                             // the least an asset holds
	}
	recs := map[string]cache.Record{}
	for p, data := range files {
		recs[p] = r.add(p, data)
	}
	for p, data := range files {
		rec := r.waitFor(recs[p].ID, cache.Ready)
		got, ok := cloud.Object(rec.MediaID)
		if !ok || !bytes.Equal(got, data) {
			t.Errorf("%s: the object holds %d bytes, want the %d written", p, len(got), len(data))
		}
		if rec.MediaID == "" || rec.FileURL == "" || rec.Size != int64(len(data)) {
			t.Errorf("%s: ready as %+v", p, rec)
		}
	}
	if n := cloud.Calls("oss.part"); n != 8 {
		t.Errorf("%d parts sent, want 8", n)
	}
	if n := len(cloud.Assets()); n != len(files) {
		t.Errorf("%d assets for %d files", n, len(files))
	}
	st, err := r.queue.Status()
	if err != nil || len(st) != 0 {
		t.Errorf("status of a queue with everything ready: %+v %v", st, err)
	}
}

// TestAWorkerDoesNotWaitForReadiness: with one worker and assets that take long to prepare,
// every file is uploaded one after another; readiness is asked in batches meanwhile.
func TestAWorkerDoesNotWaitForReadiness(t *testing.T) {
	cloud := fake.New()
	cloud.ReadyAfter = time.Hour
	r := newRig(t, cloud, Config{Workers: 1, SmallWorkers: 1})
	var ids []uint64
	for i := range 5 {
		ids = append(ids, r.add("video/f"+string(rune('a'+i))+".mp4", randomBytes(t, 1000)).ID)
	}
	for _, id := range ids {
		r.waitFor(id, cache.Uploaded)
	}
	if cloud.Calls("ims.batchget") == 0 {
		t.Errorf("no readiness check was made")
	}
	st, _ := r.queue.Status()
	if len(st) != 5 || st[0].Status != "uploaded" || st[0].Sent != 1000 {
		t.Errorf("status: %+v", st)
	}
}

// TestANotReadyAssetIsNotAskedAgainAtOnce: an asset found not ready waits at least First (less
// the Gather a batch may take it early by) before it is asked again, however many calls are in
// flight and however batches gather checks due soon; the 40 files uploaded together are asked
// about in full batches.
func TestANotReadyAssetIsNotAskedAgainAtOnce(t *testing.T) {
	cloud := fake.New()
	cloud.ReadyAfter = time.Hour
	ready := ReadyCheck{First: 100 * time.Millisecond, Batch: 20, Gather: 20 * time.Millisecond}
	r := newRig(t, cloud, Config{Workers: 8, Ready: ready})
	var ids []uint64
	for i := range 40 {
		ids = append(ids, r.add("video/"+strings.Repeat("y", i+1)+".mp4", []byte("y")).ID)
	}
	for _, id := range ids {
		r.waitFor(id, cache.Uploaded)
	}
	time.Sleep(1200 * time.Millisecond)
	asked := cloud.Asked()
	if len(asked) != len(ids) {
		t.Fatalf("%d of %d files asked about in 1.2 s: the test did not test", len(asked), len(ids))
	}
	for id, at := range asked {
		if len(at) < 2 {
			t.Errorf("%s asked about %d times in 1.2 s", id, len(at))
		}
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < ready.First-ready.Gather {
				t.Errorf("%s asked again %v after it was found not ready, want at least %v", id, gap, ready.First-ready.Gather)
			}
		}
	}
	calls, checks := len(cloud.Batches()), 0
	for _, n := range cloud.Batches() {
		checks += n
	}
	if float64(checks)/float64(calls) < 10 {
		t.Errorf("%d checks in %d calls (batches %v): files uploaded together are not asked about together", checks, calls, cloud.Batches())
	}
}

// TestReadinessIsBatched: many uploaded files are asked about a batch at a time.
func TestReadinessIsBatched(t *testing.T) {
	cloud := fake.New()
	cloud.ReadyAfter = time.Hour
	r := newRig(t, cloud, Config{Workers: 8, Ready: ReadyCheck{First: 10 * time.Millisecond, Max: 20 * time.Millisecond, Batch: 20, Gather: time.Second}})
	var ids []uint64
	for i := range 60 {
		ids = append(ids, r.add("video/"+strings.Repeat("x", i+1)+".mp4", []byte("x")).ID)
	}
	for _, id := range ids {
		r.waitFor(id, cache.Uploaded)
	}
	before := len(cloud.Batches())
	cloud.SetReadyAfter(0)
	for _, id := range ids {
		r.waitFor(id, cache.Ready)
	}
	after := cloud.Batches()[before:]
	if len(after) > 6 {
		t.Errorf("%d readiness calls for 60 files in batches of 20: %v", len(after), after)
	}
	for _, n := range cloud.Batches() {
		if n > 20 {
			t.Errorf("a batch of %d assets, want at most 20", n)
		}
	}
	if cloud.Calls("ims.get") != 0 {
		t.Errorf("readiness asked asset by asset")
	}
}

func TestPrepareFailEndsFailed(t *testing.T) {
	cloud := fake.New()
	cloud.ReadyAfter = time.Hour
	r := newRig(t, cloud, Config{})
	rec := r.add("video/a.mp4", []byte("abc"))
	rec = r.waitFor(rec.ID, cache.Uploaded)
	cloud.SetStatus(rec.MediaID, ims.MediaPrepareFail)
	rec = r.waitFor(rec.ID, cache.Failed)
	if !strings.Contains(rec.Error, "PrepareFail") {
		t.Errorf("error %q", rec.Error)
	}
	// imsfs retry starts it clean: a new asset.
	if state, err := r.queue.Retry(rec.Path); err != nil || state != cache.Queued {
		t.Fatalf("retry: %s %v", state, err)
	}
	cloud.ReadyAfter = 0
	again := r.waitFor(rec.ID, cache.Ready)
	if again.MediaID == rec.MediaID {
		t.Errorf("a retry after PrepareFail kept the asset that failed")
	}
}

func TestARefusalEndsFailedWithTheServersWords(t *testing.T) {
	cloud := fake.New()
	cloud.Fail = failN("ims.create", 1, &ims.APIError{Action: "CreateUploadMedia", StatusCode: 400, Code: "InvalidParameter", Message: "BusinessType cover is not a video's"})
	r := newRig(t, cloud, Config{})
	rec := r.waitFor(r.add("video/a.mp4", []byte("x")).ID, cache.Failed)
	if !strings.Contains(rec.Error, "InvalidParameter") || !strings.Contains(rec.Error, "BusinessType") {
		t.Errorf("error %q", rec.Error)
	}
	if cloud.Calls("ims.create") != 1 {
		t.Errorf("a refusal was tried %d times", cloud.Calls("ims.create"))
	}
}

// TestATryThatFailsWaitsOutItsBackoffInTheSchedule: with the clock held, a failing try sets
// Attempts and Due from the policy, and nothing is tried before Due.
func TestATryThatFailsWaitsOutItsBackoffInTheSchedule(t *testing.T) {
	clock := clockwork.NewFakeClock()
	cloud := fake.New()
	cloud.Clock = clock
	cloud.Fail = failN("ims.create", 2, errIMS503)
	r := newRig(t, cloud, Config{Clock: clock, Retry: Retry{First: time.Second, Max: time.Minute, Jitter: 0.0001}})
	rec := r.add("video/a.mp4", []byte("x"))
	rec = r.waitUntil(rec.ID, func(rec cache.Record) bool { return rec.Attempts == 1 }, "one failed try")
	if d := rec.Due.Sub(clock.Now()); d < 999*time.Millisecond || d > 1001*time.Millisecond {
		t.Errorf("the first retry is due in %v, want 1s", d)
	}
	if !strings.Contains(rec.Error, "try 1 failed") || !strings.Contains(rec.Error, "ServiceUnavailable") || rec.State != cache.Creating {
		t.Errorf("after a failed try: %+v", rec)
	}
	time.Sleep(20 * time.Millisecond)
	if n := cloud.Calls("ims.create"); n != 1 {
		t.Fatalf("%d tries before the backoff ran out", n)
	}
	clock.BlockUntilContext(t.Context(), 1) // the schedule's timer
	clock.Advance(time.Second + time.Millisecond)
	rec = r.waitUntil(rec.ID, func(rec cache.Record) bool { return rec.Attempts == 2 }, "two failed tries")
	if d := rec.Due.Sub(clock.Now()); d < 1999*time.Millisecond || d > 2001*time.Millisecond {
		t.Errorf("the second retry is due in %v, want 2s", d)
	}
	clock.BlockUntilContext(t.Context(), 1)
	clock.Advance(2*time.Second + time.Millisecond)
	rec = r.waitFor(rec.ID, cache.Uploaded)
	clock.BlockUntilContext(t.Context(), 1)
	clock.Advance(time.Second) // the first readiness check
	r.waitFor(rec.ID, cache.Ready)
}

func TestAFailingPartIsTriedAgainOnItsOwn(t *testing.T) {
	cloud := fake.New()
	cloud.Fail = failN("oss.part", 2, errOSS500)
	r := newRig(t, cloud, Config{PartSize: minPartSize})
	rec := r.waitFor(r.add("video/a.mp4", randomBytes(t, 3*minPartSize)).ID, cache.Ready)
	if rec.Attempts != 0 || cloud.Calls("ims.create") != 1 {
		t.Errorf("a failing part sent the file back to the queue: %+v", rec)
	}
	if n := cloud.Calls("oss.part"); n != 5 {
		t.Errorf("%d part calls, want 3 and 2 tries again", n)
	}
}

func TestUploadCredentialsAreRenewedWhenTheyExpire(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize, PartWorkers: 1})
	cloud.Block["oss.part"] = make(chan struct{})
	rec := r.add("video/a.mp4", randomBytes(t, 3*minPartSize))
	r.waitFor(rec.ID, cache.Uploading)
	for cloud.Calls("oss.part") == 0 {
		time.Sleep(time.Millisecond)
	}
	cloud.ExpireCredentials()
	close(cloud.Block["oss.part"])
	rec = r.waitFor(rec.ID, cache.Ready)
	if n := cloud.Calls("ims.refresh"); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if rec.Attempts != 0 {
		t.Errorf("expired credentials cost a try: %+v", rec)
	}
}

// TestARefreshThatFailsForAWhileIsTriedAgainInPlace: RefreshUploadMedia failing twice with a
// 503 is tried again within the upload step (here a single PUT whose credentials expired), as
// a part is: the file is not sent back to the queue's backoff for it.
func TestARefreshThatFailsForAWhileIsTriedAgainInPlace(t *testing.T) {
	cloud := fake.New()
	cloud.Fail = failN("ims.refresh", 2, errIMS503) // only once the credentials expire
	obs := &retryCounter{}
	r := newRig(t, cloud, Config{Observer: obs})
	cloud.Block["oss.put"] = make(chan struct{})
	rec := r.add("video/a.mp4", []byte("abc"))
	for cloud.Calls("oss.put") == 0 {
		time.Sleep(time.Millisecond)
	}
	cloud.ExpireCredentials()
	close(cloud.Block["oss.put"])
	r.waitFor(rec.ID, cache.Ready)
	if n := cloud.Calls("ims.refresh"); n != 3 {
		t.Errorf("%d refresh calls, want 3 (2 refused)", n)
	}
	if n := obs.retried.Load(); n != 0 || cloud.Calls("oss.put") != 2 {
		t.Errorf("the refused refreshes cost %d tries of the file, and %d PUTs (want the refused one and one more)", n, cloud.Calls("oss.put"))
	}
}

// retryCounter counts the tries of files that failed and were scheduled again.
type retryCounter struct {
	NopObserver
	retried atomic.Int32
}

func (c *retryCounter) Retried(string) { c.retried.Add(1) }

// TestCredentialsAboutToExpireAreRenewedBeforeTheNextPart: short-lived credentials are renewed
// ahead of their end, without a refusal.
func TestCredentialsAboutToExpireAreRenewedBeforeTheNextPart(t *testing.T) {
	cloud := fake.New()
	cloud.CredsTTL = 30 * time.Millisecond
	r := newRig(t, cloud, Config{PartSize: minPartSize, PartWorkers: 1})
	cloud.Fail = func(op string) error {
		if op == "oss.part" {
			time.Sleep(15 * time.Millisecond)
		}
		return nil
	}
	r.waitFor(r.add("video/a.mp4", randomBytes(t, 4*minPartSize)).ID, cache.Ready)
	if cloud.Calls("ims.refresh") == 0 {
		t.Errorf("no refresh of credentials that expire every 30 ms")
	}
}

// stopAtPart adds data at path and stops the queue, as a crash would, when the nth part is sent
// (it is not stored): a restart resumes the upload.
func (r *rig) stopAtPart(path string, data []byte, n int) cache.Record {
	stop := make(chan struct{})
	var once sync.Once
	r.cloud.Fail = func(op string) error {
		if op == "oss.part" && r.cloud.Calls("oss.part") == n {
			once.Do(func() { close(stop) })
			return errors.New("cut")
		}
		return nil
	}
	rec := r.add(path, data)
	<-stop
	r.stop()
	r.cloud.Fail = nil
	return rec
}

// TestAnUploadResumesAfterARestartFromItsStoredParts: parts stored before a stop are asked of
// OSS (ListParts) and not sent again.
func TestAnUploadResumesAfterARestartFromItsStoredParts(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize, PartWorkers: 1})
	data := randomBytes(t, 4*minPartSize)
	rec := r.stopAtPart("video/a.mp4", data, 3)
	parts, _ := func() ([]cache.Part, error) {
		s, err := cache.Open(r.dir, cache.Options{})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		rec, _ = s.GetID(rec.ID)
		return s.Parts(rec.ID, rec.Gen)
	}()
	if len(parts) != 2 {
		t.Fatalf("%d parts stored before the stop, want 2", len(parts))
	}
	cloud.Fail = nil
	r.start()
	rec = r.waitFor(rec.ID, cache.Ready)
	if got, _ := cloud.Object(rec.MediaID); !bytes.Equal(got, data) {
		t.Errorf("the object is not what was written")
	}
	if n := cloud.Calls("oss.part"); n != 3+2 {
		t.Errorf("%d part calls, want 3 before the stop and the 2 missing after", n)
	}
	if cloud.Calls("oss.listparts") != 1 || cloud.Calls("ims.refresh") != 1 {
		t.Errorf("the resume did not ask OSS for its parts (%d) and for credentials (%d)", cloud.Calls("oss.listparts"), cloud.Calls("ims.refresh"))
	}
	if cloud.Calls("ims.create") != 1 {
		t.Errorf("the resume made another asset")
	}
}

// TestACompleteWhoseAnswerWasLostIsRecognised: the Complete went through but its answer was
// cut: the next try finds the upload gone, and the object whole.
func TestACompleteWhoseAnswerWasLostIsRecognised(t *testing.T) {
	cloud := fake.New()
	cloud.FailAfter = failN("oss.complete", 1, errors.New("connection reset"))
	r := newRig(t, cloud, Config{PartSize: minPartSize})
	data := randomBytes(t, 2*minPartSize+1)
	rec := r.waitFor(r.add("video/a.mp4", data).ID, cache.Ready)
	if got, _ := cloud.Object(rec.MediaID); !bytes.Equal(got, data) {
		t.Errorf("the object is not what was written")
	}
	if cloud.Calls("oss.head") != 1 || cloud.Calls("oss.part") != 3 {
		t.Errorf("head %d, parts %d: want the object checked, nothing sent again", cloud.Calls("oss.head"), cloud.Calls("oss.part"))
	}
}

// TestAMultipartUploadThatIsGoneStartsAgain: OSS forgot the upload (expired); the parts are
// sent again into a new one.
func TestAMultipartUploadThatIsGoneStartsAgain(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize, PartWorkers: 1})
	cloud.Block["oss.part"] = make(chan struct{})
	rec := r.add("video/a.mp4", randomBytes(t, 3*minPartSize))
	rec = r.waitFor(rec.ID, cache.Uploading)
	for {
		if rec, _ = r.store.GetID(rec.ID); rec.Upload.MultipartID != "" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cloud.Drop(rec.Upload.MultipartID)
	close(cloud.Block["oss.part"])
	rec = r.waitFor(rec.ID, cache.Ready)
	if cloud.Calls("oss.initiate") != 2 {
		t.Errorf("%d multipart uploads started, want 2", cloud.Calls("oss.initiate"))
	}
}

// TestAFileOfMorePartsThanOSSTakesGetsBiggerParts: the part size grows so that the parts fit
// OSS's limit.
func TestAFileOfMorePartsThanOSSTakesGetsBiggerParts(t *testing.T) {
	cloud := fake.New()
	cloud.MaxParts = 4
	r := newRig(t, cloud, Config{PartSize: minPartSize, MaxParts: 4})
	data := randomBytes(t, 10*minPartSize)
	rec := r.waitFor(r.add("video/a.mp4", data).ID, cache.Ready)
	if got, _ := cloud.Object(rec.MediaID); !bytes.Equal(got, data) {
		t.Errorf("the object is not what was written")
	}
	if n := cloud.Calls("oss.part"); n > 4 {
		t.Errorf("%d parts, OSS takes 4", n)
	}
	if got := (&Config{PartSize: 8 << 20, MaxParts: 10000}).partSize(100 << 30); got*10000 < 100<<30 || got > 11<<20 {
		t.Errorf("part size for 100 GiB: %d", got)
	}
}

// TestALostCreationAnswerIsFoundAndTakenUp: CreateUploadMedia made the asset but its answer
// was cut; the next try finds it by its tag and uses it.
func TestALostCreationAnswerIsFoundAndTakenUp(t *testing.T) {
	// other/: ListMediaBasicInfos takes no MediaType other; the search lists without one.
	for _, p := range []string{"video/a.mp4", "other/a.bin"} {
		t.Run(p, func(t *testing.T) {
			cloud := fake.New()
			cloud.FailAfter = failN("ims.create", 1, errors.New("connection reset"))
			r := newRig(t, cloud, Config{})
			rec := r.waitFor(r.add(p, []byte("abc")).ID, cache.Ready)
			if n := len(cloud.Assets()); n != 1 {
				t.Errorf("%d assets for one file", n)
			}
			if rec.MediaID != cloud.Assets()[0].MediaID || rec.FileURL == "" {
				t.Errorf("the record does not hold the asset found: %+v", rec)
			}
			if cloud.Calls("ims.list") != 1 || cloud.Calls("ims.refresh") != 1 {
				t.Errorf("list %d refresh %d", cloud.Calls("ims.list"), cloud.Calls("ims.refresh"))
			}
		})
	}
}

// TestALostCreationAnswerAmongManyAssetsIsFoundInFewCalls: 20,000 other assets, made over the
// last day and a few dozen in the same minute, of this type and others: the search is bounded,
// filtered and stops at the first match.
func TestALostCreationAnswerAmongManyAssetsIsFoundInFewCalls(t *testing.T) {
	cloud := fake.New()
	now := time.Now()
	for i := range 20000 {
		typ, created := "image", now.Add(-time.Duration(i)*4*time.Second)
		if i%10 == 0 {
			typ = "video"
		}
		if i < 60 {
			created = now.Add(-time.Duration(i) * 100 * time.Millisecond)
		}
		cloud.Add(fake.Asset{Type: typ, BusinessType: "general", Title: "other", Status: ims.MediaNormal, Created: created})
	}
	cloud.FailAfter = failN("ims.create", 1, errors.New("connection reset"))
	r := newRig(t, cloud, Config{})
	r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, cache.Ready)
	if n := cloud.Calls("ims.list"); n > 10 {
		t.Errorf("%d listing calls, want at most 10", n)
	}
	if n := len(cloud.Assets()); n != 20001 {
		t.Errorf("%d assets, want 20,001", n)
	}
}

// TestALostCreationAnswerNotFoundMakesAnotherAsset: when the asset cannot be found within the
// calls allowed, a new one is made: the file is uploaded whatever the listing says.
func TestALostCreationAnswerNotFoundMakesAnotherAsset(t *testing.T) {
	cloud := fake.New()
	cloud.FailAfter = failN("ims.create", 1, errors.New("connection reset"))
	r := newRig(t, cloud, Config{})
	// The first asset is lost from the listing: IMS never lists it.
	cloud.Hide = true
	rec := r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, cache.Ready)
	if n := len(cloud.Assets()); n != 2 || rec.MediaID != cloud.Assets()[1].MediaID {
		t.Errorf("%d assets; the file holds %s", n, rec.MediaID)
	}
}

func TestARenamedFinishedFileKeepsItsAssetAndIsRetitled(t *testing.T) {
	for _, state := range []cache.State{cache.Uploaded, cache.Ready} {
		t.Run(string(state), func(t *testing.T) {
			cloud := fake.New()
			if state == cache.Uploaded {
				cloud.ReadyAfter = time.Hour
			}
			r := newRig(t, cloud, Config{})
			rec := r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, state)
			if _, err := r.queue.Rename("video/a.mp4", "video/b.mp4", func(rec cache.Record) cache.Event {
				return cache.Event{Kind: cache.Renamed, Type: "video", BusinessType: "opening"}
			}); err != nil {
				t.Fatal(err)
			}
			got := r.waitUntil(rec.ID, func(r cache.Record) bool { return !r.MetaPending }, "retitled")
			if got.MediaID != rec.MediaID || got.State != state {
				t.Errorf("after the rename: %+v", got)
			}
			a := cloud.Assets()[0]
			if a.Title != "b" || a.BusinessType != "opening" || len(cloud.Assets()) != 1 {
				t.Errorf("asset after the rename: %+v", a)
			}
		})
	}
}

// TestDisposals: a voided upload is aborted and its asset deleted; an overwritten asset goes,
// under --on-overwrite delete, once the new bytes are ready; one deleted under keep stays.
func TestDisposals(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize, PartWorkers: 1, OnOverwrite: Delete})
	// A voided upload, mid-multipart.
	cloud.Block["oss.part"] = make(chan struct{})
	a := r.add("video/a.mp4", randomBytes(t, 3*minPartSize))
	r.waitUntil(a.ID, func(rec cache.Record) bool { return rec.Upload != nil && rec.Upload.MultipartID != "" }, "multipart started")
	a, _ = r.store.GetID(a.ID)
	if _, err := r.queue.Apply(a.ID, cache.Event{Kind: cache.Unlinked}); err != nil {
		t.Fatal(err)
	}
	close(cloud.Block["oss.part"])
	r.waitUntilAsset(a.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
	if cloud.Uploads() != 0 {
		t.Errorf("the multipart upload of a voided asset was not aborted")
	}
	// An overwrite: the old asset goes once the new bytes are ready.
	b := r.waitFor(r.add("video/b.mp4", []byte("one")).ID, cache.Ready)
	cloud.ReadyAfter = 100 * time.Millisecond
	if _, err := r.queue.Apply(b.ID, cache.Event{Kind: cache.Wrote}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(r.store.SpoolPath(b.ID), []byte("two"), 0o600)
	if _, err := r.queue.Apply(b.ID, cache.Event{Kind: cache.Closed, Size: 3}); err != nil {
		t.Fatal(err)
	}
	nb := r.waitFor(b.ID, cache.Uploaded)
	if as := r.asset(b.MediaID); as.Deleted {
		t.Errorf("the old asset went before the new one was ready")
	}
	r.waitFor(b.ID, cache.Ready)
	r.waitUntilAsset(b.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
	if as := r.asset(nb.MediaID); as.Deleted {
		t.Errorf("the new asset was deleted")
	}
	// A delete under the default keep: the asset stays.
	c := r.waitFor(r.add("video/c.mp4", []byte("c")).ID, cache.Ready)
	if _, err := r.queue.Apply(c.ID, cache.Event{Kind: cache.Unlinked}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if ds, _ := r.store.Disposals(); len(ds) != 0 || r.asset(c.MediaID).Deleted {
		t.Errorf("after a delete under keep: disposals %+v, asset %+v", ds, r.asset(c.MediaID))
	}
}

// TestADisposalThatKeepsFailingIsNeverForgotten: it is tried again past any count, shown by
// Status, and carried out once the cloud takes it.
func TestADisposalThatKeepsFailingIsNeverForgotten(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{OnDelete: Delete, Retry: Retry{First: time.Millisecond, Max: 2 * time.Millisecond}})
	rec := r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, cache.Ready)
	var mu sync.Mutex
	refuse := true
	cloud.Fail = func(op string) error {
		mu.Lock()
		defer mu.Unlock()
		if op == "ims.delete" && refuse {
			return &ims.APIError{Action: "DeleteMediaInfos", StatusCode: 403, Code: "Forbidden.RAM", Message: "not allowed"}
		}
		return nil
	}
	if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Unlinked}); err != nil {
		t.Fatal(err)
	}
	for cloud.Calls("ims.delete") < 25 {
		time.Sleep(time.Millisecond)
	}
	st, _ := r.queue.Status()
	if len(st) != 1 || st[0].Status != "deleting" || st[0].MediaID != rec.MediaID || !strings.Contains(st[0].Error, "Forbidden.RAM") {
		t.Errorf("status while the deletion fails: %+v", st)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	r.waitUntilAsset(rec.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
}

func TestRetry(t *testing.T) {
	cloud := fake.New()
	cloud.Fail = failN("ims.create", 1, &ims.APIError{Action: "CreateUploadMedia", StatusCode: 403, Code: "Forbidden.RAM"})
	r := newRig(t, cloud, Config{})
	rec := r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, cache.Failed)
	if state, err := r.queue.Retry(rec.Path); err != nil || state != cache.Queued {
		t.Fatalf("retry of a failed file: %s %v", state, err)
	}
	r.waitFor(rec.ID, cache.Ready)
	if _, err := r.queue.Retry(rec.Path); !errors.Is(err, cache.ErrNothingToRetry) {
		t.Errorf("retry of a ready file: %v", err)
	}
	if _, err := r.queue.Retry("video/none.mp4"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("retry of no file: %v", err)
	}
}

// TestFailedUploadsAreTriedAgainWhenTheConfigurationChanges: a mount with another key tries
// what failed under the last one.
func TestFailedUploadsAreTriedAgainWhenTheConfigurationChanges(t *testing.T) {
	cloud := fake.New()
	cloud.Fail = failN("ims.create", 1, &ims.APIError{Action: "CreateUploadMedia", StatusCode: 400, Code: "SignatureDoesNotMatch"})
	r := newRig(t, cloud, Config{ConfigID: "key-1"})
	rec := r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, cache.Failed)
	r.stop()
	r.start()
	time.Sleep(20 * time.Millisecond)
	if got, _ := r.store.GetID(rec.ID); got.State != cache.Failed {
		t.Fatalf("the same configuration retried a failed upload: %s", got.State)
	}
	r.stop()
	r.cfg.ConfigID = "key-2"
	r.start()
	r.waitFor(rec.ID, cache.Ready)
}

// TestCloseDrainsWhatIsSettling: files waiting out their settle delay start at Close; one
// waiting out a backoff is left for the next mount, and so is one Close's deadline cuts.
func TestCloseDrainsWhatIsSettling(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{Retry: Retry{First: time.Hour}})
	settling, err := r.store.Create("video/a.mp4", func(rec *cache.Record) { rec.Type, rec.BusinessType = "video", "general" })
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(r.store.SpoolPath(settling.ID), []byte("abc"), 0o600)
	if _, err := r.queue.Apply(settling.ID, cache.Event{Kind: cache.Closed, Size: 3, Due: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cloud.Fail = failN("ims.create", 1, errIMS503)
	backoff := r.add("video/b.mp4", []byte("b"))
	r.waitUntil(backoff.ID, func(rec cache.Record) bool { return rec.Attempts == 1 }, "a failed try")
	cloud.Fail = nil
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if left := r.queue.Close(ctx); left != 1 {
		t.Errorf("%d unfinished after the drain, want 1 (the backoff)", left)
	}
	if got, _ := r.store.GetID(settling.ID); !got.State.Finished() {
		t.Errorf("the settling file was not uploaded by the drain: %s", got.State)
	}
	if got, _ := r.store.GetID(backoff.ID); got.State != cache.Creating {
		t.Errorf("the file in backoff: %s", got.State)
	}
	r.store.Close()
	r.queue = nil
	r.start()
	r.waitFor(backoff.ID, cache.Creating) // its backoff still holds: an hour
}

// TestAFileChangedDuringItsUploadIsUploadedAgain: a new write session cancels the run under
// way; the asset made for the old bytes is disposed of.
func TestAFileChangedDuringItsUploadIsUploadedAgain(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{})
	cloud.Block["oss.put"] = make(chan struct{})
	rec := r.add("video/a.mp4", []byte("old"))
	r.waitFor(rec.ID, cache.Uploading)
	for cloud.Calls("oss.put") == 0 {
		time.Sleep(time.Millisecond)
	}
	old, _ := r.store.GetID(rec.ID)
	if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Wrote}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(r.store.SpoolPath(rec.ID), []byte("new!"), 0o600)
	if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Closed, Size: 4}); err != nil {
		t.Fatal(err)
	}
	close(cloud.Block["oss.put"])
	got := r.waitFor(rec.ID, cache.Ready)
	if data, _ := cloud.Object(got.MediaID); string(data) != "new!" || got.MediaID == old.MediaID {
		t.Errorf("the new bytes: %q in %s (old asset %s)", data, got.MediaID, old.MediaID)
	}
	r.waitUntilAsset(old.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
}

// contextDone returns a context that is already done: a Close that does not wait.
func contextDone() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx, cancel
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func (r *rig) asset(mediaID string) fake.Asset {
	for _, a := range r.cloud.Assets() {
		if a.MediaID == mediaID {
			return a
		}
	}
	r.t.Fatalf("no asset %s", mediaID)
	return fake.Asset{}
}

func (r *rig) waitUntilAsset(mediaID string, ok func(fake.Asset) bool, what string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(r.asset(mediaID)) {
		if time.Now().After(deadline) {
			r.t.Fatalf("asset %s not %s: %+v", mediaID, what, r.asset(mediaID))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAnAssetNeverReadyFailsAfterTheReadyTimeout: IMS keeps an asset Preparing (or reports a
// status imsfs does not know): the file waits, checked less and less often, then fails with
// the reason at --ready-timeout.
func TestAnAssetNeverReadyFailsAfterTheReadyTimeout(t *testing.T) {
	for _, status := range []string{ims.MediaPreparing, "Transcoding"} {
		t.Run(status, func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			cloud := fake.New()
			cloud.Clock, cloud.ReadyAfter = clock, 24*time.Hour
			r := newRig(t, cloud, Config{Clock: clock, Ready: ReadyCheck{First: time.Second, Max: 10 * time.Minute, Timeout: time.Hour}})
			rec := r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, cache.Uploaded)
			if status != ims.MediaPreparing {
				cloud.SetStatus(rec.MediaID, status)
			}
			for i := 0; clock.Since(rec.Uploaded) <= time.Hour; i++ {
				if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
					t.Fatal(err)
				}
				clock.Advance(10 * time.Minute)
				time.Sleep(5 * time.Millisecond)
				if i > 20 {
					t.Fatal("no end")
				}
			}
			rec = r.waitFor(rec.ID, cache.Failed)
			if !strings.Contains(rec.Error, "--ready-timeout 1h0m0s") || !strings.Contains(rec.Error, status) {
				t.Errorf("error %q", rec.Error)
			}
			if n := cloud.Calls("ims.batchget"); n > 20 {
				t.Errorf("%d checks in an hour and more, with waits growing to 10 min", n)
			}
		})
	}
}

// TestSetFieldsGoWithTheCreationOrByAnUpdate: fields set on a file before its asset is asked
// for go with CreateUploadMedia; set while it is made, or once it is ready, they follow by
// UpdateMediaInfo, and the record says when that is done.
func TestSetFieldsGoWithTheCreationOrByAnUpdate(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{})
	set := func(id uint64, field, value string) {
		t.Helper()
		if _, err := r.queue.Apply(id, cache.Event{Kind: cache.MetaSet, Field: field, Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	// Before: set on a file still being written.
	rec, err := r.store.Create("video/a.mp4", func(rec *cache.Record) { rec.Type, rec.BusinessType = "video", "opening" })
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(r.store.SpoolPath(rec.ID), []byte("abc"), 0o600)
	set(rec.ID, "title", "Opening night")
	set(rec.ID, "tags", "premiere,2026")
	if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Closed, Size: 3}); err != nil {
		t.Fatal(err)
	}
	a := r.waitFor(rec.ID, cache.Ready)
	if as := r.asset(a.MediaID); as.Title != "Opening night" || as.Tags != "premiere,2026" || cloud.Calls("ims.update") != 0 {
		t.Errorf("fields set before the upload: asset %+v, %d updates", as, cloud.Calls("ims.update"))
	}

	// While the asset is being made.
	cloud.Block["ims.create"] = make(chan struct{})
	b := r.add("video/b.mp4", []byte("def"))
	r.waitFor(b.ID, cache.Creating)
	set(b.ID, "description", "Made while the asset was asked for")
	close(cloud.Block["ims.create"])
	b = r.waitUntil(b.ID, func(rec cache.Record) bool { return rec.State == cache.Ready && !rec.MetaPending }, "ready and updated")
	if as := r.asset(b.MediaID); as.Description != "Made while the asset was asked for" || as.Title != "b" || b.MetaDone.IsZero() {
		t.Errorf("a field set while the asset was made: asset %+v, record %+v", as, b)
	}

	// After: the ready asset follows.
	set(a.ID, "cate_id", "42")
	a = r.waitUntil(a.ID, func(rec cache.Record) bool { return !rec.MetaPending }, "updated")
	if as := r.asset(a.MediaID); as.CateID != "42" || as.Title != "Opening night" || a.MetaDone.IsZero() || a.State != cache.Ready {
		t.Errorf("a field set once ready: asset %+v, record %+v", as, a)
	}
}

// TestSmallFilesGoOnWhileLargeOnesWait: with 2 transfers and 6 small ones, 4 files over one
// PUT take 2 workers (the other 2 wait without holding one) and the other 4 workers send
// small files meanwhile.
func TestSmallFilesGoOnWhileLargeOnesWait(t *testing.T) {
	cloud := fake.New()
	initiate, put := make(chan struct{}), make(chan struct{})
	cloud.Block["oss.initiate"], cloud.Block["oss.put"] = initiate, put
	r := newRig(t, cloud, Config{Workers: 2, SmallWorkers: 6, PartSize: minPartSize})
	var ids []uint64
	for i := range 4 {
		ids = append(ids, r.add(fmt.Sprintf("video/large%d.mp4", i), randomBytes(t, 2*minPartSize)).ID)
	}
	waitCalls(t, cloud, "oss.initiate", 2)
	for i := range 6 {
		ids = append(ids, r.add(fmt.Sprintf("video/small%d.mp4", i), randomBytes(t, 1000)).ID)
	}
	waitCalls(t, cloud, "oss.put", 4)
	time.Sleep(200 * time.Millisecond) // room for a call too many
	if n, m := cloud.Calls("oss.initiate"), cloud.Calls("oss.put"); n != 2 || m != 4 {
		t.Errorf("%d large and %d small files sent at once, want 2 and 4", n, m)
	}
	// The 2 large files parked and the 2 small ones no worker is free for wait; 6 are sent.
	if queued, running := r.queue.Depth(); queued != 4 || running != 6 {
		t.Errorf("Depth: %d waiting and %d running, want 4 and 6", queued, running)
	}
	close(initiate)
	close(put)
	for _, id := range ids {
		r.waitFor(id, cache.Ready)
	}
}

// waitCalls waits until the fake has had n calls of op.
func waitCalls(t *testing.T, cloud *fake.Cloud, op string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for cloud.Calls(op) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls of %s, want %d", cloud.Calls(op), op, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCloseDrainsParkedLargeFiles: large files parked for a slot when the drain begins are
// still uploaded by it, one after another, as a free worker would have.
func TestCloseDrainsParkedLargeFiles(t *testing.T) {
	cloud := fake.New()
	initiate := make(chan struct{})
	cloud.Block["oss.initiate"] = initiate
	r := newRig(t, cloud, Config{Workers: 1, SmallWorkers: 3, PartSize: minPartSize})
	var ids []uint64
	for i := range 3 {
		ids = append(ids, r.add(fmt.Sprintf("video/large%d.mp4", i), randomBytes(t, 2*minPartSize)).ID)
	}
	waitCalls(t, cloud, "oss.initiate", 1)
	time.Sleep(100 * time.Millisecond) // room for the others to be taken and parked
	go func() {
		time.Sleep(100 * time.Millisecond) // the drain has begun
		close(initiate)
	}()
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	if left := r.queue.Close(ctx); left != 0 {
		t.Errorf("%d unfinished after the drain, want 0", left)
	}
	for _, id := range ids {
		if got, _ := r.store.GetID(id); !got.State.Finished() {
			t.Errorf("%s after the drain: %s", got.Path, got.State)
		}
	}
}

// TestASpoolChangedUnderItsUploadIsUploadedAgain: the spool changes after its bytes were read
// for the upload and before it completes, by a write no event tells of (as the kernel's
// passthrough writes are): the upload is not taken as the file's. The file is uploaded again
// as new bytes, and the asset of the old ones is disposed of.
func TestASpoolChangedUnderItsUploadIsUploadedAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   string // the call after which the spool changes
		size int
	}{
		{"one PUT", "oss.put", 1000},
		{"multipart", "oss.complete", 2*minPartSize + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cloud := fake.New()
			r := newRig(t, cloud, Config{PartSize: minPartSize})
			data, final := randomBytes(t, tc.size), randomBytes(t, tc.size)
			var id atomic.Uint64
			var once sync.Once
			cloud.FailAfter = func(op string) error {
				if op == tc.op {
					once.Do(func() {
						if err := os.WriteFile(r.store.SpoolPath(id.Load()), final, 0o600); err != nil {
							t.Error(err)
						}
					})
				}
				return nil
			}
			rec, err := r.store.Create("video/a.mp4", func(rec *cache.Record) { rec.Type, rec.BusinessType = "video", "general" })
			if err != nil {
				t.Fatal(err)
			}
			id.Store(rec.ID)
			if err := os.WriteFile(r.store.SpoolPath(rec.ID), data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Closed, Size: int64(len(data))}); err != nil {
				t.Fatal(err)
			}
			got := r.waitFor(rec.ID, cache.Ready)
			if obj, _ := cloud.Object(got.MediaID); !bytes.Equal(obj, final) {
				t.Errorf("ready with %d bytes that are not the spool's final ones", len(obj))
			}
			if got.Gen != rec.Gen+1 || cloud.Calls("ims.create") != 2 {
				t.Errorf("generation %d (was %d), %d assets made: want the change taken as new bytes", got.Gen, rec.Gen, cloud.Calls("ims.create"))
			}
			for _, a := range cloud.Assets() {
				if a.MediaID != got.MediaID {
					r.waitUntilAsset(a.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
				}
			}
		})
	}
}

// TestAnObjectOfOtherBytesIsNotReady: OSS reports another CRC-64 than that of the bytes read
// from the spool. A part is sent again; an object (one PUT, or parts put together) that holds
// other bytes is not the file's: it is uploaded again as a new asset, the other disposed of.
func TestAnObjectOfOtherBytesIsNotReady(t *testing.T) {
	for _, tc := range []struct {
		op      string
		size    int
		creates int
	}{
		{"oss.put", 1000, 2},
		{"oss.part", 2*minPartSize + 5, 1},
		{"oss.complete", 2*minPartSize + 5, 2},
	} {
		t.Run(tc.op, func(t *testing.T) {
			cloud := fake.New()
			var once atomic.Bool
			cloud.Damage = func(op string) bool { return op == tc.op && once.CompareAndSwap(false, true) }
			r := newRig(t, cloud, Config{PartSize: minPartSize})
			data := randomBytes(t, tc.size)
			got := r.waitFor(r.add("video/a.mp4", data).ID, cache.Ready)
			if obj, _ := cloud.Object(got.MediaID); !bytes.Equal(obj, data) {
				t.Errorf("ready with bytes that are not the file's")
			}
			if n := cloud.Calls("ims.create"); n != tc.creates {
				t.Errorf("%d assets made, want %d", n, tc.creates)
			}
			for _, a := range cloud.Assets() {
				if a.MediaID != got.MediaID {
					r.waitUntilAsset(a.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
				}
			}
		})
	}
}

// TestAnObjectOfOtherBytesEveryTimeFails: an endpoint that keeps storing other bytes than are
// sent makes the upload start over a few times, each later than the last, then fail with the
// cause; no asset of other bytes is left.
func TestAnObjectOfOtherBytesEveryTimeFails(t *testing.T) {
	cloud := fake.New()
	cloud.Damage = func(op string) bool { return op == "oss.put" }
	r := newRig(t, cloud, Config{})
	rec := r.waitFor(r.add("video/a.mp4", randomBytes(t, 1000)).ID, cache.Failed)
	if !strings.Contains(rec.Error, "started over 5 times") || !strings.Contains(rec.Error, "CRC-64") {
		t.Errorf("the file failed with %q; want the cause and how often it started over", rec.Error)
	}
	if n := cloud.Calls("ims.create"); n != maxStartOvers {
		t.Errorf("%d assets made, want %d", n, maxStartOvers)
	}
	for _, a := range cloud.Assets() {
		r.waitUntilAsset(a.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
	}
	cloud.Damage = nil
	if _, err := r.queue.Retry("video/a.mp4"); err != nil {
		t.Fatal(err)
	}
	r.waitFor(rec.ID, cache.Ready)
}

// TestAnAssetTheServiceNoLongerKnowsFailsAtOnce: the asset of an uploaded file is deleted (in
// the console) before it is ready: BatchGetMediaInfos lists it as ignored, and the file fails
// at that check with the reason, not after --ready-timeout; imsfs retry uploads it again.
func TestAnAssetTheServiceNoLongerKnowsFailsAtOnce(t *testing.T) {
	cloud := fake.New()
	cloud.ReadyAfter = time.Hour
	r := newRig(t, cloud, Config{Ready: ReadyCheck{First: time.Millisecond, Max: 5 * time.Millisecond, Timeout: time.Hour}})
	rec := r.waitFor(r.add("video/a.mp4", []byte("bytes")).ID, cache.Uploaded)
	checks := cloud.Calls("ims.batchget")
	if err := cloud.DeleteMediaInfos(context.Background(), rec.MediaID); err != nil {
		t.Fatal(err)
	}
	rec = r.waitFor(rec.ID, cache.Failed)
	if !strings.Contains(rec.Error, "no longer knows asset "+rec.MediaID) || !strings.Contains(rec.Error, "imsfs retry") {
		t.Errorf("failed with %q", rec.Error)
	}
	if n := cloud.Calls("ims.batchget") - checks; n > 2 {
		t.Errorf("%d checks after the deletion, want it said at the first", n)
	}
	cloud.ReadyAfter = 0
	if _, err := r.queue.Retry("video/a.mp4"); err != nil {
		t.Fatal(err)
	}
	if got := r.waitFor(rec.ID, cache.Ready); got.MediaID == rec.MediaID {
		t.Errorf("ready again with the deleted asset")
	}
}

// TestARefusedRefreshStartsOver: after a restart mid-upload, IMS refuses new upload credentials
// for the asset (as VOD documents for images): the upload starts over with a new asset for the
// same bytes, the old one is deleted, and the file ends ready with one asset.
func TestARefusedRefreshStartsOver(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize, PartWorkers: 1})
	data := randomBytes(t, 3*minPartSize)
	rec := r.stopAtPart("image/big.png", data, 2)
	cloud.Fail = failN("ims.refresh", 100, &ims.APIError{Action: "RefreshUploadMedia", StatusCode: 400, Code: "InvalidParameter", Message: "image upload credentials cannot be refreshed"})
	r.start()
	got := r.waitFor(rec.ID, cache.Ready)
	if obj, _ := cloud.Object(got.MediaID); !bytes.Equal(obj, data) {
		t.Errorf("ready with other bytes")
	}
	live := 0
	for _, a := range cloud.Assets() {
		if a.MediaID != got.MediaID {
			r.waitUntilAsset(a.MediaID, func(as fake.Asset) bool { return as.Deleted }, "deleted")
		} else {
			live++
		}
	}
	if live != 1 || cloud.Calls("ims.create") != 2 {
		t.Errorf("%d assets left, %d made; want one left of two", live, cloud.Calls("ims.create"))
	}
}

// TestAFileGoneWhileItsCreationAnswerIsLostLeavesNoAsset: CreateUploadMedia made an asset but
// its answer was lost, and the file is deleted before the next try: the asset is found by its
// tag (once no call can be under way and the listing shows it) and deleted.
func TestAFileGoneWhileItsCreationAnswerIsLostLeavesNoAsset(t *testing.T) {
	clock := clockwork.NewFakeClock()
	cloud := fake.New()
	cloud.Clock = clock
	cloud.FailAfter = failN("ims.create", 1, errors.New("connection reset"))
	r := newRig(t, cloud, Config{Clock: clock, Retry: Retry{First: time.Hour, Max: time.Hour}})
	rec := r.add("video/a.mp4", []byte("abc"))
	rec = r.waitUntil(rec.ID, func(rec cache.Record) bool { return rec.Attempts == 1 }, "a lost answer")
	if rec.State != cache.Creating || rec.Asked.IsZero() || len(cloud.Assets()) != 1 {
		t.Fatalf("after the lost answer: %+v, %d assets", rec, len(cloud.Assets()))
	}
	if _, err := r.queue.Apply(rec.ID, cache.Event{Kind: cache.Unlinked}); err != nil {
		t.Fatal(err)
	}
	made := cloud.Assets()[0].MediaID
	wait, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(wait, 1); err != nil { // the disposal's timer: the retry's went with the file
		t.Fatalf("nothing waits to look for the asset: %v", err)
	}
	if cloud.Calls("ims.list") != 0 {
		t.Errorf("looked for the asset while its creation could still be under way")
	}
	clock.Advance(lostListed + time.Second)
	r.waitUntilAsset(made, func(a fake.Asset) bool { return a.Deleted }, "deleted")
	if ds, _ := r.store.Disposals(); len(ds) != 0 {
		t.Errorf("disposals left: %+v", ds)
	}
}

// TestUploadCredentialsAreDroppedOnceTheUploadEnds: the STS credentials an upload signed with
// are not kept in memory once its object is complete (nor once it failed).
func TestUploadCredentialsAreDroppedOnceTheUploadEnds(t *testing.T) {
	cloud := fake.New()
	cloud.ReadyAfter = time.Hour
	r := newRig(t, cloud, Config{})
	r.waitFor(r.add("video/a.mp4", []byte("abc")).ID, cache.Uploaded)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r.queue.creds.len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload credentials are kept after the object is complete")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestARefusedBusinessTypeNamesTheSettingThatChangesIt: CreateUploadMedia refuses the folder's
// BusinessType: the file fails with the service's words and the configuration key to change.
func TestARefusedBusinessTypeNamesTheSettingThatChangesIt(t *testing.T) {
	cloud := fake.New()
	cloud.Fail = failN("ims.create", 1, &ims.APIError{Action: "CreateUploadMedia", StatusCode: 400, Code: "InvalidParameter",
		Message: "The specified parameter MediaMetaData.BusinessType general is not valid for type audio."})
	r := newRig(t, cloud, Config{})
	rec := r.waitFor(r.add("video/x/a.mp4", []byte("abc")).ID, cache.Failed)
	if !strings.Contains(rec.Error, "is not valid for type audio") || !strings.Contains(rec.Error, "business-type:") || !strings.Contains(rec.Error, "video/x") {
		t.Errorf("failed with %q", rec.Error)
	}
}
