package uploader

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// Upload while writing: a file written from its start, in order, has its asset made and its
// parts sent while the writer goes on, part by part as the writer goes past them; its close
// then has only the last part and the Complete to wait for. A part may have been written again
// after it was sent (the writer went back), so at the close every part sent early is checked
// against the spool (its MD5, which is its ETag) and sent again if it differs.

// early is the upload of one file while it is written.
type early struct {
	grown chan int64    // the size the writer has reached, latest first (one slot)
	final chan int64    // the size at the last close (one slot, sent once)
	done  chan struct{} // closed when no part is in flight any more
	once  sync.Once
}

// finish hands the sender the file's size at its last close: it sends the parts left,
// the last one too, then ends.
func (e *early) finish(size int64) {
	e.once.Do(func() { e.final <- size })
}

// sender holds the uploads under way while their files are written, one per record.
type sender struct {
	partSize int64                     // read only
	start    func(id uint64, e *early) // read only: the queue's, sets e's upload going

	mu       sync.Mutex
	byRec    map[uint64]*early // protected by mu
	draining bool              // protected by mu: nothing new starts
}

func newSender(partSize int64, start func(uint64, *early)) *sender {
	return &sender{partSize: partSize, start: start, byRec: map[uint64]*early{}}
}

// growing tells that the file of record id, written from its start in order, has reached size
// bytes. Once it holds two parts, its upload while written starts (and waits for EarlyAfter).
func (s *sender) growing(id uint64, size int64) {
	if size < 2*s.partSize {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return
	}
	e := s.byRec[id]
	if e == nil {
		e = &early{grown: make(chan int64, 1), final: make(chan int64, 1), done: make(chan struct{})}
		s.byRec[id] = e
		s.start(id, e)
	}
	select {
	case <-e.grown: // the newer size replaces one not taken yet
	default:
	}
	e.grown <- size
}

// closed hands the upload while written of record id, if there is one, the file's size at its
// last close: its last parts need no worker.
func (s *sender) closed(id uint64, size int64) {
	if e := s.of(id); e != nil {
		e.finish(size)
	}
}

func (s *sender) of(id uint64) *early {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRec[id]
}

// ended forgets the upload while written of record id: it stopped.
func (s *sender) ended(id uint64) {
	s.mu.Lock()
	delete(s.byRec, id)
	s.mu.Unlock()
}

// drain lets nothing new start.
func (s *sender) drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

// Growing tells the queue that the file of record id, written from its start in order, has
// reached size bytes. Once it holds two parts and has been written for EarlyAfter, they start
// going up.
func (q *Queue) Growing(id uint64, size int64) { q.sender.growing(id, size) }

// takeOver ends the upload while writing of record id, now size bytes and closed, if one is
// under way, and waits until its parts are stored: the upload after the close goes on from them.
func (q *Queue) takeOver(ctx context.Context, id uint64, size int64) {
	e := q.sender.of(id)
	if e == nil {
		return
	}
	e.finish(size)
	select {
	case <-e.done:
	case <-ctx.Done():
	}
}

// uploadEarly sends the parts of record id that its writer has gone past, until the file is
// closed (the upload after the close takes over), changed (a new generation) or gone.
func (q *Queue) uploadEarly(id uint64, e *early) {
	defer q.wg.Done()
	var inflight sync.WaitGroup
	ctx, cancel := context.WithCancel(q.ctx)
	defer func() {
		// The parts in flight finish before the close's upload takes over: on a link slow per
		// request, sending one again costs more than waiting for it.
		inflight.Wait()
		cancel()
		q.sender.ended(id)
		close(e.done)
	}()
	// A writer as fast as the disk is done in a moment: its upload after the close costs no
	// more, and one while it writes would take the CPU and the disk it writes with. The
	// upload goes on while it writes only once it has written for EarlyAfter.
	select {
	case <-q.cfg.Clock.After(q.cfg.EarlyAfter):
	case <-e.final:
		return // closed first: uploaded after its close, as any file
	case <-q.ctx.Done():
		return
	}
	rec, err := q.cfg.Store.GetID(id)
	if err != nil || rec.State != cache.Writing {
		return
	}
	j := &job{q: q, cfg: &q.cfg, rec: rec, gen: rec.Gen, log: q.cfg.Log.With("path", rec.Path, "id", id)}
	quiet := func(err error) bool {
		return errors.Is(err, cache.ErrSuperseded) || errors.Is(err, cache.ErrNotFound) || ctx.Err() != nil
	}
	if err := j.earlyStart(ctx); err != nil {
		if !quiet(err) {
			j.log.Info("upload while writing did not start; the upload starts at the close", "err", err)
		}
		return
	}
	s := &earlySend{j: j, u: j.uploadRun(), slots: make(chan struct{}, 2*q.cfg.PartWorkers), sent: map[int]bool{}, inflight: &inflight, cancel: cancel}
	defer func() {
		if err := s.err(); err != nil && !quiet(err) {
			j.log.Info("upload while writing stopped; the upload goes on at the close", "err", err)
		}
	}()
	for {
		var size int64
		select {
		case size = <-e.grown:
		case size = <-e.final:
			// Closed: the parts left go now, without waiting for a worker of the queue.
			s.fail(s.send(ctx, size, true))
			return
		case <-ctx.Done():
			return
		case <-q.cfg.Clock.After(time.Second):
			// No growth: a writer that pauses, or one that went away. Look at the record; a
			// closed one waits for its size at the close (finish).
			if r, err := q.cfg.Store.GetID(id); err != nil || r.Gen != j.gen || (r.State != cache.Writing && r.State != cache.Queued) {
				return
			}
			continue
		}
		if err := s.send(ctx, size, false); err != nil || s.err() != nil {
			s.fail(err)
			return
		}
	}
}

// earlySend is the sending of the parts of one file while it is written: up to twice the
// usual parts at once, since a link slow per request is what makes the close wait.
type earlySend struct {
	j        *job
	u        *uploadRun
	slots    chan struct{}
	inflight *sync.WaitGroup
	cancel   context.CancelFunc
	p        progress

	mu    sync.Mutex
	sent  map[int]bool // protected by mu: parts sent or in flight
	first error        // protected by mu
}

func (s *earlySend) fail(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		s.first = err
		s.cancel()
	}
}

func (s *earlySend) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// send starts the whole parts of [0, size) that are not sent or in flight, as slots free up;
// closed, the last part too, whole or not.
func (s *earlySend) send(ctx context.Context, size int64, closed bool) error {
	rec := s.j.record()
	if rec.Upload == nil || rec.Upload.MultipartID == "" {
		return nil
	}
	uploadID, partSize := rec.Upload.MultipartID, rec.Upload.PartSize
	for n := 1; int64(n)*partSize <= size || (closed && int64(n-1)*partSize < size); n++ {
		s.mu.Lock()
		skip := s.sent[n]
		s.sent[n] = true
		s.mu.Unlock()
		if skip {
			continue
		}
		if n > s.j.cfg.MaxParts {
			return errors.New("more parts than OSS takes: the close starts over with bigger parts")
		}
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		length := min(partSize, size-int64(n-1)*partSize)
		s.inflight.Add(1)
		go func(n int) {
			defer s.inflight.Done()
			defer func() { <-s.slots }()
			part, err := s.partOf(ctx, uploadID, n, partSize, length)
			if err == nil {
				err = s.j.apply(cache.Event{Kind: cache.PartStored, Multipart: uploadID, Part: part})
			}
			s.fail(err)
		}(n)
	}
	return nil
}

func (s *earlySend) partOf(ctx context.Context, uploadID string, n int, partSize, length int64) (cache.Part, error) {
	f, err := os.Open(s.j.cfg.Store.SpoolPath(s.j.rec.ID))
	if err != nil {
		return cache.Part{}, err
	}
	defer f.Close()
	return s.u.part(ctx, f, uploadID, n, partSize, length, &s.p)
}

// earlyStart makes the asset of a file being written and starts its multipart upload.
func (j *job) earlyStart(ctx context.Context) error {
	rec := j.record()
	name, err := imsrules.ParseName(path.Base(rec.Path))
	if err != nil {
		return err
	}
	probe := rec
	probe.Size = max(probe.Size, 2*j.cfg.PartSize) // the writer went past two parts (Growing): not empty
	if state, _ := j.cfg.Names.Refuse(&probe); state != "" {
		return fmt.Errorf("%s is not uploaded", rec.Path)
	}
	req := j.createRequest(&rec, name, 0)
	t, err := j.cfg.IMS.CreateUploadMedia(ctx, req)
	if err != nil {
		return err
	}
	ev, err := j.assetEvent(cache.EarlyAsset, t, rec.Meta, sentFields(req.MediaMetaData))
	if err == nil {
		err = j.apply(ev)
	}
	if err != nil {
		j.unused(t.MediaID)
		return err
	}
	j.log.Info("asset created while the file is written", "media_id", t.MediaID)
	u := j.uploadRun()
	var uploadID string
	if err := u.call(ctx, func() (err error) { uploadID, err = j.cfg.Objects.Initiate(ctx, u.target, u.sign); return err }); err != nil {
		return err
	}
	return j.apply(cache.Event{Kind: cache.MultipartStarted, Multipart: uploadID, PartSize: j.cfg.PartSize})
}

// uploadRun is the upload step's state for this run's record.
func (j *job) uploadRun() *uploadRun {
	rec := j.record()
	up := rec.Upload
	return &uploadRun{j: j, creds: j.q.creds.of(rec.ID, j.gen), target: targetOf(up)}
}

// partCheck is verifyParts of the parts a file had stored when its upload after the close
// began, while the parts still in flight finish.
type partCheck struct {
	done     chan struct{}
	partSize int64
	// checked holds each part checked, as stored, and what the check made of it: the part as it
	// is still the spool's (with its CRC-64), or a zero Part. Written before done is closed.
	checked map[cache.Part]cache.Part
}

// startPartCheck checks, in the background, the parts rec has stored against its spool.
func (j *job) startPartCheck(rec cache.Record) *partCheck {
	c := &partCheck{done: make(chan struct{}), checked: map[cache.Part]cache.Part{}}
	if rec.Upload != nil {
		c.partSize = rec.Upload.PartSize
	}
	parts, err := j.cfg.Store.Parts(rec.ID, j.gen)
	if err != nil || len(parts) == 0 || rec.Upload == nil || rec.Upload.PartSize <= 0 {
		close(c.done)
		return c
	}
	go func() {
		defer close(c.done)
		f, err := os.Open(j.cfg.Store.SpoolPath(rec.ID))
		if err != nil {
			return // checked after, as the parts stored since are
		}
		defer f.Close()
		for i, p := range checkEach(f, parts, c.partSize) {
			c.checked[parts[i]] = p
		}
	}()
	return c
}

// checkParts is verifyParts, taking what the early check found of the parts it saw (at the
// same part size: a file that outgrew its parts starts over with others).
func (u *uploadRun) checkParts(f *os.File, stored []cache.Part, partSize int64) []cache.Part {
	var keep, rest []cache.Part
	early := u.early
	if early != nil {
		<-early.done
		if early.partSize != partSize {
			early = nil
		}
	}
	for _, p := range stored {
		var held cache.Part
		checked := false
		if early != nil {
			held, checked = early.checked[p]
		}
		switch {
		case !checked:
			rest = append(rest, p)
		case held.Number != 0:
			keep = append(keep, held)
		}
	}
	keep = append(keep, verifyParts(f, rest, partSize)...)
	sort.Slice(keep, func(a, b int) bool { return keep[a].Number < keep[b].Number })
	return keep
}

// verifyParts keeps the stored parts whose bytes are still the spool's, each with its CRC-64.
// A part's CRC-32C, taken as it was sent, is compared (at the speed of memory), and its CRC-64
// is the one OSS reported then; a part stored without them (by an older imsfs) is compared by
// its MD5, which is its ETag, and its CRC-64 taken from the spool on the way.
func verifyParts(f *os.File, parts []cache.Part, partSize int64) []cache.Part {
	var out []cache.Part
	for _, p := range checkEach(f, parts, partSize) {
		if p.Number != 0 {
			out = append(out, p)
		}
	}
	return out
}

// checkEach is verifyParts part by part: each part as it is still the spool's, or a zero Part.
func checkEach(f *os.File, parts []cache.Part, partSize int64) []cache.Part {
	keep := make([]bool, len(parts))
	checked := append([]cache.Part(nil), parts...)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := &checked[i]
				r := io.NewSectionReader(f, int64(p.Number-1)*partSize, p.Size)
				if p.Sum != "" && p.CRC64 != 0 {
					s := &summer{r: r, h: crc32.New(castagnoli)}
					_, err := io.Copy(io.Discard, s)
					keep[i] = err == nil && s.sum(p.Size) == p.Sum
					continue
				}
				h, c := md5.New(), crc64.New(crc64.MakeTable(crc64.ECMA))
				if _, err := io.Copy(io.MultiWriter(h, c), r); err != nil {
					continue
				}
				keep[i] = strings.EqualFold(hex.EncodeToString(h.Sum(nil)), strings.Trim(p.ETag, `"`))
				p.CRC64 = c.Sum64()
			}
		}()
	}
	for i := range parts {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := range checked {
		if !keep[i] {
			checked[i] = cache.Part{}
		}
	}
	return checked
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// summer sums the bytes read through it: what a part's request took is what was sent.
type summer struct {
	r    io.Reader
	h    hash.Hash32
	read int64
}

func (s *summer) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.h.Write(b[:n])
	s.read += int64(n)
	return n, err
}

// sum is the CRC-32C in hex, or "" when the request did not read the part exactly once (a
// client that went back over it).
func (s *summer) sum(length int64) string {
	if s == nil || s.read != length {
		return ""
	}
	return fmt.Sprintf("%08x", s.h.Sum32())
}
