package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/imsfs/imsfs/cache"
)

// refreshAhead is how long before they expire upload credentials are renewed.
const refreshAhead = time.Minute

// upload sends the spooled bytes to the object in the record's UploadAddress, resuming a
// multipart upload from its recorded parts, and commits Uploaded when the object is complete.
func (j *job) upload(ctx context.Context) error {
	if j.rec.Upload == nil {
		return &permanentError{fmt.Errorf("%s: record is uploading but holds no upload address", j.rec.Path)}
	}
	f, err := os.Open(j.q.cfg.Store.SpoolPath(j.rec.ID))
	if err != nil {
		return &permanentError{fmt.Errorf("%s: open spool: %w", j.rec.Path, err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: stat spool: %w", j.rec.Path, err)
	}
	size := st.Size()
	p := &progress{}
	p.total.Store(size)
	j.q.progress.Store(j.rec.ID, p)

	for refreshes := 0; ; refreshes++ {
		if exp := j.rec.Upload.Expires; !exp.IsZero() && time.Until(exp) < refreshAhead {
			if err := j.refresh(ctx); err != nil {
				return err
			}
		}
		err = j.send(ctx, f, size, p)
		code, _, isOSS := ossError(err)
		if !isOSS || !credentialExpired(code) || refreshes >= 3 {
			break
		}
		j.log.Info("upload credentials expired", "code", code)
		if err := j.refresh(ctx); err != nil {
			return err
		}
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
	up := j.rec.Upload
	client, err := oss.New(up.Endpoint, up.AccessKeyID, up.AccessKeySecret,
		oss.SecurityToken(up.SecurityToken), oss.Timeout(10, 120), oss.UserAgent("imsfs"))
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

func (j *job) sendMultipart(ctx context.Context, bucket *oss.Bucket, f *os.File, size int64, p *progress) error {
	up := j.rec.Upload
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
		up = j.rec.Upload
	}
	imur := oss.InitiateMultipartUploadResult{Bucket: up.Bucket, Key: up.Key, UploadID: up.MultipartID}
	partSize := up.PartSize
	count := int((size + partSize - 1) / partSize)
	partLen := func(n int) int64 { return min(partSize, size-int64(n-1)*partSize) }

	done := map[int]cache.Part{}
	var sent int64
	for _, part := range up.Parts {
		if part.Number >= 1 && part.Number <= count && part.Size == partLen(part.Number) {
			done[part.Number] = part
			sent += part.Size
		}
	}
	p.sent.Store(sent)

	var (
		mu       sync.Mutex // guards firstErr, done and j.rec while parts finish
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
			res, err := bucket.UploadPart(imur, io.NewSectionReader(f, int64(n-1)*partSize, length), length, n,
				oss.WithContext(pctx), oss.Progress(progressOf(p)))
			mu.Lock()
			defer mu.Unlock()
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
				done[n] = part
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
			// The multipart upload is gone (aborted, or expired on the server): start a new one.
			_ = j.update(func(r *cache.Record) error { r.Upload.MultipartID, r.Upload.Parts = "", nil; return nil })
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
	if _, err := bucket.CompleteMultipartUpload(imur, parts, oss.WithContext(ctx)); err != nil {
		if code, _, ok := ossError(err); ok && (code == "NoSuchUpload" || code == "InvalidPart") {
			_ = j.update(func(r *cache.Record) error { r.Upload.MultipartID, r.Upload.Parts = "", nil; return nil })
		}
		return fmt.Errorf("CompleteMultipartUpload %s: %w", up.Key, err)
	}
	return nil
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
