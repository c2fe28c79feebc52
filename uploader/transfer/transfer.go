// Package transfer moves bytes to and from OSS objects with the aliyun-oss-go-sdk: a single PUT,
// the calls of a multipart upload, a HEAD. It signs with whatever credentials its caller hands
// it at each request, so that a refresh takes effect under requests in flight. It knows nothing
// of records, retries or assets.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
// request); errors that are not OSS answers are the network's and may pass too.
func Temporary(err error) bool {
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
	opts := []oss.ClientOption{oss.SetCredentialsProvider(provider{creds}), oss.HTTPClient(c.http), oss.UserAgent("imsfs")}
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
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se oss.ServiceError
	if errors.As(err, &se) {
		return &Error{Op: op, Code: se.Code, Status: se.StatusCode, Msg: se.Message}
	}
	return fmt.Errorf("%s: %w", op, err)
}

type progressListener Progress

func (p progressListener) ProgressChanged(e *oss.ProgressEvent) {
	if e.EventType == oss.TransferDataEvent && p != nil {
		p(e.RwBytes)
	}
}

func (c *Client) options(ctx context.Context, p Progress) []oss.Option {
	opts := []oss.Option{oss.WithContext(ctx)}
	if p != nil {
		opts = append(opts, oss.Progress(progressListener(p)))
	}
	return opts
}

// Put writes size bytes from r as the whole object.
func (c *Client) Put(ctx context.Context, t Target, creds CredentialsFunc, r io.Reader, size int64, p Progress) error {
	b, err := c.bucket(t, creds)
	if err != nil {
		return err
	}
	opts := append(c.options(ctx, p), oss.ContentLength(size))
	return wrap("PutObject "+t.Key, b.PutObject(t.Key, r, opts...))
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

// UploadPart sends part n (size bytes from r) and returns its ETag.
func (c *Client) UploadPart(ctx context.Context, t Target, creds CredentialsFunc, uploadID string, n int, r io.Reader, size int64, p Progress) (string, error) {
	b, err := c.bucket(t, creds)
	if err != nil {
		return "", err
	}
	res, err := b.UploadPart(c.imur(t, uploadID), r, size, n, c.options(ctx, p)...)
	if err != nil {
		return "", wrap(fmt.Sprintf("UploadPart %d of %s", n, t.Key), err)
	}
	return res.ETag, nil
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

// Complete joins the parts, in number order, into the object.
func (c *Client) Complete(ctx context.Context, t Target, creds CredentialsFunc, uploadID string, parts []Part) error {
	b, err := c.bucket(t, creds)
	if err != nil {
		return err
	}
	ps := make([]oss.UploadPart, len(parts))
	for i, p := range parts {
		ps[i] = oss.UploadPart{PartNumber: p.Number, ETag: p.ETag}
	}
	_, err = b.CompleteMultipartUpload(c.imur(t, uploadID), ps, oss.WithContext(ctx))
	return wrap("CompleteMultipartUpload "+t.Key, err)
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

// Head returns the object's size and ETag (without quotes).
func (c *Client) Head(ctx context.Context, t Target, creds CredentialsFunc) (int64, string, error) {
	b, err := c.bucket(t, creds)
	if err != nil {
		return 0, "", err
	}
	h, err := b.GetObjectDetailedMeta(t.Key, oss.WithContext(ctx))
	if err != nil {
		return 0, "", wrap("HeadObject "+t.Key, err)
	}
	size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("HeadObject %s: Content-Length %q", t.Key, h.Get("Content-Length"))
	}
	return size, strings.Trim(h.Get("ETag"), `"`), nil
}
