package uploader

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/imsfs/imsfs/cache"
)

// refreshAhead is how long before they expire upload credentials are renewed, at the most: for
// short-lived credentials, a third of their life.
const refreshAhead = time.Minute

// maxRefreshes bounds the credential refreshes one attempt may make without sending a byte.
const maxRefreshes = 5

// maxPartTries bounds the tries of one part within an attempt; partBackoff spaces them.
const maxPartTries = 4

func partBackoff(try int) time.Duration { return (200 * time.Millisecond) << min(try, 4) }

// liveCreds are the upload credentials every OSS request of a run signs with; a refresh swaps
// them under the requests in flight, so that an upload of hours outlives credentials of seconds.
type liveCreds struct {
	mu      sync.Mutex
	id      string
	secret  string
	token   string
	expires time.Time
	life    time.Duration // from when they were received to when they expire
}

type staticCreds struct{ id, secret, token string }

func (c staticCreds) GetAccessKeyID() string     { return c.id }
func (c staticCreds) GetAccessKeySecret() string { return c.secret }
func (c staticCreds) GetSecurityToken() string   { return c.token }

func (c *liveCreds) GetCredentials() oss.Credentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	return staticCreds{c.id, c.secret, c.token}
}

func (c *liveCreds) set(up *cache.Upload) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id, c.secret, c.token, c.expires = up.AccessKeyID, up.AccessKeySecret, up.SecurityToken, up.Expires
	c.life = time.Until(up.Expires)
}

// stale reports whether the credentials are to be renewed before the next request.
func (c *liveCreds) stale() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expires.IsZero() {
		return false
	}
	ahead := min(refreshAhead, c.life/3)
	return time.Until(c.expires) < ahead
}

// expire marks the credentials stale: OSS said they are no longer valid.
func (c *liveCreds) expire() {
	c.mu.Lock()
	c.expires = time.Now().Add(-time.Second)
	c.mu.Unlock()
}

// fresh renews the run's credentials if they are stale; parts in flight wait for one refresh
// rather than each making its own.
func (j *job) fresh(ctx context.Context) error {
	j.refreshMu.Lock()
	defer j.refreshMu.Unlock()
	if !j.creds.stale() {
		return nil
	}
	if err := j.refresh(ctx); err != nil {
		return err
	}
	j.refreshes.Add(1)
	return nil
}

// upload sends the spooled bytes to the object in the record's UploadAddress, resuming a
// multipart upload from its recorded parts, and commits Uploaded when the object is complete.
func (j *job) upload(ctx context.Context) error {
	rec := j.record()
	if rec.Upload == nil {
		return &permanentError{fmt.Errorf("%s: record is uploading but holds no upload address", rec.Path)}
	}
	f, err := os.Open(j.q.cfg.Store.SpoolPath(rec.ID))
	if err != nil {
		return &permanentError{fmt.Errorf("%s: open spool: %w", rec.Path, err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: stat spool: %w", rec.Path, err)
	}
	size := st.Size()
	p := &progress{}
	p.total.Store(size)
	j.q.progress.Store(rec.ID, p)
	j.creds = &liveCreds{}
	j.creds.set(rec.Upload)

	for tries := 0; ; tries++ {
		if err = j.fresh(ctx); err != nil {
			return err
		}
		err = j.send(ctx, f, size, p)
		code, _, isOSS := ossError(err)
		if !isOSS || !credentialExpired(code) || tries >= maxRefreshes {
			break
		}
		j.log.Info("upload credentials expired", "code", code)
		j.creds.expire()
	}
	if err != nil {
		return err
	}
	return j.update(func(r *cache.Record) error {
		r.State, r.Size, r.Error = cache.Uploaded, size, ""
		return nil
	})
}

func (j *job) send(ctx context.Context, f *os.File, size int64, p *progress) error {
	up := j.record().Upload
	client, err := oss.New(up.Endpoint, "", "", oss.SetCredentialsProvider(j.creds), oss.Timeout(10, 120), oss.UserAgent("imsfs"))
	if err != nil {
		return &permanentError{fmt.Errorf("OSS client for %s: %w", up.Endpoint, err)}
	}
	bucket, err := client.Bucket(up.Bucket)
	if err != nil {
		return &permanentError{fmt.Errorf("OSS bucket %s: %w", up.Bucket, err)}
	}
	if size <= j.q.cfg.PartSize && up.MultipartID == "" {
		p.sent.Store(0)
		err := bucket.PutObject(up.Key, io.NewSectionReader(f, 0, size),
			oss.WithContext(ctx), oss.ContentLength(size), oss.Progress(progressOf(p)))
		if err != nil {
			return fmt.Errorf("PutObject %s: %w", up.Key, err)
		}
		return nil
	}
	return j.sendMultipart(ctx, bucket, f, size, p)
}

// resumeParts returns the recorded parts that OSS still holds, as ListParts says (a restart
// may have recorded a part OSS never kept, or lost one it did): only those are not sent again.
func (j *job) resumeParts(ctx context.Context, bucket *oss.Bucket, imur oss.InitiateMultipartUploadResult, recorded []cache.Part) ([]cache.Part, error) {
	if len(recorded) == 0 {
		return nil, nil
	}
	held := map[int]oss.UploadedPart{}
	marker := 0
	for {
		res, err := bucket.ListUploadedParts(imur, oss.WithContext(ctx), oss.PartNumberMarker(marker))
		if err != nil {
			return nil, fmt.Errorf("ListParts %s: %w", imur.Key, err)
		}
		for _, up := range res.UploadedParts {
			held[up.PartNumber] = up
		}
		if !res.IsTruncated {
			break
		}
		next, err := strconv.Atoi(res.NextPartNumberMarker)
		if err != nil || next <= marker {
			break
		}
		marker = next
	}
	var keep []cache.Part
	for _, part := range recorded {
		if h, ok := held[part.Number]; ok && strings.EqualFold(strings.Trim(h.ETag, `"`), strings.Trim(part.ETag, `"`)) && int64(h.Size) == part.Size {
			keep = append(keep, part)
		}
	}
	if len(keep) != len(recorded) {
		j.log.Warn("OSS does not hold every recorded part; sending the rest again", "recorded", len(recorded), "held", len(keep))
	}
	return keep, nil
}

func (j *job) sendMultipart(ctx context.Context, bucket *oss.Bucket, f *os.File, size int64, p *progress) error {
	up := j.record().Upload
	if up.MultipartID == "" {
		imur, err := bucket.InitiateMultipartUpload(up.Key, oss.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("InitiateMultipartUpload %s: %w", up.Key, err)
		}
		partSize := j.q.cfg.PartSize
		if err := j.update(func(r *cache.Record) error {
			r.Upload.MultipartID, r.Upload.PartSize, r.Upload.Parts = imur.UploadID, partSize, nil
			return nil
		}); err != nil {
			return err
		}
		up = j.record().Upload
	}
	imur := oss.InitiateMultipartUploadResult{Bucket: up.Bucket, Key: up.Key, UploadID: up.MultipartID}
	partSize := up.PartSize
	count := int((size + partSize - 1) / partSize)
	partLen := func(n int) int64 { return min(partSize, size-int64(n-1)*partSize) }

	recorded, err := j.resumeParts(ctx, bucket, imur, up.Parts)
	if code, _, ok := ossError(err); ok && code == "NoSuchUpload" {
		return j.uploadGone(ctx, bucket, up, size, count)
	}
	if err != nil {
		return err
	}
	done := map[int]cache.Part{}
	var sent int64
	for _, part := range recorded {
		if part.Number >= 1 && part.Number <= count && part.Size == partLen(part.Number) {
			done[part.Number] = part
			sent += part.Size
		}
	}
	p.sent.Store(sent)

	var (
		mu       sync.Mutex // guards firstErr and done while parts finish
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, j.q.cfg.PartWorkers)
	)
	var todo []int
	for n := 1; n <= count; n++ {
		if _, ok := done[n]; !ok {
			todo = append(todo, n)
		}
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, n := range todo {
		select {
		case slots <- struct{}{}:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			defer func() { <-slots }()
			length := partLen(n)
			var res oss.UploadPart
			var err error
			for tries := 0; ; tries++ {
				// Credentials are renewed between parts, so that no part starts with
				// credentials about to expire.
				if err = j.fresh(pctx); err != nil {
					break
				}
				res, err = bucket.UploadPart(imur, io.NewSectionReader(f, int64(n-1)*partSize, length), length, n,
					oss.WithContext(pctx), oss.Progress(progressOf(p)))
				if err == nil || pctx.Err() != nil || tries >= maxPartTries {
					break
				}
				code, _, isOSS := ossError(err)
				switch {
				case isOSS && credentialExpired(code):
					j.creds.expire()
				case temporary(err):
					// A part that fails for a passing reason is tried again on its own, so that
					// one bad request does not send the whole file back to the queue.
					j.partRetries.Add(1)
					select {
					case <-time.After(partBackoff(tries)):
					case <-pctx.Done():
					}
				default:
					tries = maxPartTries
				}
			}
			if err == nil {
				part := cache.Part{Number: n, ETag: res.ETag, Size: length}
				// Committed at once, so that a restart resumes after this part.
				err = j.update(func(r *cache.Record) error {
					if r.Upload == nil || r.Upload.MultipartID != imur.UploadID {
						return errSuperseded
					}
					r.Upload.Parts = append(r.Upload.Parts, part)
					return nil
				})
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				done[n] = cache.Part{Number: n, ETag: res.ETag, Size: length}
			}
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("UploadPart %d of %s: %w", n, up.Key, err)
				cancel()
			}
		}(n)
	}
	wg.Wait()
	if firstErr != nil {
		if code, _, ok := ossError(firstErr); ok && code == "NoSuchUpload" {
			return j.uploadGone(ctx, bucket, up, size, count)
		}
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	parts := make([]oss.UploadPart, 0, count)
	for _, part := range done {
		parts = append(parts, oss.UploadPart{PartNumber: part.Number, ETag: part.ETag})
	}
	sort.Slice(parts, func(a, b int) bool { return parts[a].PartNumber < parts[b].PartNumber })
	if err := j.fresh(ctx); err != nil {
		return err
	}
	if _, err := bucket.CompleteMultipartUpload(imur, parts, oss.WithContext(ctx)); err != nil {
		if code, _, ok := ossError(err); ok && (code == "NoSuchUpload" || code == "InvalidPart") {
			return j.uploadGone(ctx, bucket, up, size, count)
		}
		return fmt.Errorf("CompleteMultipartUpload %s: %w", up.Key, err)
	}
	return nil
}

// uploadGone handles a multipart upload OSS no longer knows. If the object already holds what
// it was to make (its Complete went through, and the answer or its record was lost to a crash
// or a cut connection), the upload is done. Otherwise it starts again from the first part, on
// the next try.
func (j *job) uploadGone(ctx context.Context, bucket *oss.Bucket, up *cache.Upload, size int64, count int) error {
	rec := j.record()
	if parts := rec.Upload.Parts; len(parts) == count {
		h, err := bucket.GetObjectDetailedMeta(up.Key, oss.WithContext(ctx))
		if err == nil && h.Get("Content-Length") == strconv.FormatInt(size, 10) &&
			strings.EqualFold(strings.Trim(h.Get("ETag"), `"`), multipartETag(parts)) {
			j.log.Info("the multipart upload was completed before; the object is whole", "key", up.Key)
			return nil
		}
	}
	j.log.Warn("the multipart upload is gone from OSS; starting it again", "key", up.Key)
	if err := j.update(func(r *cache.Record) error { r.Upload.MultipartID, r.Upload.Parts = "", nil; return nil }); err != nil {
		return err
	}
	// Not the OSS error itself: that one (404) would read as a permanent failure.
	return fmt.Errorf("the multipart upload of %s is gone from OSS; it starts again", up.Key)
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

// progressFunc counts the bytes the OSS SDK reports as sent.
type progressFunc func(n int64)

func (f progressFunc) ProgressChanged(e *oss.ProgressEvent) {
	if e.EventType == oss.TransferDataEvent {
		f(e.RwBytes)
	}
}

func progressOf(p *progress) progressFunc { return func(n int64) { p.sent.Add(n) } }

// ossError returns the code and HTTP status of an error answer from OSS.
func ossError(err error) (code string, status int, ok bool) {
	var se oss.ServiceError
	if errors.As(err, &se) {
		return se.Code, se.StatusCode, true
	}
	return "", 0, false
}

// credentialExpired reports whether an OSS error code means the STS credentials are no longer
// valid, which RefreshUploadMedia mends.
func credentialExpired(code string) bool {
	switch code {
	case "SecurityTokenExpired", "InvalidSecurityToken", "InvalidAccessKeyId":
		return true
	}
	return false
}
