package uploader

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imsfs/imsfs/uploader/fake"
	"github.com/imsfs/imsfs/uploader/ims"
)

// signer is the fake cloud with GetMediaInfo giving a URL of a real server, signed to expire.
type signer struct {
	*fake.Cloud
	url   string
	asked atomic.Int32
}

func (s *signer) GetMediaInfo(ctx context.Context, mediaID string, d time.Duration) (*ims.MediaInfo, error) {
	s.asked.Add(1)
	if mediaID == "none" {
		return &ims.MediaInfo{MediaID: mediaID}, nil
	}
	info := &ims.MediaInfo{MediaID: mediaID, FileInfoList: make([]ims.MediaFile, 1)}
	info.FileInfoList[0].FileBasicInfo.FileURL = fmt.Sprintf("%s/%s?Expires=%d", s.url, mediaID, time.Now().Add(d).Unix())
	return info, nil
}

func TestFetcherReadsRangesAndWholeObjects(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	var refused atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stale" && !refused.Swap(true) {
			w.WriteHeader(http.StatusForbidden) // the URL's signature ran out
			return
		}
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/whole" {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data) // a range that does not fit: OSS sends it all
			return
		}
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	s := &signer{Cloud: fake.New(), url: srv.URL}
	f := NewFetcher(s)
	ctx := context.Background()

	buf := make([]byte, 10)
	if n, err := f.ReadAt(ctx, "m1", buf, 95); err != nil || n != 10 || string(buf) != "5678901234" {
		t.Errorf("ReadAt: %d %q %v", n, buf, err)
	}
	if n, err := f.ReadAt(ctx, "m1", buf, int64(len(data))-4); err != nil || n != 4 || string(buf[:4]) != "6789" {
		t.Errorf("ReadAt at the end: %d %q %v", n, buf[:n], err)
	}
	if n, err := f.ReadAt(ctx, "m1", nil, 0); n != 0 || err != nil {
		t.Errorf("ReadAt of nothing: %d %v", n, err)
	}
	if s.asked.Load() != 1 {
		t.Errorf("the URL was asked for %d times, want once while it is valid", s.asked.Load())
	}
	if n, err := f.ReadAt(ctx, "whole", buf, 20); err != nil || n != 10 || string(buf) != "0123456789" {
		t.Errorf("ReadAt when the whole object comes: %d %q %v", n, buf, err)
	}
	var out bytes.Buffer
	if n, err := f.Fetch(ctx, "stale", &out); err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("Fetch after a refused URL: %d %v", n, err)
	}
	if _, err := f.Fetch(ctx, "broken", &out); err == nil {
		t.Errorf("Fetch of a broken object: no error")
	}
	if _, err := f.ReadAt(ctx, "none", buf, 0); err == nil {
		t.Errorf("ReadAt of an asset without a file: no error")
	}
}
