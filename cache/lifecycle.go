package cache

import (
	"errors"
	"fmt"
	"time"
)

// EventKind names something that happened to a file or to its upload. The file system and the
// uploader report events; the table below decides what each does to the record, and Store.Apply
// commits that together with the disposal it leaves. Nothing else changes a record's state.
type EventKind int

const (
	// Wrote: a write session starts (the first write, truncate or fallocate since the file was
	// last closed, or an open with O_TRUNC). The bytes change, so any upload of them is void.
	Wrote EventKind = iota + 1
	// Closed: the last writer closed the file (Size, Mode, Mtime, Damage), or, at mount, a
	// file whose writer is gone. It is queued after the settle delay (Due).
	Closed
	// Renamed: the file moved; Type and BusinessType are its new folder's.
	Renamed
	// Unlinked: the file was deleted.
	Unlinked
	// Replaced: another file (By) was renamed over it.
	Replaced
	// Dispatched: a worker takes the file up; CreateUploadMedia is about to be called (in
	// Creating: called again after a try the service refused before acting, Unasked).
	Dispatched
	// AssetCreated: CreateUploadMedia (or a lost answer, found again) gave Asset.
	AssetCreated
	// MultipartStarted: a multipart upload (Multipart, PartSize) began, or ("") was found gone.
	MultipartStarted
	// PartStored: OSS holds Part of the multipart upload Multipart.
	PartStored
	// ObjectCompleted: the object holds every byte (Size).
	ObjectCompleted
	// AssetReady: IMS reports the asset Normal; URL is its address, for a record that has none.
	AssetReady
	// UploadFailed: a refusal that trying again cannot mend (Reason).
	UploadFailed
	// TryFailed: a try failed for a reason that may pass (Reason); the next is at Due.
	TryFailed
	// RetryAsked: `imsfs retry`, or a mount with other settings: try again now (Due).
	RetryAsked
	// MetaUpdated: UpdateMediaInfo carried a rename to the asset (or refused it: Reason).
	MetaUpdated
	// Evicted: the spool was dropped to bound the cache; reads come from the object.
	Evicted
	// Restored: the bytes of an evicted file are back in its spool.
	Restored
	// EarlyAsset: an asset (Asset) was made for a file still being written sequentially, so
	// that its parts go up as they are written; the close finishes the upload.
	EarlyAsset
	// MetaSet: the user set (or, with an empty Value, removed) the Meta field Field.
	MetaSet
	// StartOver: the upload cannot become the file's asset as it is (Reason): the spool changed
	// while its bytes were sent, by a write no event told of; OSS holds other bytes than were
	// sent; or the asset's upload credentials cannot be renewed. Its asset is disposed of and the
	// file is uploaded again, as a new asset, at Due; or, with GiveUp (the cause keeps coming
	// back), it fails with the reason.
	StartOver
	// Held: a writer opened a file that waits for its upload: it is not uploaded while the
	// writer holds it (its bytes are unchanged so far: the generation stays). The writer's
	// release ends the hold (Closed).
	Held
)

var eventNames = [...]string{"", "wrote", "closed", "renamed", "unlinked", "replaced", "dispatched",
	"asset-created", "multipart-started", "part-stored", "object-completed", "asset-ready",
	"upload-failed", "try-failed", "retry-asked", "meta-updated", "evicted", "restored", "early-asset", "meta-set", "start-over", "held"}

func (k EventKind) String() string {
	if k > 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// EventKinds returns every kind of event, for documentation and tests.
func EventKinds() []EventKind {
	out := make([]EventKind, 0, len(eventNames)-1)
	for k := Wrote; int(k) < len(eventNames); k++ {
		out = append(out, k)
	}
	return out
}

// Event is one thing that happened; the fields a kind does not name are ignored.
type Event struct {
	Kind EventKind
	// Gen is the generation an uploader event is about: one for older bytes is refused with
	// ErrSuperseded [0: whatever the record holds].
	Gen uint64
	Now time.Time // when it happened [time.Now()]
	Due time.Time // Closed, Renamed, RetryAsked, TryFailed, StartOver: when the queue is to take the file up

	Size   int64     // Closed, ObjectCompleted
	Mode   uint32    // Closed
	Mtime  time.Time // Closed
	Atime  time.Time // Closed [unchanged]
	Damage string    // Closed: why the session's bytes are not what the writer meant (a failed write)

	Type, BusinessType string // Renamed
	By                 uint64 // Replaced

	Asset     *Asset // AssetCreated
	Multipart string // MultipartStarted, PartStored
	PartSize  int64  // MultipartStarted
	Part      Part   // PartStored
	URL       string // AssetReady
	Reason    string // UploadFailed, TryFailed, MetaUpdated, StartOver
	GiveUp    bool   // StartOver: fail instead of trying again
	Attempts  int    // TryFailed
	Unknowns  int    // TryFailed: of those, the last in a row that failed for a reason of no known kind
	Unasked   bool   // TryFailed: the service refused CreateUploadMedia before acting (flow control): no asset was made
	// Grouped: the commit may wait a moment (batchDelay) to share a transaction with others.
	// The file system's last closes are: the kernel does not wait for a RELEASE, and a copy of
	// many files closes one after another while creating the next.
	Grouped bool

	Field, Value string       // MetaSet
	MetaSeq      uint64       // MetaUpdated: the change carried (Record.MetaSeq when it was sent) [0: the last]
	Fields       *AssetFields // MetaUpdated: the asset's fields after the update [unknown]
}

// Asset is what CreateUploadMedia answers for a record: the asset and where its bytes go.
type Asset struct {
	MediaID, MediaURL, FileURL string
	Upload                     Upload
	Meta                       Meta        // what the asset was made with: if the file's changed since, the asset follows
	Fields                     AssetFields // what its CreateUploadMedia set
}

// Effects is what a change asks of the queue once it is committed.
type Effects struct {
	Cancel   bool      // withdraw the upload that waits or runs: it is for old bytes, an old place, or a file that is gone
	Schedule bool      // hand the record to the queue at Due
	Due      time.Time //
	Settled  bool      // the record is ready, skipped, local or gone: an overwritten asset's disposal waiting on it may go
	Removed  bool      // the record is gone
	Disposal uint64    // the disposal the change committed (its Seq), if any

	part *Part // PartStored: the part to commit (the record itself is not rewritten)
}

var (
	// ErrBadTransition means an event that has no meaning in the record's state.
	ErrBadTransition = errors.New("event not allowed in this state")
	// ErrSuperseded means an uploader event is about bytes the file no longer holds.
	ErrSuperseded = errors.New("the file changed since")
	// ErrNothingToRetry means a file has no upload to try again.
	ErrNothingToRetry = errors.New("nothing to retry")
	// ErrNotEvictable means the file's bytes are not only in the cloud now.
	ErrNotEvictable = errors.New("not evictable now")
)

// Admission says which files may become assets: the rules on names (temporary names, no
// extension), formats and sizes that imsrules.Admitter keeps.
type Admission interface {
	// Refuse returns why the file r stands for (its Path, Type, BusinessType and Size) is not
	// uploaded, and as what: Skipped for a name that is not an asset's (renamed, it may be one),
	// Local for a name desktops and systems leave (kept, never an asset's, no sidecar),
	// Failed for what the service would refuse (too big). An empty State admits it.
	Refuse(r *Record) (State, string)
}

type admitAll struct{}

func (admitAll) Refuse(*Record) (State, string) { return "", "" }

// step is one cell of the table: it changes r (and says what follows in fx), or refuses.
type step func(r *Record, ev *Event, fx *Effects, adm Admission) error

// every is every state.
var every = States()

// table is the upload life-cycle: for each event, the states it applies in and what it does
// there. A pair the table does not list is refused with ErrBadTransition. The disposal a change
// leaves (an asset that no file's bytes stand for any more) is derived from the change by
// disposalOf and committed with it.
var table = map[EventKind]map[State]step{
	Wrote:            on(every, startSession),
	Closed:           on(every, endSession),
	Renamed:          on(every, follow),
	Unlinked:         on(every, remove),
	Replaced:         on(every, remove),
	Dispatched:       on([]State{Queued, Creating}, dispatch),
	AssetCreated:     on([]State{Creating}, created),
	MultipartStarted: on([]State{Writing, Uploading}, multipartStarted),
	PartStored:       on([]State{Writing, Queued, Uploading}, partStored),
	ObjectCompleted:  on([]State{Uploading}, completed),
	AssetReady:       on([]State{Uploaded}, ready),
	UploadFailed:     on([]State{Creating, Uploading, Uploaded}, fail),
	TryFailed:        on([]State{Queued, Creating, Uploading, Uploaded, Ready}, tryFailed),
	RetryAsked:       on(every, retry),
	MetaUpdated:      on([]State{Uploaded, Ready}, metaUpdated),
	Evicted:          on([]State{Ready}, evict),
	Restored:         on(every, restore),
	EarlyAsset:       on([]State{Writing}, earlyAsset),
	MetaSet:          on(every, metaSet),
	StartOver:        on([]State{Uploading}, startOver),
	Held:             on([]State{Queued}, hold),
}

func on(states []State, s step) map[State]step {
	m := make(map[State]step, len(states))
	for _, st := range states {
		m[st] = s
	}
	return m
}

// transition applies ev to r by the table.
func transition(r *Record, ev *Event, adm Admission) (Effects, error) {
	var fx Effects
	if ev.Gen != 0 && ev.Gen != r.Gen {
		return fx, fmt.Errorf("%s for generation %d, the file is at %d: %w", ev.Kind, ev.Gen, r.Gen, ErrSuperseded)
	}
	s, ok := table[ev.Kind][r.State]
	if !ok {
		return fx, fmt.Errorf("%s in state %s: %w", ev.Kind, r.State, ErrBadTransition)
	}
	if ev.Now.IsZero() {
		ev.Now = time.Now()
	}
	if adm == nil {
		adm = admitAll{}
	}
	return fx, s(r, ev, &fx, adm)
}

// admit queues a record whose content is complete, or skips it when its name cannot become an
// asset (it does, once renamed to one that can), or fails it when the service would refuse it.
func admit(r *Record, due time.Time, fx *Effects, adm Admission) {
	r.Attempts, r.Error = 0, ""
	if state, why := adm.Refuse(r); state != "" {
		r.State, r.Error, r.Due = state, why, time.Time{}
		fx.Settled = state.Kept()
		return
	}
	r.State, r.Due = Queued, due
	fx.Schedule, fx.Due = true, due
}

// void starts a new generation: the upload made or under way describes older bytes.
func void(r *Record, fx *Effects) {
	r.newGeneration()
	fx.Cancel = true
}

func startSession(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if r.Evicted {
		return fmt.Errorf("%s: the bytes of an evicted file must be restored before they change: %w", r.Path, ErrBadTransition)
	}
	void(r, fx)
	r.State, r.StartOvers = Writing, 0
	return nil
}

func endSession(r *Record, ev *Event, fx *Effects, adm Admission) error {
	if r.State != Writing {
		return nil // no session to end: the upload goes on
	}
	r.Size, r.Mode, r.Mtime = ev.Size, ev.Mode, ev.Mtime
	if !ev.Atime.IsZero() {
		r.Atime = ev.Atime
	}
	if ev.Damage != "" {
		if r.MediaID != "" {
			void(r, fx) // made while it was written: there is no complete file for it
		}
		r.State, r.Damaged, r.Attempts = Failed, true, 0
		r.Error = "not uploaded: a write failed (" + ev.Damage + "); write the file again to upload it"
		return nil
	}
	due := ev.Due
	if r.Early {
		// The settle delay is there not to make an asset a rename would void; this one is made.
		due = ev.Now
	}
	admit(r, due, fx, adm)
	return nil
}

// follow makes a moved file's asset follow its new name and folder (the name gives the Title,
// the folder the Type and BusinessType). An unfinished upload starts again under the new name.
// A finished one keeps its asset, retitled, unless it moved to another Type (a new asset), or
// to a name that is not uploaded (an editor's backup), which changes nothing. A file being
// written is queued by its last close.
func follow(r *Record, ev *Event, fx *Effects, adm Admission) error {
	switch {
	case r.State == Writing && r.MediaID != "":
		void(r, fx) // the asset made while it was written has the old name and place
	case r.State == Writing:
	case r.State.Finished():
		probe := *r
		probe.Type, probe.BusinessType = ev.Type, ev.BusinessType
		if state, _ := adm.Refuse(&probe); state != "" {
			return nil // a name or place that is not an asset's: the asset stays as it is
		}
		if r.Type == ev.Type {
			r.BusinessType = ev.BusinessType
			r.metaChanged()
			fx.Schedule, fx.Due = true, ev.Now
			return nil
		}
		void(r, fx)
		r.Type, r.BusinessType = ev.Type, ev.BusinessType
		admit(r, ev.Due, fx, adm)
		return nil
	case r.State == Failed && r.Damaged:
	case r.State == Queued && r.MediaID == "" || r.State.Kept():
		fx.Cancel = true // re-armed: the settle delay starts again
		r.Type, r.BusinessType = ev.Type, ev.BusinessType
		admit(r, ev.Due, fx, adm)
		return nil
	default: // creating, uploading, failed
		void(r, fx)
		r.Type, r.BusinessType = ev.Type, ev.BusinessType
		admit(r, ev.Due, fx, adm)
		return nil
	}
	r.Type, r.BusinessType = ev.Type, ev.BusinessType
	return nil
}

func remove(r *Record, ev *Event, fx *Effects, _ Admission) error {
	fx.Cancel, fx.Removed, fx.Settled = true, true, true
	return nil
}

func dispatch(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if r.MediaID != "" && r.Upload != nil {
		r.State = Uploading // made while the file was written: its upload goes on
		return nil
	}
	r.State = Creating
	if r.Asked.IsZero() {
		// The intent is committed before the call: if its answer is lost, the next try looks.
		r.Asked = ev.Now.UTC()
	}
	return nil
}

func created(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if ev.Asset == nil || ev.Asset.MediaID == "" {
		return fmt.Errorf("%s: %s without an asset: %w", r.Path, ev.Kind, ErrBadTransition)
	}
	up := ev.Asset.Upload
	up.MultipartID, up.PartSize = "", 0
	r.State, r.Error = Uploading, ""
	r.MediaID, r.MediaURL, r.FileURL, r.Upload = ev.Asset.MediaID, ev.Asset.MediaURL, ev.Asset.FileURL, &up
	r.AssetFields = assetFields(ev.Asset)
	followMeta(r, ev.Asset)
	return nil
}

// assetFields are what an asset was made with, if the creation said (an asset taken up after a
// lost answer was made with what is not known).
func assetFields(a *Asset) *AssetFields {
	if a.Fields == (AssetFields{}) {
		return nil
	}
	f := a.Fields
	return &f
}

// followMeta: fields set on the file while its asset was being made were not in the request.
func followMeta(r *Record, a *Asset) {
	if a.Meta != r.Meta {
		r.metaChanged()
	}
}

func earlyAsset(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if ev.Asset == nil || ev.Asset.MediaID == "" || r.MediaID != "" {
		return fmt.Errorf("%s: %s: %w", r.Path, ev.Kind, ErrBadTransition)
	}
	up := ev.Asset.Upload
	up.MultipartID, up.PartSize = "", 0
	r.MediaID, r.MediaURL, r.FileURL, r.Upload, r.Early = ev.Asset.MediaID, ev.Asset.MediaURL, ev.Asset.FileURL, &up, true
	r.AssetFields = assetFields(ev.Asset)
	followMeta(r, ev.Asset)
	if r.Asked.IsZero() {
		r.Asked = ev.Now.UTC()
	}
	return nil
}

func multipartStarted(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if r.Upload == nil {
		return fmt.Errorf("%s: no upload address: %w", r.Path, ErrBadTransition)
	}
	r.Upload.MultipartID, r.Upload.PartSize = ev.Multipart, ev.PartSize
	return nil
}

func partStored(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if r.Upload == nil || r.Upload.MultipartID == "" || r.Upload.MultipartID != ev.Multipart {
		return fmt.Errorf("%s: part %d of multipart upload %q, the record has %v: %w", r.Path, ev.Part.Number, ev.Multipart, r.Upload, ErrSuperseded)
	}
	p := ev.Part
	fx.part = &p
	return nil
}

func completed(r *Record, ev *Event, fx *Effects, _ Admission) error {
	r.State, r.Size, r.Error, r.Attempts, r.Due, r.Uploaded = Uploaded, ev.Size, "", 0, time.Time{}, ev.Now.UTC()
	r.StartOvers = 0
	// Readiness is checked on a schedule from now on.
	fx.Schedule, fx.Due = true, ev.Now
	return nil
}

func ready(r *Record, ev *Event, fx *Effects, _ Admission) error {
	r.State, r.Error, r.Attempts, r.Due = Ready, "", 0, time.Time{}
	// An asset taken up after a lost answer has no URLs yet: its address.
	if r.FileURL == "" {
		r.FileURL = ev.URL
	}
	if r.MediaURL == "" {
		r.MediaURL = ev.URL
	}
	fx.Settled = true
	if r.MetaPending {
		fx.Schedule, fx.Due = true, ev.Now
	}
	return nil
}

func fail(r *Record, ev *Event, fx *Effects, _ Admission) error {
	r.State, r.Error, r.Due = Failed, ev.Reason, time.Time{}
	return nil
}

func tryFailed(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if r.State == Ready && !r.MetaPending {
		return fmt.Errorf("%s: nothing was being tried: %w", r.Path, ErrBadTransition)
	}
	r.Attempts, r.Unknowns, r.Due, r.Error = ev.Attempts, ev.Unknowns, ev.Due, ev.Reason
	r.Retries++
	if ev.Unasked && r.State == Creating {
		r.Asked = time.Time{} // nothing to look for: the next call is asked anew
	}
	fx.Schedule, fx.Due = true, ev.Due
	return nil
}

func retry(r *Record, ev *Event, fx *Effects, adm Admission) error {
	switch {
	case r.State == Failed && r.Damaged:
		return fmt.Errorf("%w: a write to it failed, so its bytes are not what was meant; write it again", ErrNothingToRetry)
	case r.State == Failed:
		if r.MediaID != "" || r.Upload != nil {
			void(r, fx) // where it failed may be the asset itself (PrepareFail): start clean
		}
		r.StartOvers = 0 // asked for: the count of start-overs begins again
		admit(r, ev.Due, fx, adm)
	case r.State == Writing:
		return fmt.Errorf("%w: it is being written; it is uploaded when its last writer closes it", ErrNothingToRetry)
	case r.State.Kept():
		return fmt.Errorf("%w: %s", ErrNothingToRetry, r.Error)
	case r.State == Ready && !r.MetaPending:
		return fmt.Errorf("%w: it is ready", ErrNothingToRetry)
	default:
		r.Due, r.Attempts = ev.Due, 0
		fx.Schedule, fx.Due = true, ev.Due
	}
	return nil
}

func metaUpdated(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if !r.MetaPending {
		return nil
	}
	r.Error, r.Attempts, r.Due = ev.Reason, 0, time.Time{}
	if ev.Reason == "" {
		r.MetaDone = ev.Now.UTC()
	}
	if ev.Fields != nil {
		f := *ev.Fields
		r.AssetFields = &f
	}
	if ev.MetaSeq != 0 && ev.MetaSeq != r.MetaSeq {
		// Changed again while the update was on its way: that change is sent next.
		fx.Schedule, fx.Due = true, ev.Now
		return nil
	}
	r.MetaPending = false
	if r.State == Uploaded {
		// Its readiness is waited for from now: it was not while the update was pending.
		fx.Schedule, fx.Due = true, ev.Now
	}
	return nil
}

// metaSet keeps what the user set for the asset. Before the asset is made, it goes with
// CreateUploadMedia; once it is, the asset follows by UpdateMediaInfo once its bytes are up.
func metaSet(r *Record, ev *Event, fx *Effects, _ Admission) error {
	f := r.Meta.field(ev.Field)
	if f == nil {
		return fmt.Errorf("%s: no asset field %q: %w", r.Path, ev.Field, ErrBadTransition)
	}
	if *f == ev.Value {
		return nil
	}
	*f = ev.Value
	if r.MediaID == "" {
		return nil // a creation on its way sees the change when it answers (created)
	}
	r.metaChanged()
	if r.State.Finished() {
		fx.Schedule, fx.Due = true, ev.Now
	}
	return nil
}

// startOver starts a new generation for the same bytes: the asset is disposed of (it stands for
// no bytes of the file's), and the file is queued as after a close, or failed. StartOvers counts
// them, across generations, so that the uploader backs off and gives up.
func startOver(r *Record, ev *Event, fx *Effects, adm Admission) error {
	n := r.StartOvers + 1
	void(r, fx)
	r.StartOvers = n
	if ev.GiveUp {
		r.State, r.Error = Failed, ev.Reason
		return nil
	}
	admit(r, ev.Due, fx, adm)
	if r.State == Queued {
		r.Error = "uploading again: " + ev.Reason
	}
	return nil
}

// hold keeps a queued file from being uploaded while a writer holds it: the writer's release
// queues it again (Closed), and a write makes it new bytes (Wrote).
func hold(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if r.MediaID != "" && !r.Early {
		return fmt.Errorf("%s: %s with an asset: %w", r.Path, ev.Kind, ErrBadTransition)
	}
	r.State, r.Due = Writing, time.Time{}
	fx.Cancel = true
	return nil
}

func evict(r *Record, ev *Event, fx *Effects, _ Admission) error {
	if r.Evicted || r.MetaPending || r.MediaID == "" {
		return ErrNotEvictable
	}
	r.Evicted = true
	return nil
}

func restore(r *Record, ev *Event, fx *Effects, _ Admission) error {
	r.Evicted = false
	return nil
}
