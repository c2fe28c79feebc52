package emulator_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/imsfs/imsfs/test/emulator"
)

// recorder is the darabonba client's HTTP client: it keeps a copy of every signed request, so
// that a test can send it again, as is or altered.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (r *recorder) Call(req *http.Request, tr *http.Transport) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(req.Context()))
	r.body = append(r.body, body)
	r.mu.Unlock()
	return (&http.Client{Transport: tr}).Do(req)
}

func (r *recorder) last() (*http.Request, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1].Clone(r.reqs[len(r.reqs)-1].Context()), r.body[len(r.body)-1]
}

func startEmulator(t *testing.T, opts emulator.Options) *emulator.Server {
	t.Helper()
	opts.DataDir = t.TempDir()
	s, err := emulator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(t *testing.T, s *emulator.Server, secret string, rec *recorder) *openapi.Client {
	t.Helper()
	id, good := s.AccessKey()
	if secret == "" {
		secret = good
	}
	cfg := &openapi.Config{
		AccessKeyId: dara.String(id), AccessKeySecret: dara.String(secret),
		Endpoint: dara.String(strings.TrimPrefix(s.URL(), "http://")), Protocol: dara.String("http"),
	}
	if rec != nil {
		cfg.HttpClient = rec
	}
	c, err := openapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rpc(action string) *openapi.Params {
	return &openapi.Params{
		Action: dara.String(action), Version: dara.String("2020-11-09"), Protocol: dara.String("HTTP"),
		Pathname: dara.String("/"), Method: dara.String("POST"), AuthType: dara.String("AK"), Style: dara.String("RPC"),
		ReqBodyType: dara.String("formData"), BodyType: dara.String("json"),
	}
}

func call(c *openapi.Client, action string, query map[string]string) (map[string]any, error) {
	q := map[string]*string{}
	for k, v := range query {
		q[k] = dara.String(v)
	}
	res, err := c.CallApi(rpc(action), &openapi.OpenApiRequest{Query: q}, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	body, _ := res["body"].(map[string]any)
	return body, nil
}

var video = map[string]string{
	"FileInfo":      `{"Type":"video","Name":"clip","Ext":"mp4","Size":5}`,
	"MediaMetaData": `{"Title":"clip","BusinessType":"general"}`,
}

func errCode(err error) (string, int) {
	var se *tea.SDKError
	if errors.As(err, &se) {
		return tea.StringValue(se.Code), tea.IntValue(se.StatusCode)
	}
	return "", 0
}

// send sends a recorded request again, and returns the code of the error answer ("" for 200).
func send(t *testing.T, req *http.Request, body []byte) string {
	t.Helper()
	req.RequestURI = ""
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode == 200 {
		return ""
	}
	return out.Code
}

func TestIMSVerifiesTheACS3Signature(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	rec := &recorder{}
	good := client(t, s, "", rec)
	if _, err := call(good, "CreateUploadMedia", video); err != nil {
		t.Fatalf("a correctly signed request was refused: %v", err)
	}
	signed, body := rec.last()

	t.Run("wrong secret", func(t *testing.T) {
		_, err := call(client(t, s, "not-the-secret", nil), "CreateUploadMedia", video)
		if code, status := errCode(err); code != "SignatureDoesNotMatch" || status != 400 {
			t.Fatalf("got %s %d (%v), want SignatureDoesNotMatch 400", code, status, err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		c, _ := openapi.NewClient(&openapi.Config{AccessKeyId: dara.String("someone"), AccessKeySecret: dara.String("x"),
			Endpoint: dara.String(strings.TrimPrefix(s.URL(), "http://")), Protocol: dara.String("http")})
		_, err := call(c, "GetMediaInfo", map[string]string{"MediaId": "x"})
		if code, status := errCode(err); code != "InvalidAccessKeyId.NotFound" || status != 404 {
			t.Fatalf("got %s %d, want InvalidAccessKeyId.NotFound 404", code, status)
		}
	})
	t.Run("replayed nonce", func(t *testing.T) {
		if code := send(t, signed.Clone(signed.Context()), body); code != "SignatureNonceUsed" {
			t.Fatalf("a replayed request got %q, want SignatureNonceUsed", code)
		}
	})
	t.Run("tampered query", func(t *testing.T) {
		req := signed.Clone(signed.Context())
		q := req.URL.Query()
		q.Set("MediaMetaData", `{"Title":"someone else's","BusinessType":"general"}`)
		req.URL.RawQuery = q.Encode()
		if code := send(t, req, body); code != "SignatureDoesNotMatch" {
			t.Fatalf("a tampered query got %q, want SignatureDoesNotMatch", code)
		}
	})
	t.Run("stale date", func(t *testing.T) {
		// Signed correctly by the SDK's own signer, but 20 minutes ago.
		id, secret := s.AccessKey()
		dr := dara.NewRequest()
		dr.Method, dr.Pathname = dara.String("POST"), dara.String("/")
		dr.Query = map[string]*string{"MediaId": dara.String("x")}
		host := strings.TrimPrefix(s.URL(), "http://")
		payload := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		dr.Headers = map[string]*string{
			"host": dara.String(host), "x-acs-version": dara.String("2020-11-09"), "x-acs-action": dara.String("GetMediaInfo"),
			"x-acs-date":            dara.String(time.Now().Add(-20 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")),
			"x-acs-signature-nonce": dara.String("stale-1"), "x-acs-content-sha256": dara.String(payload),
		}
		auth := openapiutil.GetAuthorization(dr, dara.String("ACS3-HMAC-SHA256"), dara.String(payload), dara.String(id), dara.String(secret))
		req, _ := http.NewRequest("POST", s.URL()+"/?MediaId=x", nil)
		for k, v := range dr.Headers {
			req.Header.Set(k, *v)
		}
		req.Header.Set("Authorization", *auth)
		if code := send(t, req, nil); code != "InvalidTimeStamp.Expired" {
			t.Fatalf("a stale request got %q, want InvalidTimeStamp.Expired", code)
		}
	})
}

func TestCreateUploadMediaEnforcesTheReferenceRules(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	tests := []struct {
		name, fileInfo, meta, code string
	}{
		{"accepted", video["FileInfo"], video["MediaMetaData"], ""},
		{"unknown type", `{"Type":"movie","Name":"a","Ext":"mp4"}`, video["MediaMetaData"], "InvalidParameter"},
		{"no ext", `{"Type":"video","Name":"a"}`, video["MediaMetaData"], "InvalidParameter"},
		{"no title", video["FileInfo"], `{"BusinessType":"general"}`, "InvalidParameter"},
		{"long title", video["FileInfo"], `{"Title":"` + strings.Repeat("t", 129) + `","BusinessType":"general"}`, "InvalidParameter"},
		{"128 characters", video["FileInfo"], `{"Title":"` + strings.Repeat("長", 128) + `","BusinessType":"general"}`, ""},
		{"cover is for images", video["FileInfo"], `{"Title":"a","BusinessType":"cover"}`, "InvalidParameter"},
		{"no business type", video["FileInfo"], `{"Title":"a"}`, "InvalidParameter"},
		{"not JSON", `{"Type":`, video["MediaMetaData"], "InvalidParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(c, "CreateUploadMedia", map[string]string{"FileInfo": tt.fileInfo, "MediaMetaData": tt.meta})
			code, status := errCode(err)
			if code != tt.code || (tt.code != "" && status != 400) {
				t.Fatalf("got %q %d (%v), want %q", code, status, err, tt.code)
			}
		})
	}
}

// ticket creates an asset and returns the OSS bucket its upload credentials open, and its key.
func ticket(t *testing.T, s *emulator.Server, token string) (*oss.Bucket, string) {
	t.Helper()
	body, err := call(client(t, s, "", nil), "CreateUploadMedia", video)
	if err != nil {
		t.Fatal(err)
	}
	var addr struct{ Endpoint, Bucket, FileName string }
	var auth struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
	a, _ := base64.StdEncoding.DecodeString(body["UploadAddress"].(string))
	b, _ := base64.StdEncoding.DecodeString(body["UploadAuth"].(string))
	json.Unmarshal(a, &addr)
	json.Unmarshal(b, &auth)
	if token == "" {
		token = auth.SecurityToken
	}
	c, err := oss.New(addr.Endpoint, auth.AccessKeyId, auth.AccessKeySecret, oss.SecurityToken(token))
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := c.Bucket(addr.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return bucket, addr.FileName
}

func ossCode(err error) string {
	var se oss.ServiceError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

func TestOSSHoldsUploadCredentialsToTheirObjectAndTheirTime(t *testing.T) {
	s := startEmulator(t, emulator.Options{STSTTL: 2 * time.Second})
	bucket, key := ticket(t, s, "")
	if err := bucket.PutObject(key, strings.NewReader("hello")); err != nil {
		t.Fatalf("a PUT with the ticket's credentials was refused: %v", err)
	}
	if got := s.Assets()[0]; got.Status != "Normal" || got.Size != 5 {
		t.Fatalf("after the PUT the asset is %+v, want Normal with 5 bytes", got)
	}
	if err := bucket.PutObject("sv/someone-elses.mp4", strings.NewReader("x")); ossCode(err) != "AccessDenied" {
		t.Errorf("a PUT to another key: %v, want AccessDenied", err)
	}
	wrong, key2 := ticket(t, s, "CAISnot-the-token")
	if err := wrong.PutObject(key2, strings.NewReader("x")); ossCode(err) != "InvalidSecurityToken" {
		t.Errorf("a PUT with the wrong token: %v, want InvalidSecurityToken", err)
	}
	time.Sleep(2100 * time.Millisecond)
	if err := bucket.PutObject(key, strings.NewReader("again")); ossCode(err) != "SecurityTokenExpired" {
		t.Errorf("a PUT after the TTL: %v, want SecurityTokenExpired", err)
	}
	u, _ := url.Parse(s.URL())
	if u.Hostname() != "127.0.0.1" {
		t.Errorf("the emulator advertises %s; the OSS SDK needs an IP for path-style requests", u.Host)
	}
}
