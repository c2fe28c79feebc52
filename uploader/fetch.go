package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Fetcher reads uploaded bytes back from their objects, for files whose local copy was evicted
// from the cache: through the presigned URL GetMediaInfo gives (FileUrl), with range GETs.
type Fetcher struct {
	ims    IMS
	client *http.Client

	mu   sync.Mutex
	urls map[string]signedURL // protected by mu: by MediaId
}

type signedURL struct {
	url   string
	until time.Time
}

// urlLife is how long the signed URLs a Fetcher asks for are valid.
const urlLife = time.Hour

// NewFetcher returns a Fetcher that asks ims for object URLs.
func NewFetcher(ims IMS) *Fetcher {
	// Chunks are fetched several at once, ahead of readers: their connections are kept.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	return &Fetcher{ims: ims, client: &http.Client{Timeout: 5 * time.Minute, Transport: tr}, urls: map[string]signedURL{}}
}

// URL returns a signed URL of the asset's source file that opens as it is for another quarter
// of an hour at least (so that it still opens when used a little later), and when it expires.
// It is cached until then.
func (f *Fetcher) URL(ctx context.Context, mediaID string) (string, time.Time, error) {
	f.mu.Lock()
	u, ok := f.urls[mediaID]
	f.mu.Unlock()
	if ok && time.Until(u.until) > urlLife/4 {
		return u.url, u.until, nil
	}
	raw, until, err := f.SignedURL(ctx, mediaID, urlLife)
	if err != nil {
		return "", time.Time{}, err
	}
	f.mu.Lock()
	if len(f.urls) >= 1024 {
		// The library's readers ask for one URL an asset: those that expired go.
		for id, u := range f.urls {
			if time.Until(u.until) <= urlLife/4 {
				delete(f.urls, id)
			}
		}
	}
	f.urls[mediaID] = signedURL{url: raw, until: until}
	f.mu.Unlock()
	return raw, until, nil
}

// CachedURL returns the signed URL of the asset that URL has at hand and would return, or "".
func (f *Fetcher) CachedURL(mediaID string) string {
	f.mu.Lock()
	u, ok := f.urls[mediaID]
	f.mu.Unlock()
	if ok && time.Until(u.until) > urlLife/4 {
		return u.url
	}
	return ""
}

// SignedURL asks IMS (GetMediaInfo with AuthTimeout) for a URL of the asset's source file that
// opens as it is for life, and returns it with when it expires.
func (f *Fetcher) SignedURL(ctx context.Context, mediaID string, life time.Duration) (string, time.Time, error) {
	info, err := f.ims.GetMediaInfo(ctx, mediaID, life)
	if err != nil {
		return "", time.Time{}, err
	}
	raw := info.FileURL()
	if raw == "" {
		return "", time.Time{}, fmt.Errorf("asset %s lists no source file", mediaID)
	}
	until := time.Now().Add(life)
	if pu, err := url.Parse(raw); err == nil {
		if exp, err := strconv.ParseInt(pu.Query().Get("Expires"), 10, 64); err == nil {
			until = time.Unix(exp, 0)
		}
	}
	return raw, until, nil
}

func (f *Fetcher) forget(mediaID string) {
	f.mu.Lock()
	delete(f.urls, mediaID)
	f.mu.Unlock()
}

// get sends a GET (with a Range header when rng is not empty), getting a fresh URL once if the
// one it had was refused.
func (f *Fetcher) get(ctx context.Context, mediaID, rng string) (*http.Response, error) {
	for try := 0; ; try++ {
		u, _, err := f.URL(ctx, mediaID)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("read back asset %s: %w", mediaID, err)
		}
		if resp.StatusCode == http.StatusForbidden && try == 0 {
			resp.Body.Close()
			f.forget(mediaID)
			continue
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return nil, fmt.Errorf("read back asset %s: HTTP %s", mediaID, resp.Status)
		}
		return resp, nil
	}
}

// ReadAt reads len(p) bytes of the asset's object from off, with one range GET.
func (f *Fetcher) ReadAt(ctx context.Context, mediaID string, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	resp, err := f.get(ctx, mediaID, fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body := io.Reader(resp.Body)
	if resp.StatusCode == http.StatusOK {
		// The range did not fit (OSS then sends the whole object): skip to off.
		n, err := io.CopyN(io.Discard, body, off)
		if err != nil || n < off {
			return 0, io.EOF
		}
	}
	n, err := io.ReadFull(body, p)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
	return n, err
}

// Fetch copies the asset's whole object to w.
func (f *Fetcher) Fetch(ctx context.Context, mediaID string, w io.Writer) (int64, error) {
	resp, err := f.get(ctx, mediaID, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("read back asset %s: %w", mediaID, err)
	}
	return n, nil
}
