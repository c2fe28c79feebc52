// Package transfer moves bytes to and from OSS objects with the aliyun-oss-go-sdk: a single PUT,
// the calls of a multipart upload, a HEAD. It signs with whatever credentials its caller hands
// it at each request, so that a refresh takes effect under requests in flight. It knows nothing
// of records, retries or assets.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// Target is the object an upload writes: the UploadAddress IMS gave, and the region its
// credentials name (for V4 signatures; empty signs V1).
type Target struct {
	Endpoint string
	Bucket   string
	Key      string
	Region   string
}

// Credentials are the STS credentials of one upload.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
}

// CredentialsFunc returns the credentials to sign the next request with.
type CredentialsFunc func() Credentials

// Part is one stored part of a multipart upload.
type Part struct {
	Number int
	ETag   string
	Size   int64
	CRC64  uint64 // what UploadPart answers: the part's CRC-64 as OSS reports it (not ListParts)
}

// Object is what HeadObject tells of an object.
type Object struct {
	Size  int64
	ETag  string // without quotes
	CRC64 uint64 // X-Oss-Hash-Crc64ecma
}

// CRCError says that OSS holds other bytes than were read for it (Missing: that it did not say
// which, so that nothing proves it holds them).
type CRCError struct {
	Op        string
	Read, OSS uint64 // CRC-64 (ECMA) of what was read, and as OSS reports it
	Missing   bool
}

func (e *CRCError) Error() string {
	if e.Missing {
		return e.Op + ": OSS did not report the CRC-64 of what it stored (X-Oss-Hash-Crc64ecma), so nothing proves it holds the bytes sent; the endpoint is not OSS or does not act as OSS does"
	}
	return fmt.Sprintf("%s: OSS reports CRC-64 %d of what it stored, the bytes read for it have %d: they are sent again", e.Op, e.OSS, e.Read)
}

// CombineCRC returns the CRC-64 of A followed by B from that of A, that of B and B's length:
// the CRC of an object from those of its parts, in order.
func CombineCRC(a, b uint64, lenB int64) uint64 { return oss.CRC64Combine(a, b, uint64(lenB)) }

var crcTable = crc64.MakeTable(crc64.ECMA)

// crcReader takes the CRC-64 of what is read through it, what a request sent, and tells p how
// much went. (The SDK's own count of progress runs only with its CRC check, which is off.)
type crcReader struct {
	r    io.Reader
	h    hash.Hash64
	p    Progress
	left int64 // of the size announced
}

func newCRCReader(r io.Reader, size int64, p Progress) *crcReader {
	return &crcReader{r: r, h: crc64.New(crcTable), p: p, left: size}
}

func (c *crcReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.h.Write(b[:n])
	c.left -= int64(n)
	if n > 0 && c.p != nil {
		c.p(int64(n))
	}
	return n, err
}

// Len is what is left to read: the SDK takes the request's Content-Length from it (without one,
// the body would go chunked).
func (c *crcReader) Len() int { return int(max(c.left, 0)) }

// reported returns the CRC-64 OSS reports in h.
func reported(op string, h http.Header) (uint64, error) {
	v := h.Get(oss.HTTPHeaderOssCRC64)
	crc, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, &CRCError{Op: op, Missing: true}
	}
	return crc, nil
}

// checked returns the CRC-64 OSS reports in h for what r read, or a CRCError.
func checked(op string, h http.Header, r *crcReader) (uint64, error) {
	crc, err := reported(op, h)
	if err != nil {
		return 0, err
	}
	if read := r.h.Sum64(); read != crc {
		return 0, &CRCError{Op: op, Read: read, OSS: crc}
	}
	return crc, nil
}

// Progress is told how many more bytes went out.
type Progress func(n int64)

// Error is an error answer from OSS.
type Error struct {
	Op     string
	Code   string
	Status int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: OSS %s (HTTP %d): %s", e.Op, e.Code, e.Status, e.Msg)
}

// Expired reports whether err says the credentials are no longer valid, which new ones mend.
func Expired(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case "SecurityTokenExpired", "InvalidSecurityToken", "InvalidAccessKeyId":
		return true
	}
	return false
}

// Gone reports whether err says the multipart upload is unknown to OSS (completed or aborted
// since, or never made), or a part it lists is not what was sent.
func Gone(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Code == "NoSuchUpload" || e.Code == "InvalidPart")
}

// Temporary reports whether an OSS error answer may pass by itself (5xx, throttling, a slow
// request, bytes that arrived other than sent); errors that are not OSS answers are the
// network's and may pass too.
func Temporary(err error) bool {
	var c *CRCError
	if errors.As(err, &c) {
		return !c.Missing
	}
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	return e.Status >= 500 || e.Status == 429 || e.Code == "RequestTimeout" || Expired(err)
}

// Client sends requests through one shared HTTP client, so that uploads reuse connections.
type Client struct {
	http *http.Client // read only
}

// New returns a client whose requests fail after idle without a byte going either way: a
// stalled connection must not hold an upload for ever.
func New(idle time.Duration) *Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	t.ResponseHeaderTimeout = idle
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: idle}, nil
	}
	return &Client{http: &http.Client{Transport: t}}
}

// idleConn fails a read or write that makes no progress for idle.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}

type provider struct{ f CredentialsFunc }

type credentials struct{ c Credentials }

func (c credentials) GetAccessKeyID() string     { return c.c.AccessKeyID }
func (c credentials) GetAccessKeySecret() string { return c.c.AccessKeySecret }
func (c credentials) GetSecurityToken() string   { return c.c.SecurityToken }

func (p provider) GetCredentials() oss.Credentials { return credentials{p.f()} }

// bucket returns the SDK's handle on t's bucket, signing with creds.
func (c *Client) bucket(t Target, creds CredentialsFunc) (*oss.Bucket, error) {
	// The SDK's own CRC check is off: the caller's is made here (checked), once, and gives the
	// CRC that proves the upload whole.
	opts := []oss.ClientOption{oss.SetCredentialsProvider(provider{creds}), oss.HTTPClient(c.http), oss.UserAgent("imsfs"), oss.EnableCRC(false)}
	if t.Region != "" {
		opts = append(opts, oss.AuthVersion(oss.AuthV4), oss.Region(t.Region))
	}
	client, err := oss.New(t.Endpoint, "", "", opts...)
	if err != nil {
		return nil, fmt.Errorf("OSS endpoint %s: %w", t.Endpoint, err)
	}
	return client.Bucket(t.Bucket)
}

// wrap turns the SDK's error answers into *Error; other errors (the network) stay as they are.
// invalidBody is how the OSS SDK says an answer had no OSS error in it, with its HTTP status.
var invalidBody = regexp.MustCompile(`invalid response body, status = (\d+)`)

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se oss.ServiceError
	if errors.As(err, &se) {
		return &Error{Op: op, Code: se.Code, Status: se.StatusCode, Msg: se.Message}
	}
	if m := invalidBody.FindStringSubmatch(err.Error()); m != nil {
		// An answer that is no OSS error (a gateway's page, a proxy's): the SDK says only its
		// status, as text. A 5xx or 429 one passes as OSS's own would.
		status, _ := strconv.Atoi(m[1])
		return &Error{Op: op, Code: "InvalidResponse", Status: status, Msg: err.Error()}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Put writes size bytes from r as the whole object, and returns its CRC-64 as OSS reports it,
// which is that of the bytes read from r (else a CRCError).
func (c *Client) Put(ctx context.Context, t Target, creds CredentialsFunc, r io.Reader, size int64, p Progress) (uint64, error) {
	b, err := c.bucket(t, creds)
	if err != nil {
		return 0, err
	}
	var h http.Header
	cr := newCRCReader(r, size, p)
	opts := []oss.Option{oss.WithContext(ctx), oss.ContentLength(size), oss.GetResponseHeader(&h)}
	op := "PutObject " + t.Key
	var body io.Reader = cr
	if size == 0 {
		body = http.NoBody // else a body of unknown length: the request would go chunked
	}
	if err := wrap(op, b.PutObject(t.Key, body, opts...)); err != nil {
		return 0, err
	}
	return checked(op, h, cr)
}

func (c *Client) imur(t Target, uploadID string) oss.InitiateMultipartUploadResult {
	return oss.InitiateMultipartUploadResult{Bucket: t.Bucket, Key: t.Key, UploadID: uploadID}
}

// Initiate starts a multipart upload and returns its id.
func (c *Client) Initiate(ctx context.Context, t Target, creds CredentialsFunc) (string, error) {
	b, err := c.bucket(t, creds)
	if err != nil {
		return "", err
	}
	res, err := b.InitiateMultipartUpload(t.Key, oss.WithContext(ctx))
	if err != nil {
		return "", wrap("InitiateMultipartUpload "+t.Key, err)
	}
	return res.UploadID, nil
}

// UploadPart sends part n (size bytes from r) and returns it as stored: its ETag, and its
// CRC-64 as OSS reports it, which is that of the bytes read from r (else a CRCError).
func (c *Client) UploadPart(ctx context.Context, t Target, creds CredentialsFunc, uploadID string, n int, r io.Reader, size int64, p Progress) (Part, error) {
	b, err := c.bucket(t, creds)
	if err != nil {
		return Part{}, err
	}
	var h http.Header
	cr := newCRCReader(r, size, p)
	op := fmt.Sprintf("UploadPart %d of %s", n, t.Key)
	res, err := b.UploadPart(c.imur(t, uploadID), cr, size, n, oss.WithContext(ctx), oss.GetResponseHeader(&h))
	if err != nil {
		return Part{}, wrap(op, err)
	}
	crc, err := checked(op, h, cr)
	if err != nil {
		return Part{}, err
	}
	return Part{Number: n, ETag: res.ETag, Size: size, CRC64: crc}, nil
}

// ListParts returns the parts OSS holds of a multipart upload, following its pages.
func (c *Client) ListParts(ctx context.Context, t Target, creds CredentialsFunc, uploadID string) ([]Part, error) {
	b, err := c.bucket(t, creds)
	if err != nil {
		return nil, err
	}
	var out []Part
	marker := 0
	for {
		res, err := b.ListUploadedParts(c.imur(t, uploadID), oss.WithContext(ctx), oss.PartNumberMarker(marker))
		if err != nil {
			return nil, wrap("ListParts "+t.Key, err)
		}
		for _, up := range res.UploadedParts {
			out = append(out, Part{Number: up.PartNumber, ETag: up.ETag, Size: int64(up.Size)})
		}
		if !res.IsTruncated {
			return out, nil
		}
		next, err := strconv.Atoi(res.NextPartNumberMarker)
		if err != nil || next <= marker {
			return out, nil
		}
		marker = next
	}
}

// Complete joins the parts, in number order, into the object, and returns the object's CRC-64
// as OSS reports it.
func (c *Client) Complete(ctx context.Context, t Target, creds CredentialsFunc, uploadID string, parts []Part) (uint64, error) {
	b, err := c.bucket(t, creds)
	if err != nil {
		return 0, err
	}
	ps := make([]oss.UploadPart, len(parts))
	for i, p := range parts {
		ps[i] = oss.UploadPart{PartNumber: p.Number, ETag: p.ETag}
	}
	var h http.Header
	op := "CompleteMultipartUpload " + t.Key
	if _, err = b.CompleteMultipartUpload(c.imur(t, uploadID), ps, oss.WithContext(ctx), oss.GetResponseHeader(&h)); err != nil {
		return 0, wrap(op, err)
	}
	return reported(op, h)
}

// Abort drops a multipart upload and its parts; one OSS no longer knows is not an error.
func (c *Client) Abort(ctx context.Context, t Target, creds CredentialsFunc, uploadID string) error {
	b, err := c.bucket(t, creds)
	if err != nil {
		return err
	}
	err = wrap("AbortMultipartUpload "+t.Key, b.AbortMultipartUpload(c.imur(t, uploadID), oss.WithContext(ctx)))
	if Gone(err) {
		return nil
	}
	return err
}

// Head returns the object's size, ETag and CRC-64.
func (c *Client) Head(ctx context.Context, t Target, creds CredentialsFunc) (Object, error) {
	b, err := c.bucket(t, creds)
	if err != nil {
		return Object{}, err
	}
	op := "HeadObject " + t.Key
	h, err := b.GetObjectDetailedMeta(t.Key, oss.WithContext(ctx))
	if err != nil {
		return Object{}, wrap(op, err)
	}
	size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		return Object{}, fmt.Errorf("%s: Content-Length %q", op, h.Get("Content-Length"))
	}
	crc, err := reported(op, h)
	if err != nil {
		return Object{}, err
	}
	return Object{Size: size, ETag: strings.Trim(h.Get("ETag"), `"`), CRC64: crc}, nil
}
