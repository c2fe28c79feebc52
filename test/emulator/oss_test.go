package emulator_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/imsfs/imsfs/test/emulator"
)

func md5ETag(data []byte) string {
	sum := md5.Sum(data)
	return `"` + strings.ToUpper(hex.EncodeToString(sum[:])) + `"`
}

func read(t *testing.T, b *oss.Bucket, key string, opts ...oss.Option) []byte {
	t.Helper()
	r, err := b.GetObject(key, opts...)
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestOSSObjectContract drives the object API with the real SDK, V1 and V4 signed, with the
// upload credentials of an asset: what OSS accepts, and what it refuses with which code.
func TestOSSObjectContract(t *testing.T) {
	for _, v := range []struct {
		name string
		opts []oss.ClientOption
	}{
		{"V1", nil},
		{"V4", []oss.ClientOption{oss.AuthVersion(oss.AuthV4), oss.Region("cn-shanghai")}},
	} {
		t.Run(v.name, func(t *testing.T) {
			s := startEmulator(t, emulator.Options{})
			u := ticket(t, s, nil, v.opts...)
			data := []byte("0123456789abcdef")

			t.Run("put, head and get", func(t *testing.T) {
				if err := u.Bucket.PutObject(u.Key, bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				h, err := u.Bucket.GetObjectDetailedMeta(u.Key)
				if err != nil {
					t.Fatal(err)
				}
				if h.Get("ETag") != md5ETag(data) || h.Get("Content-Length") != "16" || h.Get("X-Oss-Hash-Crc64ecma") == "" {
					t.Errorf("HEAD: ETag %s, length %s, CRC %q; want %s, 16 and a CRC", h.Get("ETag"), h.Get("Content-Length"), h.Get("X-Oss-Hash-Crc64ecma"), md5ETag(data))
				}
				if got := read(t, u.Bucket, u.Key); !bytes.Equal(got, data) {
					t.Errorf("GET: %q", got)
				}
			})
			t.Run("ranges", func(t *testing.T) {
				if got := read(t, u.Bucket, u.Key, oss.Range(2, 5)); string(got) != "2345" {
					t.Errorf("bytes=2-5: %q", got)
				}
				if got := read(t, u.Bucket, u.Key, oss.NormalizedRange("-3")); string(got) != "def" {
					t.Errorf("bytes=-3: %q", got)
				}
				if got := read(t, u.Bucket, u.Key, oss.NormalizedRange("10-")); string(got) != "abcdef" {
					t.Errorf("bytes=10-: %q", got)
				}
				// OSS ignores a range it cannot satisfy and returns the whole object.
				if got := read(t, u.Bucket, u.Key, oss.Range(100, 200)); !bytes.Equal(got, data) {
					t.Errorf("bytes=100-200 of 16 bytes: %q, want the whole object", got)
				}
			})
			t.Run("Content-MD5", func(t *testing.T) {
				sum := md5.Sum(data)
				good := base64.StdEncoding.EncodeToString(sum[:])
				if err := u.Bucket.PutObject(u.Key, bytes.NewReader(data), oss.ContentMD5(good)); err != nil {
					t.Errorf("a matching Content-MD5 was refused: %v", err)
				}
				bad := base64.StdEncoding.EncodeToString(make([]byte, 16))
				if err := u.Bucket.PutObject(u.Key, bytes.NewReader([]byte("other")), oss.ContentMD5(bad)); ossCode(err) != "InvalidDigest" {
					t.Errorf("a wrong Content-MD5: %v, want InvalidDigest", err)
				}
				if got := read(t, u.Bucket, u.Key); !bytes.Equal(got, data) {
					t.Errorf("a refused PUT replaced the object: %q", got)
				}
			})
			t.Run("multipart", func(t *testing.T) {
				part := bytes.Repeat([]byte("p"), 100<<10)
				imur, err := u.Bucket.InitiateMultipartUpload(u.Key)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{0, 10001} {
					if _, err := u.Bucket.UploadPart(imur, bytes.NewReader(part[:10]), 10, n); ossCode(err) != "InvalidArgument" {
						t.Errorf("part number %d: %v, want InvalidArgument", n, err)
					}
				}
				p1, err := u.Bucket.UploadPart(imur, bytes.NewReader(part), int64(len(part)), 1)
				if err != nil {
					t.Fatal(err)
				}
				if p1.ETag != md5ETag(part) {
					t.Errorf("part ETag %s, want %s", p1.ETag, md5ETag(part))
				}
				small, err := u.Bucket.UploadPart(imur, bytes.NewReader([]byte("tiny")), 4, 2)
				if err != nil {
					t.Fatal(err)
				}
				p3, err := u.Bucket.UploadPart(imur, bytes.NewReader([]byte("last")), 4, 3)
				if err != nil {
					t.Fatal(err)
				}
				lp, err := u.Bucket.ListUploadedParts(imur)
				if err != nil {
					t.Fatal(err)
				}
				if len(lp.UploadedParts) != 3 || lp.UploadedParts[0].Size != len(part) || lp.UploadedParts[1].ETag != md5ETag([]byte("tiny")) {
					t.Errorf("ListParts: %+v", lp.UploadedParts)
				}
				if _, err := u.Bucket.CompleteMultipartUpload(imur, []oss.UploadPart{p1, small, p3}); ossCode(err) != "EntityTooSmall" {
					t.Errorf("a 4-byte part that is not the last: %v, want EntityTooSmall", err)
				}
				wrong := p3
				wrong.ETag = md5ETag([]byte("not it"))
				if _, err := u.Bucket.CompleteMultipartUpload(imur, []oss.UploadPart{p1, wrong}); ossCode(err) != "InvalidPart" {
					t.Errorf("an ETag that does not match: %v, want InvalidPart", err)
				}
				if _, err := u.Bucket.CompleteMultipartUpload(imur, []oss.UploadPart{p1, p1}); ossCode(err) != "InvalidPartOrder" {
					t.Errorf("a part listed twice: %v, want InvalidPartOrder", err)
				}
				if _, err := u.Bucket.CompleteMultipartUpload(imur, []oss.UploadPart{p1, p3}); err != nil {
					t.Fatal(err)
				}
				h, err := u.Bucket.GetObjectDetailedMeta(u.Key)
				if err != nil {
					t.Fatal(err)
				}
				raw1, raw3 := md5.Sum(part), md5.Sum([]byte("last"))
				both := md5.Sum(append(raw1[:], raw3[:]...))
				if want := `"` + strings.ToUpper(hex.EncodeToString(both[:])) + `-2"`; h.Get("ETag") != want {
					t.Errorf("multipart ETag %s, want %s", h.Get("ETag"), want)
				}
				whole := append(append([]byte{}, part...), "last"...)
				if got := read(t, u.Bucket, u.Key); !bytes.Equal(got, whole) {
					t.Errorf("the completed object has %d bytes, want %d", len(got), len(part)+4)
				}
				// The whole object's MD5 is taken after the answer; the listing waits for it.
				resp, err := http.Get(s.URL() + "/_emulator/media")
				if err != nil {
					t.Fatal(err)
				}
				var assets []emulator.Asset
				json.NewDecoder(resp.Body).Decode(&assets)
				resp.Body.Close()
				sum := md5.Sum(whole)
				found := false
				for _, a := range assets {
					if a.Key == u.Key {
						found = true
						if a.MD5 != hex.EncodeToString(sum[:]) {
							t.Errorf("the asset of the completed object lists MD5 %q, want %x", a.MD5, sum)
						}
					}
				}
				if !found {
					t.Errorf("no asset lists the object %s", u.Key)
				}
				if _, err := u.Bucket.UploadPart(imur, bytes.NewReader(part), int64(len(part)), 4); ossCode(err) != "NoSuchUpload" {
					t.Errorf("a part for a completed upload: %v, want NoSuchUpload", err)
				}
				if err := u.Bucket.AbortMultipartUpload(imur); ossCode(err) != "NoSuchUpload" {
					t.Errorf("aborting a completed upload: %v, want NoSuchUpload", err)
				}
			})
			t.Run("delete", func(t *testing.T) {
				if err := u.Bucket.DeleteObject(u.Key); err != nil {
					t.Fatal(err)
				}
				if _, err := u.Bucket.GetObject(u.Key); ossCode(err) != "NoSuchKey" {
					t.Errorf("GET after DELETE: %v, want NoSuchKey", err)
				}
				if _, err := u.Bucket.GetObjectDetailedMeta(u.Key); err == nil || !strings.Contains(err.Error(), "404") {
					t.Errorf("HEAD after DELETE: %v, want 404", err)
				}
				if err := u.Bucket.DeleteObject(u.Key); err != nil {
					t.Errorf("deleting a missing object: %v, want success as OSS answers", err)
				}
			})
			t.Run("wrong secret", func(t *testing.T) {
				b := openBucket(t, u.Addr.Endpoint, u.Addr.Bucket, u.Auth.AccessKeyId, "not-the-secret", append([]oss.ClientOption{oss.SecurityToken(u.Auth.SecurityToken)}, v.opts...)...)
				if err := b.PutObject(u.Key, bytes.NewReader(data)); ossCode(err) != "SignatureDoesNotMatch" {
					t.Errorf("a PUT signed with the wrong secret: %v, want SignatureDoesNotMatch", err)
				}
			})
		})
	}
}

func TestOSSV4ChecksTheRegion(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	u := ticket(t, s, nil, oss.AuthVersion(oss.AuthV4), oss.Region("cn-beijing"))
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("x")); ossCode(err) != "InvalidArgument" {
		t.Errorf("a V4 signature for another region: %v, want InvalidArgument", err)
	}
}

func TestOSSRefusesUnsignedAndUnknownKeys(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	u := ticket(t, s, nil)
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/%s/%s", s.URL(), u.Addr.Bucket, u.Key), strings.NewReader("x"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>AccessDenied</Code>") || !strings.Contains(string(body), "<RequestId>") ||
		resp.Header.Get("X-Oss-Request-Id") == "" {
		t.Errorf("an unsigned PUT: %d %s, want 403 AccessDenied in the OSS XML shape", resp.StatusCode, body)
	}
	b := openBucket(t, u.Addr.Endpoint, u.Addr.Bucket, "LTAInobody", "secret")
	if err := b.PutObject(u.Key, strings.NewReader("x")); ossCode(err) != "InvalidAccessKeyId" {
		t.Errorf("an unknown key: %v, want InvalidAccessKeyId", err)
	}
	other := openBucket(t, u.Addr.Endpoint, "someone-elses-bucket", u.Auth.AccessKeyId, u.Auth.AccessKeySecret, oss.SecurityToken(u.Auth.SecurityToken))
	if err := other.PutObject(u.Key, strings.NewReader("x")); ossCode(err) != "NoSuchBucket" {
		t.Errorf("another bucket: %v, want NoSuchBucket", err)
	}
}

// TestListMultipartUploads lists what is unfinished, as a client does to clean up after a
// crash; only the account's keys may list the bucket.
func TestListMultipartUploads(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	id, secret := s.AccessKey()
	var keys []string
	for i := 0; i < 3; i++ {
		u := ticket(t, s, nil)
		if _, err := u.Bucket.InitiateMultipartUpload(u.Key); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, u.Key)
	}
	admin := openBucket(t, s.URL(), "outin-emulator", id, secret)
	res, err := admin.ListMultipartUploads()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Uploads) != 3 {
		t.Fatalf("listed %d uploads, want 3: %+v", len(res.Uploads), res.Uploads)
	}
	res, err = admin.ListMultipartUploads(oss.Prefix(keys[1]))
	if err != nil || len(res.Uploads) != 1 || res.Uploads[0].Key != keys[1] || res.Uploads[0].Initiated.IsZero() {
		t.Errorf("with prefix %s: %+v %v", keys[1], res.Uploads, err)
	}
	res, err = admin.ListMultipartUploads(oss.MaxUploads(2))
	if err != nil || len(res.Uploads) != 2 || !res.IsTruncated || res.NextKeyMarker == "" {
		t.Errorf("max-uploads 2: %+v %v", res, err)
	}
	next, err := admin.ListMultipartUploads(oss.MaxUploads(2), oss.KeyMarker(res.NextKeyMarker), oss.UploadIDMarker(res.NextUploadIDMarker))
	if err != nil || len(next.Uploads) != 1 || next.IsTruncated {
		t.Errorf("second page: %+v %v", next, err)
	}
}
