package cache

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testAdmission skips temporary names (ending in "~") and names without an extension, and
// fails files over a gigabyte.
type testAdmission struct{}

func (testAdmission) Refuse(r *Record) (State, string) {
	p := r.Path
	switch {
	case strings.HasSuffix(p, "~"):
		return Skipped, "not uploaded: a temporary name"
	case strings.HasPrefix(p[strings.LastIndex(p, "/")+1:], "._"):
		return Local, "kept in the mount: a name desktops leave"
	case !strings.Contains(p[strings.LastIndex(p, "/")+1:], "."):
		return Skipped, "not uploaded: no extension"
	case r.Size > 1<<30:
		return Failed, "not uploaded: too big"
	}
	return "", ""
}

var (
	t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(2 * time.Second)
	t2 = t0.Add(time.Minute)
)

// recordIn returns a record as it stands in state s on the usual path there: a failed one
// failed mid-upload (it has an asset), the finished ones have theirs.
func recordIn(s State) Record {
	r := Record{ID: 7, Path: "video/a.mp4", State: s, Gen: 3, Type: "video", BusinessType: "general"}
	switch s {
	case Creating:
		r.Asked = t0
	case Uploading, Uploaded, Ready, Failed:
		r.Asked = t0
		r.MediaID, r.MediaURL, r.FileURL = "m1", "http://media", "http://file"
		r.Upload = &Upload{Endpoint: "http://oss", Bucket: "b", Key: "k", MultipartID: "U", PartSize: 1 << 20}
	}
	if s == Failed {
		r.Error = "refused"
	}
	return r
}

// events holds one event of each kind, as the file system and the uploader send them.
var events = map[EventKind]Event{
	Wrote:            {Kind: Wrote},
	Closed:           {Kind: Closed, Size: 5, Mode: 0o644, Mtime: t0, Due: t1},
	Renamed:          {Kind: Renamed, Type: "video", BusinessType: "opening", Due: t1},
	Unlinked:         {Kind: Unlinked},
	Replaced:         {Kind: Replaced, By: 99},
	Dispatched:       {Kind: Dispatched},
	AssetCreated:     {Kind: AssetCreated, Asset: &Asset{MediaID: "m2", Upload: Upload{Endpoint: "http://oss", Bucket: "b", Key: "k2"}}},
	MultipartStarted: {Kind: MultipartStarted, Multipart: "U2", PartSize: 8 << 20},
	PartStored:       {Kind: PartStored, Multipart: "U", Part: Part{Number: 1, ETag: "e", Size: 1 << 20}},
	ObjectCompleted:  {Kind: ObjectCompleted, Size: 5},
	AssetReady:       {Kind: AssetReady, URL: "http://addr"},
	UploadFailed:     {Kind: UploadFailed, Reason: "PrepareFail"},
	TryFailed:        {Kind: TryFailed, Reason: "503", Due: t2, Attempts: 3},
	RetryAsked:       {Kind: RetryAsked, Due: t0},
	MetaUpdated:      {Kind: MetaUpdated},
	Evicted:          {Kind: Evicted},
	Restored:         {Kind: Restored},
	EarlyAsset:       {Kind: EarlyAsset, Asset: &Asset{MediaID: "m3", Upload: Upload{Endpoint: "http://oss", Bucket: "b", Key: "k3"}}},
	MetaSet:          {Kind: MetaSet, Field: "title", Value: "A title"},
	StartOver:        {Kind: StartOver, Reason: "the spool changed", Due: t1},
	Held:             {Kind: Held},
}

// outcome describes what an event did, in the notation of the matrix below: the state it left
// (or "gone"), then C cancel, S schedule, T settled, and the disposal it leaves (Dv voided,
// Do overwritten, Dd deleted); or a refusal: "!" not allowed here, "!s" superseded,
// "!n" nothing to retry, "!e" not evictable.
func outcome(r Record, ev Event) string {
	before := r
	before.Upload = cloneUpload(r.Upload)
	fx, err := transition(&r, &ev, testAdmission{})
	switch {
	case errors.Is(err, ErrSuperseded):
		return "!s"
	case errors.Is(err, ErrNothingToRetry):
		return "!n"
	case errors.Is(err, ErrNotEvictable):
		return "!e"
	case errors.Is(err, ErrBadTransition):
		return "!"
	case err != nil:
		return "error " + err.Error()
	}
	var b strings.Builder
	var d *Disposal
	if fx.Removed {
		b.WriteString("gone")
		d = disposalOf(&before, nil, ev.By)
	} else {
		b.WriteString(string(r.State))
		d = disposalOf(&before, &r, 0)
	}
	for _, f := range []struct {
		on bool
		s  string
	}{{fx.Cancel, "C"}, {fx.Schedule, "S"}, {fx.Settled, "T"}} {
		if f.on {
			b.WriteString(" " + f.s)
		}
	}
	if d != nil {
		b.WriteString(" D" + string(d.Why[0]))
	}
	return b.String()
}

// TestLifecycleMatrix applies every event in every state and compares what happens with the
// life-cycle as docs/architecture.md states it ("The upload life-cycle": this matrix, as a table;
// a change here is a change there).
func TestLifecycleMatrix(t *testing.T) {
	// Columns: writing, queued, creating, uploading, uploaded, ready, failed, skipped, local.
	want := map[EventKind][9]string{
		Wrote:            {"writing C", "writing C", "writing C Dv", "writing C Dv", "writing C Do", "writing C Do", "writing C Dv", "writing C", "writing C"},
		Closed:           {"queued S", "queued", "creating", "uploading", "uploaded", "ready", "failed", "skipped", "local"},
		Renamed:          {"writing", "queued C S", "queued C S Dv", "queued C S Dv", "uploaded S", "ready S", "queued C S Dv", "queued C S", "queued C S"},
		Unlinked:         {"gone C T", "gone C T", "gone C T Dv", "gone C T Dv", "gone C T Dd", "gone C T Dd", "gone C T Dv", "gone C T", "gone C T"},
		Replaced:         {"gone C T", "gone C T", "gone C T Dv", "gone C T Dv", "gone C T Do", "gone C T Do", "gone C T Dv", "gone C T", "gone C T"},
		Dispatched:       {"!", "creating", "creating", "!", "!", "!", "!", "!", "!"},
		AssetCreated:     {"!", "!", "uploading", "!", "!", "!", "!", "!", "!"},
		MultipartStarted: {"!", "!", "!", "uploading", "!", "!", "!", "!", "!"},
		PartStored:       {"!s", "!s", "!", "uploading", "!", "!", "!", "!", "!"},
		ObjectCompleted:  {"!", "!", "!", "uploaded S", "!", "!", "!", "!", "!"},
		AssetReady:       {"!", "!", "!", "!", "ready T", "!", "!", "!", "!"},
		UploadFailed:     {"!", "!", "failed", "failed", "failed", "!", "!", "!", "!"},
		TryFailed:        {"!", "queued S", "creating S", "uploading S", "uploaded S", "!", "!", "!", "!"},
		RetryAsked:       {"!n", "queued S", "creating S", "uploading S", "uploaded S", "!n", "queued C S Dv", "!n", "!n"},
		MetaUpdated:      {"!", "!", "!", "!", "uploaded", "ready", "!", "!", "!"},
		Evicted:          {"!", "!", "!", "!", "!", "ready", "!", "!", "!"},
		Restored:         {"writing", "queued", "creating", "uploading", "uploaded", "ready", "failed", "skipped", "local"},
		EarlyAsset:       {"writing", "!", "!", "!", "!", "!", "!", "!", "!"},
		MetaSet:          {"writing", "queued", "creating", "uploading", "uploaded S", "ready S", "failed", "skipped", "local"},
		StartOver:        {"!", "!", "!", "queued C S Dv", "!", "!", "!", "!", "!"},
		Held:             {"!", "writing C", "!", "!", "!", "!", "!", "!", "!"},
	}
	if len(want) != len(EventKinds()) {
		t.Fatalf("the matrix has %d rows, there are %d kinds of event", len(want), len(EventKinds()))
	}
	for _, k := range EventKinds() {
		row, ok := want[k]
		if !ok {
			t.Errorf("no row for %s", k)
			continue
		}
		for i, s := range States() {
			if got := outcome(recordIn(s), events[k]); got != row[i] {
				t.Errorf("%s in %s: got %q, want %q", k, s, got, row[i])
			}
		}
	}
}

// TestLifecycleVariants covers the cells whose outcome depends on more than the state: the
// name, the folder, a failed write, a pending retitle, the generation.
func TestLifecycleVariants(t *testing.T) {
	with := func(s State, fn func(*Record)) Record {
		r := recordIn(s)
		fn(&r)
		return r
	}
	other := Event{Kind: Renamed, Type: "image", BusinessType: "default", Due: t1}
	tests := []struct {
		name string
		rec  Record
		ev   Event
		want string
	}{
		{"a failed write ends the session failed", recordIn(Writing), Event{Kind: Closed, Damage: "no space left on device"}, "failed"},
		{"a temporary name is skipped at close", with(Writing, func(r *Record) { r.Path = "video/a.mp4~" }), events[Closed], "skipped T"},
		{"no extension is skipped at close", with(Writing, func(r *Record) { r.Path = "video/a" }), events[Closed], "skipped T"},
		{"what the service would refuse fails at close", recordIn(Writing), Event{Kind: Closed, Size: 2 << 30}, "failed"},
		{"a ready file moved to another Type is a new asset", with(Ready, func(r *Record) {}), other, "queued C S Do"},
		{"an uploaded file moved to another Type is a new asset", recordIn(Uploaded), other, "queued C S Do"},
		{"a ready file renamed to a temporary name keeps its asset", with(Ready, func(r *Record) { r.Path = "video/a.mp4~" }), other, "ready"},
		{"an uploaded file renamed to a temporary name keeps its asset", with(Uploaded, func(r *Record) { r.Path = "video/a.mp4~" }), events[Renamed], "uploaded"},
		{"a queued file renamed to a temporary name is skipped", with(Queued, func(r *Record) { r.Path = "video/a.mp4~" }), events[Renamed], "skipped C T"},
		{"a damaged file stays failed when renamed", with(Failed, func(r *Record) { r.Damaged = true }), events[Renamed], "failed"},
		{"a damaged file cannot be retried", with(Failed, func(r *Record) { r.Damaged = true }), events[RetryAsked], "!n"},
		{"a failed file without an asset is queued again", with(Failed, func(r *Record) { r.MediaID, r.Upload = "", nil }), events[RetryAsked], "queued S"},
		{"a pending retitle can be retried", with(Ready, func(r *Record) { r.MetaPending = true }), events[RetryAsked], "ready S"},
		{"a pending retitle can fail a try", with(Ready, func(r *Record) { r.MetaPending = true }), events[TryFailed], "ready S"},
		{"a ready file with a pending retitle is scheduled for it", with(Uploaded, func(r *Record) { r.MetaPending = true }), events[AssetReady], "ready S T"},
		{"a pending retitle is not evicted", with(Ready, func(r *Record) { r.MetaPending = true }), events[Evicted], "!e"},
		{"an evicted file is not evicted again", with(Ready, func(r *Record) { r.Evicted = true }), events[Evicted], "!e"},
		{"an evicted file is restored before it is written", with(Ready, func(r *Record) { r.Evicted = true }), events[Wrote], "!"},
		{"an asset for older bytes is refused", recordIn(Creating), Event{Kind: AssetCreated, Gen: 2, Asset: events[AssetCreated].Asset}, "!s"},
		{"a part of another multipart upload is refused", recordIn(Uploading), Event{Kind: PartStored, Multipart: "U0", Part: Part{Number: 1}}, "!s"},
		{"an asset without a MediaId is refused", recordIn(Creating), Event{Kind: AssetCreated, Asset: &Asset{}}, "!"},
		{"a file being created but not yet asked for leaves nothing to look for", with(Creating, func(r *Record) { r.Asked = time.Time{} }), events[Unlinked], "gone C T"},
		{"a file being written sends its parts", early(), events[MultipartStarted], "writing"},
		{"a file being written stores its parts", changed(early(), func(r *Record) { r.Upload.MultipartID = "U" }), events[PartStored], "writing"},
		{"a file closed after its upload while written stores its last parts", changed(early(), func(r *Record) { r.State, r.Upload.MultipartID = Queued, "U" }), events[PartStored], "queued"},
		{"a file being written has one early asset", early(), events[EarlyAsset], "!"},
		{"a file being written and renamed drops its early asset", early(), events[Renamed], "writing C Dv"},
		{"a file being written and written again drops its early asset", early(), events[Wrote], "writing C Dv"},
		{"a file being written and deleted drops its early asset", early(), events[Unlinked], "gone C T Dv"},
		{"an upload started over under a name not uploaded is skipped", with(Uploading, func(r *Record) { r.Path = "video/a.mp4~" }), events[StartOver], "skipped C T Dv"},
		{"a start-over for older bytes is refused", recordIn(Uploading), Event{Kind: StartOver, Gen: 2}, "!s"},
		{"an upload that keeps starting over fails, its asset disposed of", recordIn(Uploading), Event{Kind: StartOver, GiveUp: true, Reason: "OSS holds other bytes"}, "failed C Dv"},
		{"a desktop's name is kept local at close", with(Writing, func(r *Record) { r.Path = "video/._a.mp4" }), events[Closed], "local T"},
		{"a local file cannot be retried", recordIn(Local), events[RetryAsked], "!n"},
		{"a file queued after its upload while written is held", changed(early(), func(r *Record) { r.State = Queued }), events[Held], "writing C"},
		{"a file queued for a retitle of its asset is not held", changed(recordIn(Queued), func(r *Record) { r.MediaID = "m1" }), events[Held], "!"},
		{"a file uploaded while written goes on uploading", changed(early(), func(r *Record) { r.State = Queued }), events[Dispatched], "uploading"},
	}
	for _, tc := range tests {
		if got := outcome(tc.rec, tc.ev); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestLifecycleFields checks what the main events write into the record.
func TestLifecycleFields(t *testing.T) {
	apply := func(r Record, ev Event) (Record, Effects) {
		t.Helper()
		fx, err := transition(&r, &ev, testAdmission{})
		if err != nil {
			t.Fatalf("%s in %s: %v", ev.Kind, r.State, err)
		}
		return r, fx
	}
	r, fx := apply(recordIn(Writing), events[Closed])
	if r.Size != 5 || r.Mode != 0o644 || !r.Mtime.Equal(t0) || !r.Due.Equal(t1) || !fx.Due.Equal(t1) {
		t.Errorf("closed: %+v %+v", r, fx)
	}
	r, _ = apply(recordIn(Queued), Event{Kind: Dispatched, Now: t2})
	if !r.Asked.Equal(t2) {
		t.Errorf("dispatched: Asked %v, want %v", r.Asked, t2)
	}
	r, _ = apply(recordIn(Creating), Event{Kind: TryFailed, Unasked: true, Due: t2, Attempts: 1})
	if !r.Asked.IsZero() || r.State != Creating {
		t.Errorf("a creation refused before the service acted: %+v; want nothing asked", r)
	}
	if r, _ = apply(r, Event{Kind: Dispatched, Now: t2}); !r.Asked.Equal(t2) {
		t.Errorf("asked again: Asked %v, want %v", r.Asked, t2)
	}
	r, _ = apply(recordIn(Creating), events[AssetCreated])
	if r.MediaID != "m2" || r.Upload == nil || r.Upload.Key != "k2" || r.Upload.MultipartID != "" {
		t.Errorf("asset created: %+v", r)
	}
	r, _ = apply(recordIn(Uploading), events[MultipartStarted])
	if r.Upload.MultipartID != "U2" || r.Upload.PartSize != 8<<20 {
		t.Errorf("multipart started: %+v", r.Upload)
	}
	r, _ = apply(changed(recordIn(Uploaded), func(r *Record) { r.FileURL, r.MediaURL = "", "" }), events[AssetReady])
	if r.FileURL != "http://addr" || r.MediaURL != "http://addr" {
		t.Errorf("ready: the address of an asset taken up after a lost answer: %+v", r)
	}
	r, _ = apply(recordIn(Uploading), events[TryFailed])
	if r.Attempts != 3 || !r.Due.Equal(t2) || r.Error != "503" {
		t.Errorf("try failed: %+v", r)
	}
	r, _ = apply(changed(recordIn(Ready), func(r *Record) { r.MetaPending = true }), Event{Kind: MetaUpdated, Reason: "title refused"})
	if r.MetaPending || r.Error != "title refused" {
		t.Errorf("meta updated: %+v", r)
	}
	r, _ = apply(recordIn(Ready), events[Renamed])
	if !r.MetaPending || r.BusinessType != "opening" || r.MediaID != "m1" {
		t.Errorf("a rename keeps the asset and retitles it: %+v", r)
	}
	r, fx = apply(changed(recordIn(Uploading), func(r *Record) { r.StartOvers = 2 }), events[StartOver])
	if r.Gen != 4 || r.MediaID != "" || r.Upload != nil || !r.Asked.IsZero() || !r.Due.Equal(t1) || !fx.Due.Equal(t1) || !strings.Contains(r.Error, "the spool changed") || r.StartOvers != 3 {
		t.Errorf("an upload started over: a new generation, queued again, counted: %+v %+v", r, fx)
	}
	if r, _ = apply(r, events[Wrote]); r.StartOvers != 0 {
		t.Errorf("new bytes count their start-overs from 0: %d", r.StartOvers)
	}
	r, _ = apply(changed(recordIn(Queued), func(r *Record) { r.Due = t2 }), events[Held])
	if r.Gen != 3 || !r.Due.IsZero() {
		t.Errorf("a held file keeps its generation and waits for no due time: %+v", r)
	}
	r, _ = apply(recordIn(Uploading), events[Wrote])
	if r.Gen != 4 || r.MediaID != "" || r.Upload != nil || !r.Asked.IsZero() {
		t.Errorf("a new write session voids the upload: %+v", r)
	}
	// Metadata set before the asset is asked for goes with its creation; after, by an update.
	r, _ = apply(recordIn(Queued), events[MetaSet])
	if r.Meta.Title != "A title" || r.MetaPending {
		t.Errorf("metadata set before the asset: %+v", r)
	}
	r, _ = apply(recordIn(Creating), events[MetaSet])
	if r.MetaPending {
		t.Errorf("metadata set while the asset is asked for: %+v", r)
	}
	r, _ = apply(r, events[AssetCreated])
	if !r.MetaPending || r.MetaSeq != 1 {
		t.Errorf("an asset made without what was set while it was asked for: %+v", r)
	}
	for _, s := range []State{Uploading, Ready} {
		r, _ = apply(recordIn(s), events[MetaSet])
		if r.Meta.Title != "A title" || !r.MetaPending || r.MetaSeq != 1 {
			t.Errorf("metadata set in %s: %+v", s, r)
		}
	}
	seq := r.MetaSeq
	r, _ = apply(r, Event{Kind: MetaSet, Field: "tags", Value: "a,b"})
	r, fx = apply(r, Event{Kind: MetaUpdated, MetaSeq: seq, Now: t1})
	if !r.MetaPending || !fx.Schedule || !r.MetaDone.Equal(t1) {
		t.Errorf("an update that carried an older change leaves the newer one pending: %+v %+v", r, fx)
	}
	r, _ = apply(r, Event{Kind: MetaUpdated, MetaSeq: r.MetaSeq, Now: t2})
	if r.MetaPending || !r.MetaDone.Equal(t2) || r.Meta.Tags != "a,b" {
		t.Errorf("an update that carried the last change: %+v", r)
	}
	_, fx = apply(changed(recordIn(Uploaded), func(r *Record) { r.MetaPending = true }), Event{Kind: MetaUpdated})
	if !fx.Schedule {
		t.Errorf("an uploaded file whose update is done is not handed back for its readiness")
	}
	r, _ = apply(r, events[Wrote])
	if r.Meta.Title != "A title" || r.MetaPending || !r.MetaDone.IsZero() {
		t.Errorf("new bytes keep the metadata for the next asset: %+v", r)
	}
	if _, err := transition(&r, &Event{Kind: MetaSet, Field: "colour", Value: "x"}, nil); !errors.Is(err, ErrBadTransition) {
		t.Errorf("an unknown field: %v", err)
	}
	if fmt.Sprint(Wrote) != "wrote" || fmt.Sprint(EventKind(99)) != "event(99)" {
		t.Errorf("event names: %v %v", Wrote, EventKind(99))
	}
}

// early is a record being written whose asset was made while it is (upload while writing).
func early() Record {
	r := recordIn(Writing)
	r.MediaID, r.Early, r.Upload = "m1", true, &Upload{Endpoint: "http://oss", Bucket: "b", Key: "k"}
	return r
}

func changed(r Record, fn func(*Record)) Record {
	fn(&r)
	return r
}

// TestDisposalMatrix applies every disposal event at every stage, as TestLifecycleMatrix does
// for files: "!" is refused, "done" removes it; otherwise the stage it is left at. A disposal
// that waits keeps the record it waits for, so that a restart waits too.
func TestDisposalMatrix(t *testing.T) {
	at := func(s DisposalStage) Disposal {
		d := Disposal{Seq: 1, Path: "video/a.mp4", Why: Overwritten, MediaID: "m", After: 2}
		switch s {
		case DisposalWaiting:
			d.Waiting = true
		case DisposalRetrying:
			d.Attempts, d.Error = 1, "503"
		}
		return d
	}
	// Columns: due, waiting, retrying.
	want := map[DisposalEventKind][3]string{
		Disposed:      {"done", "!", "done"},
		DisposeFailed: {"retrying 1", "!", "retrying 2"},
		DisposeWaits:  {"waiting", "waiting", "waiting"},
		DisposeWoken:  {"!", "due", "!"},
	}
	for k, row := range want {
		for i, s := range []DisposalStage{DisposalDue, DisposalWaiting, DisposalRetrying} {
			d, stage, err := disposalTransition(at(s), DisposalEvent{Kind: k, Due: time.Unix(100, 0), Reason: "x"})
			got := string(stage)
			switch {
			case err != nil:
				got = "!"
			case stage == DisposalRetrying:
				got = fmt.Sprintf("%s %d", stage, d.Attempts)
			}
			if got != row[i] {
				t.Errorf("%s when %s: got %q, want %q", k, s, got, row[i])
			}
			if err == nil && stage != DisposalDone && k != DisposeWoken && !d.Due.Equal(time.Unix(100, 0)) {
				t.Errorf("%s when %s: due %v", k, s, d.Due)
			}
		}
	}
	if len(want) != len(disposalEventNames)-1 {
		t.Errorf("the matrix has %d rows, there are %d kinds of disposal event", len(want), len(disposalEventNames)-1)
	}
	if _, _, err := disposalTransition(Disposal{Why: Voided}, DisposalEvent{Kind: DisposeWaits}); err == nil {
		t.Error("a disposal that follows no record waits")
	}
}
