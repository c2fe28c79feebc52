package uploader

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/imsrules"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// job is one run of a worker on one record: it takes the record from where it stands as far
// as it goes without waiting (creating → uploading → uploaded), reporting each step as an event.
type job struct {
	q   *Queue  // the router its changes go through, and the parts it asks (credentials, disposals)
	cfg *Config // read only: q's
	gen uint64  // the content generation this run uploads
	log *slog.Logger

	mu  sync.Mutex   // guards rec: parts of a multipart upload commit concurrently
	rec cache.Record // as last committed

	progressed atomic.Bool // this run committed a step or a part
}

// record returns the record as this run last committed it.
func (j *job) record() cache.Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rec
}

// apply reports ev for this run's generation and keeps the record it leads to.
func (j *job) apply(ev cache.Event) error {
	ev.Gen = j.gen
	if ev.Now.IsZero() {
		ev.Now = j.cfg.Clock.Now()
	}
	rec, err := j.q.Apply(j.rec.ID, ev)
	if err != nil {
		return err
	}
	j.mu.Lock()
	if rec.State != j.rec.State || ev.Kind == cache.PartStored {
		j.progressed.Store(true)
	}
	if ev.Kind != cache.PartStored {
		j.rec = rec
	}
	j.mu.Unlock()
	return nil
}

// run takes the steps the record's state calls for, one committed step at a time.
func (j *job) run(ctx context.Context) error {
	// A record asked for before this run may have an asset whose creation answer was lost.
	askedBefore := !j.rec.Asked.IsZero()
	for {
		rec := j.record()
		var err error
		switch {
		case rec.MetaPending && rec.State.Finished():
			err = j.updateMeta(ctx)
		case rec.State == cache.Queued:
			err = j.apply(cache.Event{Kind: cache.Dispatched})
		case rec.State == cache.Creating:
			err = j.create(ctx, askedBefore)
		case rec.State == cache.Uploading:
			err = j.upload(ctx)
		default:
			return nil // uploaded: readiness is checked on its own schedule
		}
		if err != nil {
			return err
		}
	}
}

func (j *job) create(ctx context.Context, askedBefore bool) error {
	if err := ctx.Err(); err != nil {
		return err // the call below is not cancelled once made: none is made for a run that ended
	}
	rec := j.record()
	name, err := imsrules.ParseName(path.Base(rec.Path))
	if err != nil {
		return &permanentError{fmt.Errorf("%s: %w", rec.Path, err)}
	}
	// The spool is the truth: after a crash mid-write the record's size may be older.
	st, err := os.Stat(j.cfg.Store.SpoolPath(rec.ID))
	if err != nil {
		return &permanentError{fmt.Errorf("%s: spool: %w", rec.Path, err)}
	}
	if rec.Asked.IsZero() {
		// The last call was refused before the service acted: this one's intent is committed
		// before it, as the first one's was.
		if err := j.apply(cache.Event{Kind: cache.Dispatched}); err != nil {
			return err
		}
		rec = j.record()
	}
	tag := j.tag()
	req := j.createRequest(&rec, name, st.Size())
	// CreateUploadMedia is not idempotent: a call cut short by a change to the file may still
	// have made an asset, which nobody would know of. So it is let finish; the store disposes
	// of an asset that arrives for older bytes.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	var t *ims.Ticket
	var fields cache.AssetFields
	if askedBefore {
		if t, err = j.findAsked(cctx, tag); err != nil {
			return err
		}
	}
	if t == nil {
		// The intent (Asked) must outlive a power loss as the asset will: else a restart would
		// make a second asset and not look for the first.
		if err := j.cfg.Store.Sync(); err != nil {
			return err
		}
		j.log.Debug("CreateUploadMedia", "type", req.FileInfo.Type, "business_type", req.MediaMetaData.BusinessType)
		if t, err = j.cfg.IMS.CreateUploadMedia(cctx, req); err != nil {
			return businessTypeHint(err, rec)
		}
		// Made with this request's fields (one taken up after a lost answer was made with
		// what is not known for sure).
		fields = sentFields(req.MediaMetaData)
	}
	ev, err := j.assetEvent(cache.AssetCreated, t, rec.Meta, fields)
	if err != nil {
		return err
	}
	j.log.Info("asset created", "media_id", t.MediaID)
	return j.apply(ev)
}

// assetEvent is the event (kind) of an asset made for this run's record: the asset as IMS gave
// it (t), with the fields it was made with. Its upload credentials are kept for the upload.
func (j *job) assetEvent(kind cache.EventKind, t *ims.Ticket, meta cache.Meta, fields cache.AssetFields) (cache.Event, error) {
	now := j.cfg.Clock.Now()
	addr, auth, err := t.Decode(now)
	if err != nil {
		return cache.Event{}, err
	}
	j.q.creds.keep(j.rec.ID, j.gen, auth, now)
	return cache.Event{Kind: kind, Asset: &cache.Asset{
		MediaID: t.MediaID, MediaURL: t.MediaURL, FileURL: t.FileURL, Meta: meta, Fields: fields,
		Upload: cache.Upload{Endpoint: addr.Endpoint, Bucket: addr.Bucket, Key: addr.Key, Region: auth.Region},
	}}, nil
}

// unused leaves the disposal of asset mediaID, made for this run's record but standing for
// none of its bytes: no record will know of it.
func (j *job) unused(mediaID string) error {
	err := j.q.disposer.addNew(cache.Disposal{Path: j.record().Path, Why: cache.Voided, MediaID: mediaID})
	if err != nil {
		j.log.Error("record the disposal of an unused asset", "media_id", mediaID, "err", err)
	}
	return err
}

// targetOf is where in OSS the object of an upload goes.
func targetOf(up *cache.Upload) transfer.Target {
	return transfer.Target{Endpoint: up.Endpoint, Bucket: up.Bucket, Key: up.Key, Region: up.Region}
}

// createRequest is the CreateUploadMedia call for rec's bytes (size, if known): its name and
// folder, what was set on it (Meta), and this content's tag in UserData, by which an asset
// whose creation answer was lost is recognised as this file's.
func (j *job) createRequest(rec *cache.Record, name imsrules.Name, size int64) ims.CreateUploadMediaRequest {
	set := j.cfg.Settings(rec.Path)
	md := ims.MediaMetaData{Title: imsrules.Title(rec), BusinessType: rec.BusinessType,
		Description: rec.Meta.Description, Tags: cmp.Or(rec.Meta.Tags, set.Tags), CateID: cmp.Or(imsrules.CateID(rec.Meta.CateID), set.CateID)}
	ud := map[string]any{"Extend": map[string]string{"imsfs": j.tag()}}
	if set.CallbackURL != "" {
		ud["MessageCallback"] = map[string]string{"CallbackURL": set.CallbackURL}
	}
	req := ims.CreateUploadMediaRequest{
		AppID:    cmp.Or(set.AppID, j.cfg.AppID),
		EntityID: set.EntityID,
		FileInfo: ims.FileInfo{Type: rec.Type, Name: name.Base, Ext: name.Ext, Size: size}, MediaMetaData: md, UserData: ud,
	}
	if set.Workflow != "" && (rec.Type == "video" || rec.Type == "audio") {
		req.PostProcess = &ims.PostProcessConfig{ProcessType: "Workflow", ProcessID: set.Workflow}
	}
	if set.StorageLocation != "" {
		req.UploadTarget = &ims.UploadTargetConfig{StorageType: "oss", StorageLocation: set.StorageLocation}
	}
	return req
}

// tag names this file's content across stores: it goes in the UserData of the asset made for it.
func (j *job) tag() string { return tagOf(j.cfg.Store.Instance(), j.rec.ID, j.gen) }

// listMediaType is the MediaType filter of ListMediaBasicInfos for assets of FileInfo.Type typ:
// its reference takes image, video, audio or text, so other is not filtered on ("").
func listMediaType(typ string) string {
	switch typ {
	case "image", "video", "audio", "text":
		return typ
	}
	return ""
}

// maxFindCalls bounds the listing calls that look for an asset whose creation answer was lost:
// a window of a bulk copy's creations, a hundred assets two calls, comes well within it.
const maxFindCalls = 40

// findAsked looks for the asset an earlier CreateUploadMedia for this content made although its
// answer never arrived (a crash, a cut connection), and takes it up with new upload credentials
// (RefreshUploadMedia). It returns nil when none is found: a new asset is made then.
func (j *job) findAsked(ctx context.Context, tag string) (*ims.Ticket, error) {
	rec := j.record()
	m, err := findTagged(ctx, j.cfg.IMS, j.log, tag, rec.Asked, rec.Type, rec.BusinessType)
	if err != nil {
		return nil, err
	}
	if m == nil {
		j.log.Warn("an asset whose creation answer was lost was not found; making another")
		return nil, nil
	}
	t, err := j.cfg.IMS.RefreshUploadMedia(ctx, m.MediaID)
	if err != nil && !temporary(err) {
		// It cannot be written to: it goes, and another is made.
		j.log.Warn("an asset whose creation answer was lost cannot be taken up: it is deleted, and another made", "media_id", m.MediaID, "err", err)
		if err := j.unused(m.MediaID); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	j.log.Info("taking up an asset whose creation answer was lost", "media_id", m.MediaID)
	// MediaURL and FileURL come with readiness.
	return t, nil
}

// businessTypeHint adds to CreateUploadMedia's refusal of a folder's BusinessType the setting
// that changes it: the references disagree on which types take "general", and the mapping's
// default may be one the service refuses.
func businessTypeHint(err error, rec cache.Record) error {
	var api *ims.APIError
	if !errors.As(err, &api) || api.Temporary() || !strings.Contains(api.Message, "BusinessType") {
		return err
	}
	return &permanentError{fmt.Errorf("%w (the folder %s sends Type %s with BusinessType %s: set another with business-type: for it under folders: in the configuration file, see imsfs config example)",
		err, path.Dir(rec.Path), rec.Type, rec.BusinessType)}
}

// tagOf names one generation of a file's content across stores: it goes in the UserData of the
// asset made for it.
func tagOf(instance string, id, gen uint64) string { return fmt.Sprintf("%s/%d.%d", instance, id, gen) }

// findTagged looks for the asset with tag that a CreateUploadMedia asked at asked may have made.
// ListMediaBasicInfos cannot filter on UserData, so it lists what was made of this Type and
// BusinessType in the time the call can have run in, stopping at the first asset with the tag,
// after maxFindCalls calls at most: first in the window the clocks give, then in the two minutes
// either side of it, for a clock that differs from the service's. Each window is listed whole,
// however many assets a bulk copy made in it (ims.ListWindow). It returns nil when none is found.
func findTagged(ctx context.Context, api IMS, log *slog.Logger, tag string, asked time.Time, typ, business string) (*ims.MediaBasicInfo, error) {
	calls := maxFindCalls
	sec := func(t time.Time) time.Time { return t.Truncate(time.Second) }
	near := ims.Window{Start: sec(asked.Add(-2 * time.Second)), End: sec(asked.Add(createTimeout + 2*time.Second))}
	windows := []ims.Window{near,
		{Start: sec(asked.Add(-2 * time.Minute)), End: near.Start},
		{Start: near.End, End: sec(asked.Add(createTimeout + 2*time.Minute))}}
	req := ims.ListRequest{MediaType: listMediaType(typ), BusinessType: business}
	var found *ims.MediaBasicInfo
	for _, w := range windows {
		err := ims.ListWindow(ctx, api, req, w, &calls, func(_ ims.Window, media []ims.MediaInfo, _ bool) error {
			for _, m := range media {
				var ud struct {
					Extend struct{ Imsfs string } `json:"Extend"`
				}
				if json.Unmarshal([]byte(m.MediaBasicInfo.UserData), &ud) == nil && ud.Extend.Imsfs == tag {
					found = &m.MediaBasicInfo
					return ims.ErrStop
				}
			}
			return nil
		})
		if errors.Is(err, ims.ErrBudget) {
			break
		}
		if err != nil {
			return nil, err
		}
		if found != nil {
			log.Debug("found an asset by its tag", "media_id", found.MediaID, "calls", maxFindCalls-calls)
			return found, nil
		}
	}
	log.Debug("no asset with the tag", "tag", tag, "calls", maxFindCalls-calls)
	return nil, nil
}

// sentFields are the asset's fields a CreateUploadMedia set.
func sentFields(md ims.MediaMetaData) cache.AssetFields {
	f := cache.AssetFields{Title: md.Title, BusinessType: md.BusinessType, Description: md.Description, Tags: md.Tags}
	if md.CateID > 0 {
		f.CateID = strconv.FormatInt(md.CateID, 10)
	}
	return f
}

// updateMeta makes an asset follow its file: the Title and BusinessType of its new name and
// folder, and what was set on it (Meta). Only what differs from the asset's fields as imsfs last
// set them is sent, all of it when those are not known. Its bytes are uploaded whatever happens
// here, so a refusal is noted, not a failure. A field removed from the file is not sent:
// UpdateMediaInfo has no documented way to empty one, so the asset keeps what it had
// (docs/metadata.md says so).
func (j *job) updateMeta(ctx context.Context) error {
	rec := j.record()
	want := cache.AssetFields{Title: imsrules.Title(&rec), BusinessType: rec.BusinessType,
		Description: rec.Meta.Description, Tags: rec.Meta.Tags, CateID: rec.Meta.CateID}
	if want.Title == "" {
		err := &permanentError{fmt.Errorf("%s: %w", rec.Path, imsrules.ErrNoExtension)}
		j.log.Warn("asset not updated", "media_id", rec.MediaID, "err", err)
		return j.apply(cache.Event{Kind: cache.MetaUpdated, Reason: "asset not updated (title, folder or metadata): " + err.Error(), MetaSeq: rec.MetaSeq})
	}
	var had cache.AssetFields
	if rec.AssetFields != nil {
		had = *rec.AssetFields
	}
	u := ims.Update{MediaID: rec.MediaID}
	now := had // the asset's fields once the update went through
	var changed []string
	send := func(name, w, h string, dst *string) {
		if w != "" && w != h {
			*dst = w
			changed = append(changed, name+"="+w)
		}
	}
	send("title", want.Title, had.Title, &u.Title)
	if want.BusinessType != had.BusinessType && want.BusinessType != "" {
		if slices.Contains(imsrules.UpdateBusinessTypes, want.BusinessType) {
			send("business_type", want.BusinessType, had.BusinessType, &u.BusinessType)
		} else {
			j.log.Info("the asset keeps its business type: UpdateMediaInfo sets only subtitles, watermark, opening, ending or general",
				"media_id", rec.MediaID, "business_type", want.BusinessType)
		}
	}
	if want.Description != "" && want.Description != had.Description {
		u.Description = want.Description
		changed = append(changed, fmt.Sprintf("description (%d bytes)", len(want.Description)))
	}
	send("tags", want.Tags, had.Tags, &u.Tags)
	send("cate_id", want.CateID, had.CateID, &u.CateID)
	if len(changed) > 0 {
		if err := j.cfg.IMS.UpdateMediaInfo(ctx, u); err != nil {
			if temporary(err) {
				return err
			}
			j.log.Warn("asset not updated", "media_id", rec.MediaID, "fields", strings.Join(changed, ", "), "err", err)
			return j.apply(cache.Event{Kind: cache.MetaUpdated, Reason: "asset not updated (title, folder or metadata): " + err.Error(), MetaSeq: rec.MetaSeq})
		}
		for _, f := range []struct{ sent, dst *string }{{&u.Title, &now.Title}, {&u.BusinessType, &now.BusinessType},
			{&u.Description, &now.Description}, {&u.Tags, &now.Tags}, {&u.CateID, &now.CateID}} {
			if *f.sent != "" {
				*f.dst = *f.sent
			}
		}
		j.log.Info("asset updated", "media_id", rec.MediaID, "fields", strings.Join(changed, ", "))
	}
	return j.apply(cache.Event{Kind: cache.MetaUpdated, MetaSeq: rec.MetaSeq, Fields: &now})
}

// failed reports a failed run: a permanent failure ends in Failed with the reason; any other
// keeps the record where it stands and schedules another try after a backoff.
func (j *job) failed(err error) {
	rec := j.record()
	attempts := rec.Attempts + 1
	throttled := isThrottled(err)
	if j.progressed.Load() || throttled {
		// The run got somewhere before it failed, or the service only asked it to go slower
		// (the client paces itself for that): the next one starts soon, not after a backoff
		// grown by earlier failures.
		attempts = 1
	}
	unknown := unknowns(rec, err, attempts == 1)
	if unknown >= j.cfg.Retry.Cap {
		err = &permanentError{fmt.Errorf("gave up after %d tries in a row that got nowhere (imsfs does not know this error to pass by itself; imsfs retry tries again): %w", unknown, err)}
	}
	if !temporary(err) {
		if rec.State.Finished() {
			// A refusal of the update is noted by updateMeta; anything else here is ours. The
			// bytes are up: the file stays as it is.
			j.log.Error("asset not updated", "state", rec.State, "media_id", rec.MediaID, "err", err)
			err = j.apply(cache.Event{Kind: cache.MetaUpdated, Reason: err.Error(), MetaSeq: rec.MetaSeq})
		} else {
			// The file's outcome in one line.
			j.log.Error("upload failed", "state", rec.State, "media_id", rec.MediaID, "size", rec.Size, "tries", rec.Retries+1, "err", err)
			j.cfg.Observer.Failed(ErrorCode(err))
			reason := err.Error()
			if err = j.apply(cache.Event{Kind: cache.UploadFailed, Reason: reason}); err == nil {
				j.cfg.Observer.Outcome(rec.Path, false, reason)
			}
		}
		if err != nil && !errors.Is(err, cache.ErrSuperseded) && !errors.Is(err, cache.ErrNotFound) {
			j.log.Error("record the failure", "err", err)
		}
		return
	}
	wait := j.cfg.Retry.Delay(attempts)
	due := j.cfg.Clock.Now().Add(wait)
	reason := fmt.Sprintf("try %d failed, next at %s: %v", rec.Attempts+1, due.UTC().Format(time.RFC3339), err)
	ev := cache.Event{Kind: cache.TryFailed, Attempts: attempts, Unknowns: unknown, Due: due, Reason: reason, Unasked: throttled && rec.State == cache.Creating}
	if uerr := j.apply(ev); uerr != nil {
		if !errors.Is(uerr, cache.ErrSuperseded) && !errors.Is(uerr, cache.ErrNotFound) {
			// The store cannot keep it (a full disk): the schedule in memory does, so that the
			// file is tried again once there is room, not only at the next mount.
			j.log.Error("record the retry; tried again all the same", "at", due.Format(time.TimeOnly), "err", uerr)
			j.q.pool.schedule(rec.ID, due)
		}
		return
	}
	j.cfg.Observer.Retried(ErrorCode(err))
	j.log.Warn("upload try failed, will retry", "try", attempts, "in", wait.Round(time.Millisecond), "state", rec.State, "err", err)
}
