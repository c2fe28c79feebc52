package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ossServer is the OSS object API as far as this package calls it, path-style, with its XML
// shapes and error answers. Requests signed with the key "expired" are refused as OSS refuses
// expired STS credentials; it checks the signature's version, not the signature (the
// emulator's contract tests do that).
type ossServer struct {
	*httptest.Server
	t       *testing.T
	v4      bool
	mu      sync.Mutex
	objects map[string][]byte
	uploads map[string]map[int][]byte
	seq     int
	// crc, when set, says what the answer to a write of data reports as its CRC-64 ("" leaves
	// the header out) [its own].
	crc func(data []byte) string
}

func newOSS(t *testing.T, v4 bool) *ossServer {
	s := &ossServer{t: t, v4: v4, objects: map[string][]byte{}, uploads: map[string]map[int][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *ossServer) fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s here</Message><RequestId>r</RequestId></Error>`, code, code)
}

func etag(b []byte) string {
	s := md5.Sum(b)
	return `"` + strings.ToUpper(hex.EncodeToString(s[:])) + `"`
}

func (s *ossServer) setCRC(w http.ResponseWriter, data []byte) {
	v := strconv.FormatUint(crc64.Checksum(data, crcTable), 10)
	if s.crc != nil {
		v = s.crc(data)
	}
	if v != "" {
		w.Header().Set("X-Oss-Hash-Crc64ecma", v)
	}
}

func (s *ossServer) handle(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if s.v4 != strings.HasPrefix(auth, "OSS4-HMAC-SHA256 ") {
		s.t.Errorf("%s %s signed %q, want V4 %v", r.Method, r.URL, auth, s.v4)
	}
	if strings.Contains(auth, "expired") {
		s.fail(w, 403, "SecurityTokenExpired")
		return
	}
	if r.Header.Get("X-Oss-Security-Token") != "token" {
		s.fail(w, 403, "InvalidSecurityToken")
		return
	}
	key := r.URL.Path
	q := r.URL.Query()
	body, _ := io.ReadAll(r.Body)
	if r.Method == http.MethodPut && (len(r.TransferEncoding) > 0 || r.ContentLength != int64(len(body))) {
		s.t.Errorf("%s %s: sent %v with Content-Length %d for %d bytes; a write announces its length", r.Method, r.URL, r.TransferEncoding, r.ContentLength, len(body))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	up := s.uploads[q.Get("uploadId")]
	switch {
	case r.Method == http.MethodPut && q.Has("partNumber"):
		if up == nil {
			s.fail(w, 404, "NoSuchUpload")
			return
		}
		n, _ := strconv.Atoi(q.Get("partNumber"))
		up[n] = body
		w.Header().Set("ETag", etag(body))
		s.setCRC(w, body)
	case r.Method == http.MethodPut:
		s.objects[key] = body
		w.Header().Set("ETag", etag(body))
		s.setCRC(w, body)
	case r.Method == http.MethodPost && q.Has("uploads"):
		s.seq++
		id := fmt.Sprint("U", s.seq)
		s.uploads[id] = map[int][]byte{}
		fmt.Fprintf(w, `<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, key, id)
	case r.Method == http.MethodGet && q.Has("uploadId"):
		if up == nil {
			s.fail(w, 404, "NoSuchUpload")
			return
		}
		marker, _ := strconv.Atoi(q.Get("part-number-marker"))
		var ns []int
		for n := range up {
			if n > marker {
				ns = append(ns, n)
			}
		}
		sort.Ints(ns)
		truncated := len(ns) > 2 // pages of two, so that paging is followed
		if truncated {
			ns = ns[:2]
		}
		var b strings.Builder
		fmt.Fprintf(&b, `<ListPartsResult><UploadId>%s</UploadId><IsTruncated>%v</IsTruncated>`, q.Get("uploadId"), truncated)
		if len(ns) > 0 {
			fmt.Fprintf(&b, `<NextPartNumberMarker>%d</NextPartNumberMarker>`, ns[len(ns)-1])
		}
		for _, n := range ns {
			fmt.Fprintf(&b, `<Part><PartNumber>%d</PartNumber><ETag>%s</ETag><Size>%d</Size></Part>`, n, etag(up[n]), len(up[n]))
		}
		b.WriteString(`</ListPartsResult>`)
		io.WriteString(w, b.String())
	case r.Method == http.MethodPost && q.Has("uploadId"):
		if up == nil {
			s.fail(w, 404, "NoSuchUpload")
			return
		}
		var req struct {
			Parts []struct {
				PartNumber int
				ETag       string
			} `xml:"Part"`
		}
		if err := xml.Unmarshal(body, &req); err != nil {
			s.fail(w, 400, "MalformedXML")
			return
		}
		var data []byte
		for _, p := range req.Parts {
			if d, ok := up[p.PartNumber]; !ok || etag(d) != p.ETag {
				s.fail(w, 400, "InvalidPart")
				return
			}
			data = append(data, up[p.PartNumber]...)
		}
		s.objects[key] = data
		delete(s.uploads, q.Get("uploadId"))
		s.setCRC(w, data)
		fmt.Fprintf(w, `<CompleteMultipartUploadResult><Key>%s</Key><ETag>"X-%d"</ETag></CompleteMultipartUploadResult>`, key, len(req.Parts))
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		if up == nil {
			s.fail(w, 404, "NoSuchUpload")
			return
		}
		delete(s.uploads, q.Get("uploadId"))
		w.WriteHeader(204)
	case r.Method == http.MethodHead:
		d, ok := s.objects[key]
		if !ok {
			w.WriteHeader(404)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(d)))
		w.Header().Set("ETag", etag(d))
		s.setCRC(w, d)
	default:
		s.fail(w, 400, "InvalidRequest")
	}
}

func creds(id string) CredentialsFunc {
	return func() Credentials {
		return Credentials{AccessKeyID: id, AccessKeySecret: "secret", SecurityToken: "token"}
	}
}

func TestAWholeObjectAndAMultipartUpload(t *testing.T) {
	for _, v4 := range []bool{false, true} {
		t.Run(fmt.Sprint("v4=", v4), func(t *testing.T) {
			s := newOSS(t, v4)
			c := New(10 * time.Second)
			ctx := context.Background()
			target := Target{Endpoint: s.URL, Bucket: "bkt", Key: "sv/a b.mp4"}
			if v4 {
				target.Region = "cn-shanghai"
			}
			var sent int64
			data := bytes.Repeat([]byte("x"), 1000)
			crc, err := c.Put(ctx, target, creds("good"), bytes.NewReader(data), int64(len(data)), func(n int64) { sent += n })
			if err != nil {
				t.Fatal(err)
			}
			if crc != crc64.Checksum(data, crcTable) {
				t.Errorf("PUT: CRC-64 %d, want that of the object", crc)
			}
			if sent != 1000 || !bytes.Equal(s.objects["/bkt/sv/a b.mp4"], data) {
				t.Errorf("PUT: progress %d, stored %d bytes", sent, len(s.objects["/bkt/sv/a b.mp4"]))
			}
			if crc, err := c.Put(ctx, Target{Endpoint: target.Endpoint, Bucket: "bkt", Key: "empty", Region: target.Region}, creds("good"), bytes.NewReader(nil), 0, nil); err != nil || crc != 0 {
				t.Errorf("PUT of no bytes: CRC-64 %d, %v", crc, err)
			}
			o, err := c.Head(ctx, target, creds("good"))
			if err != nil || o.Size != 1000 || o.ETag != strings.Trim(etag(data), `"`) || o.CRC64 != crc {
				t.Errorf("HEAD: %+v %v", o, err)
			}

			id, err := c.Initiate(ctx, target, creds("good"))
			if err != nil {
				t.Fatal(err)
			}
			var parts []Part
			var whole []byte
			var combined uint64
			for n := 1; n <= 5; n++ {
				p := bytes.Repeat([]byte{byte(n)}, 100)
				part, err := c.UploadPart(ctx, target, creds("good"), id, n, bytes.NewReader(p), 100, nil)
				if err != nil {
					t.Fatal(err)
				}
				if part.Number != n || part.Size != 100 || part.CRC64 != crc64.Checksum(p, crcTable) {
					t.Errorf("part %d stored as %+v", n, part)
				}
				parts = append(parts, Part{Number: n, ETag: part.ETag, Size: 100})
				whole = append(whole, p...)
				combined = CombineCRC(combined, part.CRC64, part.Size)
			}
			if combined != crc64.Checksum(whole, crcTable) {
				t.Errorf("the parts' CRC-64s combine to %d, not the whole's", combined)
			}
			listed, err := c.ListParts(ctx, target, creds("good"), id)
			if err != nil || len(listed) != 5 || listed[4].Number != 5 || listed[4].Size != 100 || listed[0].ETag != parts[0].ETag {
				t.Errorf("ListParts (over three pages): %+v %v", listed, err)
			}
			if crc, err := c.Complete(ctx, target, creds("good"), id, parts); err != nil || crc != combined {
				t.Fatalf("Complete: CRC-64 %d (want %d), %v", crc, combined, err)
			}
			if got := s.objects["/bkt/sv/a b.mp4"]; len(got) != 500 || got[499] != 5 {
				t.Errorf("the object after Complete: %d bytes", len(got))
			}
			if _, err := c.Complete(ctx, target, creds("good"), id, parts); !Gone(err) || Temporary(err) {
				t.Errorf("a Complete of an upload that is gone: %v", err)
			}
			if err := c.Abort(ctx, target, creds("good"), id); err != nil {
				t.Errorf("an Abort of an upload that is gone is no error: %v", err)
			}
			id2, _ := c.Initiate(ctx, target, creds("good"))
			if err := c.Abort(ctx, target, creds("good"), id2); err != nil || len(s.uploads) != 0 {
				t.Errorf("Abort: %v, %d uploads left", err, len(s.uploads))
			}
		})
	}
}

func TestErrorsSaySortAndCause(t *testing.T) {
	s := newOSS(t, false)
	c := New(10 * time.Second)
	ctx := context.Background()
	target := Target{Endpoint: s.URL, Bucket: "bkt", Key: "k"}
	_, err := c.Put(ctx, target, creds("expired"), strings.NewReader("x"), 1, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != "SecurityTokenExpired" || e.Status != 403 || !Expired(err) || !Temporary(err) {
		t.Errorf("expired credentials: %#v", err)
	}
	if !strings.Contains(err.Error(), "PutObject k: OSS SecurityTokenExpired (HTTP 403)") {
		t.Errorf("its text: %v", err)
	}
	if _, err := c.UploadPart(ctx, target, creds("good"), "nope", 1, strings.NewReader("x"), 1, nil); !Gone(err) {
		t.Errorf("a part of an unknown upload: %v", err)
	}
	if _, err := c.ListParts(ctx, target, creds("good"), "nope"); !Gone(err) {
		t.Errorf("the parts of an unknown upload: %v", err)
	}
	if _, err := c.Head(ctx, target, creds("good")); err == nil || Gone(err) {
		t.Errorf("HEAD of no object: %v", err)
	}
	if _, err := c.Initiate(ctx, target, creds("expired")); !Expired(err) {
		t.Errorf("Initiate with expired credentials: %v", err)
	}
	if err := c.Abort(ctx, target, creds("expired"), "x"); !Expired(err) {
		t.Errorf("Abort with expired credentials: %v", err)
	}
	if _, err := c.Complete(ctx, target, creds("expired"), "x", nil); !Expired(err) {
		t.Errorf("Complete with expired credentials: %v", err)
	}
	if _, err := c.ListParts(ctx, target, creds("expired"), "x"); !Expired(err) {
		t.Errorf("ListParts with expired credentials: %v", err)
	}
	five := &Error{Code: "InternalError", Status: 500}
	if !Temporary(five) || Temporary(&Error{Code: "AccessDenied", Status: 403}) || !Temporary(errors.New("connection reset")) {
		t.Errorf("Temporary sorts wrongly")
	}
	if Expired(errors.New("x")) || Gone(errors.New("x")) {
		t.Errorf("a network error is neither expired nor gone")
	}
	s.Close()
	if _, err := c.Put(ctx, target, creds("good"), strings.NewReader("x"), 1, nil); err == nil || errors.As(err, &e) || !Temporary(err) {
		t.Errorf("a refused connection: %#v", err)
	}
	for _, bad := range []Target{{Endpoint: "http://[::1", Bucket: "bkt", Key: "k"}, {Endpoint: s.URL, Bucket: "", Key: "k"}} {
		if _, err := c.Put(ctx, bad, creds("good"), strings.NewReader("x"), 1, nil); err == nil {
			t.Errorf("Put to %+v: no error", bad)
		}
		if _, err := c.Initiate(ctx, bad, creds("good")); err == nil {
			t.Errorf("Initiate at %+v: no error", bad)
		}
		if _, err := c.UploadPart(ctx, bad, creds("good"), "u", 1, strings.NewReader("x"), 1, nil); err == nil {
			t.Errorf("UploadPart at %+v: no error", bad)
		}
		if _, err := c.ListParts(ctx, bad, creds("good"), "u"); err == nil {
			t.Errorf("ListParts at %+v: no error", bad)
		}
		if _, err := c.Complete(ctx, bad, creds("good"), "u", nil); err == nil {
			t.Errorf("Complete at %+v: no error", bad)
		}
		if err := c.Abort(ctx, bad, creds("good"), "u"); err == nil {
			t.Errorf("Abort at %+v: no error", bad)
		}
		if _, err := c.Head(ctx, bad, creds("good")); err == nil {
			t.Errorf("Head at %+v: no error", bad)
		}
	}
}

// TestWhatOSSStoredIsChecked: a write whose answer reports another CRC-64 than that of the bytes
// read for it fails, to be sent again; one whose answer reports none fails for good, since
// nothing proves what OSS holds.
func TestWhatOSSStoredIsChecked(t *testing.T) {
	s := newOSS(t, false)
	c := New(10 * time.Second)
	ctx := context.Background()
	target := Target{Endpoint: s.URL, Bucket: "bkt", Key: "k"}
	s.crc = func(data []byte) string { return strconv.FormatUint(crc64.Checksum(data, crcTable)^1, 10) }
	var ce *CRCError
	if _, err := c.Put(ctx, target, creds("good"), strings.NewReader("abc"), 3, nil); !errors.As(err, &ce) || ce.Missing || !Temporary(err) ||
		ce.Read != crc64.Checksum([]byte("abc"), crcTable) || !strings.Contains(err.Error(), "sent again") {
		t.Errorf("a PUT stored as other bytes: %v", err)
	}
	id, _ := c.Initiate(ctx, target, creds("good"))
	if _, err := c.UploadPart(ctx, target, creds("good"), id, 1, strings.NewReader("abc"), 3, nil); !errors.As(err, &ce) || !Temporary(err) {
		t.Errorf("a part stored as other bytes: %v", err)
	}
	s.crc = func([]byte) string { return "" }
	if _, err := c.Put(ctx, target, creds("good"), strings.NewReader("abc"), 3, nil); !errors.As(err, &ce) || !ce.Missing || Temporary(err) ||
		!strings.Contains(err.Error(), "X-Oss-Hash-Crc64ecma") {
		t.Errorf("a PUT answered without a CRC-64: %v", err)
	}
	if _, err := c.Head(ctx, target, creds("good")); !errors.As(err, &ce) || !ce.Missing {
		t.Errorf("a HEAD answered without a CRC-64: %v", err)
	}
}

// TestAStalledConnectionFails: a server that stops answering mid-request fails the request
// after the idle time, rather than holding the upload for ever.
func TestAStalledConnectionFails(t *testing.T) {
	stall := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stall }))
	defer s.Close()
	defer close(stall)
	c := New(200 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := c.Put(context.Background(), Target{Endpoint: s.URL, Bucket: "bkt", Key: "k"}, creds("good"), strings.NewReader("x"), 1, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a stalled request succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a stalled request still waits after 30 s")
	}
}

// TestAnAnswerThatIsNoOSSErrorIsTyped: a gateway's page in place of OSS's XML error keeps its
// status, so a 5xx one passes as OSS's own would, and a 403 one does not.
func TestAnAnswerThatIsNoOSSErrorIsTyped(t *testing.T) {
	for status, temporary := range map[string]bool{"502": true, "429": true, "403": false} {
		err := wrap("PutObject k", fmt.Errorf("oss: service returned invalid response body, status = %s Bad Gateway, RequestId = ", status))
		var e *Error
		if !errors.As(err, &e) || Temporary(err) != temporary {
			t.Errorf("status %s: %v (%T), temporary %v, want %v", status, err, err, Temporary(err), temporary)
		}
	}
}
