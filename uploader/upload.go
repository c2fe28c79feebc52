package uploader

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// uploadRun is the state of one upload step: the credentials it signs with, and one refresh at
// a time however many parts find them stale.
type uploadRun struct {
	j         *job
	creds     *liveCreds
	target    transfer.Target
	early     *partCheck // the check of the parts sent while the file was written, begun early
	refreshMu sync.Mutex
	refreshes int // protected by refreshMu: refreshes this step made
}

func (u *uploadRun) sign() transfer.Credentials { return u.creds.get() }

// fresh renews the credentials when they are stale or were refused; parts in flight wait for
// one refresh rather than each making its own.
func (u *uploadRun) fresh(ctx context.Context) error {
	u.refreshMu.Lock()
	defer u.refreshMu.Unlock()
	now := u.j.cfg.Clock.Now()
	if !u.creds.stale(now) {
		return nil
	}
	if u.refreshes >= u.j.cfg.Retry.Refreshes {
		return fmt.Errorf("upload credentials of %s: %d refreshes in one try did not give credentials OSS takes", u.j.rec.MediaID, u.refreshes)
	}
	u.refreshes++
	mediaID := u.j.record().MediaID
	// A refresh that fails for a while is tried again here, as a part is: the parts sent so far
	// stand, and the file does not go back to the queue's backoff for one lost answer.
	var t *ims.Ticket
	err := u.j.cfg.Retry.inStep(ctx, u.j.cfg.Clock, nil, func() (err error) {
		t, err = u.j.cfg.IMS.RefreshUploadMedia(ctx, mediaID)
		return err
	})
	if err != nil {
		if !temporary(err) {
			return &refreshRefused{mediaID: mediaID, err: err}
		}
		return err
	}
	_, auth, err := t.Decode(now)
	if err != nil {
		return err
	}
	u.creds.set(auth, now)
	u.j.log.Info("upload credentials refreshed", "media_id", mediaID, "expires", auth.Expires)
	return nil
}

// refreshRefused: IMS will not renew the upload credentials of an asset (VOD documents that an
// image's cannot be): its upload cannot go on, and starts over with a new asset.
type refreshRefused struct {
	mediaID string
	err     error
}

func (e *refreshRefused) Error() string {
	return fmt.Sprintf("RefreshUploadMedia refused new upload credentials for asset %s: %v", e.mediaID, e.err)
}
func (e *refreshRefused) Unwrap() error { return e.err }

// call runs an OSS request with fresh credentials, renewing them and trying again when OSS
// says they expired.
func (u *uploadRun) call(ctx context.Context, fn func() error) error {
	for {
		if err := u.fresh(ctx); err != nil {
			return err
		}
		err := fn()
		if !transfer.Expired(err) {
			return err
		}
		u.j.log.Info("upload credentials expired", "err", err)
		u.creds.expire()
	}
}

// upload sends the spooled bytes to the object in the record's upload address, resuming a
// multipart upload from its stored parts, and reports the object complete once it is proved to
// hold them: the CRC-64 OSS reports for the object is that of the bytes read from the spool in
// this run, and the spool has not changed since before the first of them was read. A spool that
// changed (a write no event told of) or an object of other bytes starts over with a new asset.
func (j *job) upload(ctx context.Context) error {
	rec := j.record()
	f, err := os.Open(j.cfg.Store.SpoolPath(rec.ID))
	if err != nil {
		return &permanentError{fmt.Errorf("%s: open spool: %w", rec.Path, err)}
	}
	defer f.Close()
	before, err := cache.SpoolIDOf(f)
	if err != nil {
		return fmt.Errorf("%s: stat spool: %w", rec.Path, err)
	}
	var early *partCheck
	if rec.Early {
		// Parts sent while the file was written: those left and in flight are stored first.
		// The ones stored already are checked against the spool meanwhile: over a link slow
		// per request, the wait for the last ones is the longer of the two.
		early = j.startPartCheck(rec)
		j.q.takeOver(ctx, rec.ID, rec.Size)
		if r, err := j.cfg.Store.GetID(rec.ID); err == nil && r.Gen == j.gen {
			j.mu.Lock()
			j.rec = r
			j.mu.Unlock()
			rec = r
		}
	}
	if rec.Upload == nil {
		return &permanentError{fmt.Errorf("%s: record is uploading but holds no upload address", rec.Path)}
	}
	size := before.Size
	p := &progress{}
	p.total.Store(size)
	j.q.progress.Store(rec.ID, p)
	up := rec.Upload
	u := &uploadRun{j: j, creds: j.q.creds.of(rec.ID, j.gen), early: early,
		target: targetOf(up)}
	var object, read uint64
	if j.cfg.onePut(size) && up.MultipartID == "" {
		err = u.call(ctx, func() (err error) {
			p.sent.Store(0)
			object, err = j.cfg.Objects.Put(ctx, u.target, u.sign, j.q.bw.reader(ctx, io.NewSectionReader(f, 0, size)), size, func(n int64) { p.sent.Add(n); j.cfg.Observer.Sent(n) })
			return err
		})
		read = object // Put checked it against the bytes it read
		var crc *transfer.CRCError
		if errors.As(err, &crc) && !crc.Missing {
			// OSS made the object of other bytes: the asset may have seen them already.
			return j.startOver(crc.Error(), false)
		}
	} else {
		object, read, err = u.multipart(ctx, f, size, p)
	}
	var refused *refreshRefused
	if errors.As(err, &refused) {
		return j.startOver(refused.Error(), false)
	}
	if err != nil {
		return err
	}
	if object != read {
		return j.startOver(fmt.Sprintf("OSS reports CRC-64 %d for the object, the bytes read from the spool for its parts make %d", object, read), false)
	}
	if why := before.ChangedSince(f); why != "" {
		return j.startOver(why+" while it was sent, by a write imsfs was not told of", true)
	}
	if err := j.apply(cache.Event{Kind: cache.ObjectCompleted, Size: size}); err != nil {
		return err
	}
	j.log.Debug("object complete", "size", size, "crc64", object)
	if !rec.Asked.IsZero() {
		j.cfg.Observer.Uploaded(j.cfg.Clock.Since(rec.Asked))
	}
	return nil
}

// maxStartOvers is how many times in a row an upload of the same bytes may start over with a
// new asset for a cause that should not repeat (OSS holding other bytes than were sent, refused
// credentials) before the file fails with the cause: an endpoint that keeps doing it is not OSS.
const maxStartOvers = 5

// startOver disposes of the upload's asset and uploads the file again as a new one: what was
// sent is not what its spool holds (or cannot be finished), for the reason why. A cause that
// may repeat by itself (again true: a write imsfs was not told of) is never given up on; each
// start-over waits longer than the last.
func (j *job) startOver(why string, again bool) error {
	n := j.record().StartOvers + 1
	giveUp := !again && n >= maxStartOvers
	ev := cache.Event{Kind: cache.StartOver, Reason: why, Due: j.cfg.Clock.Now().Add(j.cfg.Retry.Delay(n)), GiveUp: giveUp}
	if giveUp {
		ev.Reason = fmt.Sprintf("%s (the upload started over %d times for this; imsfs retry tries again)", why, n)
		j.log.Error("upload failed", "err", ev.Reason)
	} else {
		j.log.Warn("the upload starts over with a new asset", "why", why, "start_overs", n)
	}
	if err := j.apply(ev); err != nil {
		return err
	}
	return fmt.Errorf("%s: %w", why, cache.ErrSuperseded)
}

// resumeParts returns the stored parts that OSS still holds, as ListParts says (a crash may
// have stored a part OSS never kept, or lost one it did): only those are not sent again.
func (u *uploadRun) resumeParts(ctx context.Context, uploadID string, stored []cache.Part) ([]cache.Part, error) {
	if len(stored) == 0 {
		return nil, nil
	}
	var held []transfer.Part
	err := u.call(ctx, func() (err error) {
		held, err = u.j.cfg.Objects.ListParts(ctx, u.target, u.sign, uploadID)
		return err
	})
	if err != nil {
		return nil, err
	}
	byNumber := map[int]transfer.Part{}
	for _, h := range held {
		byNumber[h.Number] = h
	}
	var keep []cache.Part
	for _, part := range stored {
		if h, ok := byNumber[part.Number]; ok && sameETag(h.ETag, part.ETag) && h.Size == part.Size {
			keep = append(keep, part)
		}
	}
	if len(keep) != len(stored) {
		u.j.log.Warn("OSS does not hold every stored part; sending the rest again", "stored", len(stored), "held", len(keep))
	}
	return keep, nil
}

func sameETag(a, b string) bool { return strings.EqualFold(strings.Trim(a, `"`), strings.Trim(b, `"`)) }

// multipart sends the parts not stored yet and completes the object. It returns the object's
// CRC-64 as OSS reports it, and the one its parts make as read from the spool in this run (a
// stored part is checked against the spool, by the CRC-32C taken when it was sent).
func (u *uploadRun) multipart(ctx context.Context, f *os.File, size int64, p *progress) (object, read uint64, err error) {
	j := u.j
	rec, err := u.started(ctx, size)
	if err != nil {
		return 0, 0, err
	}
	uploadID, partSize := rec.Upload.MultipartID, rec.Upload.PartSize
	count := int((size + partSize - 1) / partSize)
	if count > j.cfg.MaxParts {
		// Parts sent while the file was written, of a size that takes too many now.
		j.log.Info("the file outgrew its parts; the multipart upload starts over with bigger ones", "parts", count)
		if err := j.apply(cache.Event{Kind: cache.MultipartStarted, Multipart: ""}); err != nil {
			return 0, 0, err
		}
		return u.multipart(ctx, f, size, p)
	}
	ps := &partSending{uploadID: uploadID, partSize: partSize, size: size, count: count, done: make(map[int]cache.Part, count)}
	err = u.storedParts(ctx, f, rec, ps)
	if err == nil {
		p.sent.Store(ps.sent)
		err = u.sendParts(ctx, f, ps, p)
	}
	if err == nil {
		err = ctx.Err()
	}
	var parts []cache.Part
	if err == nil {
		parts, object, err = u.complete(ctx, ps)
	}
	if transfer.Gone(err) {
		return u.gone(ctx, f, size, count)
	}
	if err != nil {
		return 0, 0, err
	}
	return object, combinedCRC(parts), nil
}

// partSending is one multipart upload's parts: how they cut the file, and those stored.
type partSending struct {
	uploadID       string
	partSize, size int64
	count          int

	mu   sync.Mutex         // parts finish concurrently
	done map[int]cache.Part // protected by mu: stored, by number
	sent int64              // what the parts stored before this step hold
}

func (ps *partSending) length(n int) int64 { return min(ps.partSize, ps.size-int64(n-1)*ps.partSize) }

// started returns the record with its multipart upload, initiated (and committed) if it has none.
func (u *uploadRun) started(ctx context.Context, size int64) (cache.Record, error) {
	j := u.j
	if rec := j.record(); rec.Upload.MultipartID != "" {
		return rec, nil
	}
	var id string
	err := u.call(ctx, func() (err error) {
		id, err = j.cfg.Objects.Initiate(ctx, u.target, u.sign)
		return err
	})
	if err != nil {
		return cache.Record{}, err
	}
	if err := j.apply(cache.Event{Kind: cache.MultipartStarted, Multipart: id, PartSize: j.cfg.partSize(size)}); err != nil {
		return cache.Record{}, err
	}
	return j.record(), nil
}

// storedParts fills ps with the parts stored before this step that still hold the spool's bytes
// and that OSS still has.
func (u *uploadRun) storedParts(ctx context.Context, f *os.File, rec cache.Record, ps *partSending) error {
	j := u.j
	stored, err := j.cfg.Store.Parts(rec.ID, j.gen)
	if err != nil {
		return err
	}
	if len(stored) > 0 {
		before := len(stored)
		stored = u.checkParts(f, stored, ps.partSize)
		if len(stored) < before {
			j.log.Info("parts written again after they were sent go again", "parts", before-len(stored))
		}
	}
	stored, err = u.resumeParts(ctx, ps.uploadID, stored)
	if err != nil {
		return err
	}
	for _, part := range stored {
		if part.Number >= 1 && part.Number <= ps.count && part.Size == ps.length(part.Number) {
			ps.done[part.Number] = part
			ps.sent += part.Size
		}
	}
	return nil
}

// sendParts sends the parts ps does not hold, PartWorkers at once, each committed as it is
// stored, until all are or one fails.
func (u *uploadRun) sendParts(ctx context.Context, f *os.File, ps *partSending, p *progress) error {
	j := u.j
	var todo []int
	for n := 1; n <= ps.count; n++ {
		if _, ok := ps.done[n]; !ok {
			todo = append(todo, n)
		}
	}
	var (
		firstErr error // protected by ps.mu
		wg       sync.WaitGroup
		slots    = make(chan struct{}, j.cfg.PartWorkers)
	)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, n := range todo {
		if pctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-pctx.Done():
			continue
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			defer func() { <-slots }()
			part, err := u.part(pctx, f, ps.uploadID, n, ps.partSize, ps.length(n), p)
			if err == nil {
				// Committed at once, so that a restart resumes after this part.
				err = j.apply(cache.Event{Kind: cache.PartStored, Multipart: ps.uploadID, Part: part})
			}
			ps.mu.Lock()
			defer ps.mu.Unlock()
			if err == nil {
				ps.done[n] = part
			} else if firstErr == nil {
				firstErr = err
				cancel()
			}
		}(n)
	}
	wg.Wait()
	return firstErr
}

// complete completes the multipart upload of ps's parts, in order; it returns them and the
// object's CRC-64.
func (u *uploadRun) complete(ctx context.Context, ps *partSending) (parts []cache.Part, object uint64, err error) {
	parts = make([]cache.Part, 0, ps.count)
	for _, part := range ps.done {
		parts = append(parts, part)
	}
	sort.Slice(parts, func(a, b int) bool { return parts[a].Number < parts[b].Number })
	tparts := make([]transfer.Part, len(parts))
	for i, part := range parts {
		tparts[i] = transfer.Part{Number: part.Number, ETag: part.ETag, Size: part.Size}
	}
	err = u.call(ctx, func() (err error) {
		object, err = u.j.cfg.Objects.Complete(ctx, u.target, u.sign, ps.uploadID, tparts)
		return err
	})
	return parts, object, err
}

// combinedCRC is the CRC-64 of an object made of parts, in number order.
func combinedCRC(parts []cache.Part) uint64 {
	sorted := append([]cache.Part(nil), parts...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Number < sorted[b].Number })
	var crc uint64
	for _, p := range sorted {
		crc = transfer.CombineCRC(crc, p.CRC64, p.Size)
	}
	return crc
}

// part sends part n, trying it again on its own a few times when it fails for a reason that may
// pass, so that one bad request does not send the whole file back to the queue.
func (u *uploadRun) part(ctx context.Context, f *os.File, uploadID string, n int, partSize, length int64, p *progress) (cache.Part, error) {
	var stored transfer.Part
	var sum *summer
	err := u.j.cfg.Retry.inStep(ctx, u.j.cfg.Clock, transfer.Gone, func() error {
		var sent int64
		err := u.call(ctx, func() (err error) {
			p.sent.Add(-sent) // what a failed try sent is sent again
			sent = 0
			sum = &summer{r: io.NewSectionReader(f, int64(n-1)*partSize, length), h: crc32.New(castagnoli)}
			stored, err = u.j.cfg.Objects.UploadPart(ctx, u.target, u.sign, uploadID, n, u.j.q.bw.reader(ctx, sum), length, func(k int64) { sent += k; p.sent.Add(k); u.j.cfg.Observer.Sent(k) })
			return err
		})
		if err != nil {
			p.sent.Add(-sent)
		}
		return err
	})
	if err != nil {
		return cache.Part{}, err
	}
	return cache.Part{Number: n, ETag: stored.ETag, Size: length, Sum: sum.sum(length), CRC64: stored.CRC64}, nil
}

// gone handles a multipart upload OSS no longer knows. If the object already holds what it was
// to make (its Complete went through, and the answer was lost to a crash or a cut connection),
// the upload is done: it returns the object's CRC-64 and the one its parts make. Otherwise it
// starts again from the first part, on the next try.
func (u *uploadRun) gone(ctx context.Context, f *os.File, size int64, count int) (object, read uint64, err error) {
	j := u.j
	rec := j.record()
	parts, err := j.cfg.Store.Parts(rec.ID, j.gen)
	if err != nil {
		return 0, 0, err
	}
	if len(parts) == count && rec.Upload.PartSize > 0 {
		// Its parts must still be the spool's, as any stored part is before it completes.
		if parts = verifyParts(f, parts, rec.Upload.PartSize); len(parts) == count {
			var o transfer.Object
			err := u.call(ctx, func() (err error) {
				o, err = j.cfg.Objects.Head(ctx, u.target, u.sign)
				return err
			})
			if err == nil && o.Size == size && sameETag(o.ETag, multipartETag(parts)) {
				j.log.Info("the multipart upload was completed before; the object is whole", "key", u.target.Key)
				return o.CRC64, combinedCRC(parts), nil
			}
		}
	}
	j.log.Warn("the multipart upload is gone from OSS; starting it again", "key", u.target.Key)
	if err := j.apply(cache.Event{Kind: cache.MultipartStarted, Multipart: ""}); err != nil {
		return 0, 0, err
	}
	// Not the OSS error itself: that one (404) would read as a permanent failure.
	return 0, 0, errors.New("the multipart upload of " + u.target.Key + " is gone from OSS; it starts again")
}

// multipartETag is the ETag OSS gives an object made of these parts: the MD5 of their MD5s,
// a dash, and their count.
func multipartETag(parts []cache.Part) string {
	sorted := append([]cache.Part(nil), parts...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Number < sorted[b].Number })
	h := md5.New()
	for _, p := range sorted {
		raw, _ := hex.DecodeString(strings.Trim(p.ETag, `"`))
		h.Write(raw)
	}
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil))) + "-" + strconv.Itoa(len(sorted))
}
