package emulator_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
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
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	return startOn(t, opts, "127.0.0.1:0")
}

func startOn(t *testing.T, opts emulator.Options, addr string) *emulator.Server {
	t.Helper()
	s, err := emulator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(addr); err != nil {
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

// upload is what CreateUploadMedia hands out: the asset, and an OSS bucket opened with the
// upload credentials.
type upload struct {
	MediaID string
	Key     string
	Bucket  *oss.Bucket
	Auth    struct{ AccessKeyId, AccessKeySecret, SecurityToken, Expiration, ExpireUTCTime string }
	Addr    struct{ Endpoint, Bucket, FileName string }
}

// ticket creates an asset with params (video's when nil) and opens its upload credentials.
func ticket(t *testing.T, s *emulator.Server, params map[string]string, opts ...oss.ClientOption) *upload {
	t.Helper()
	if params == nil {
		params = video
	}
	body, err := call(client(t, s, "", nil), "CreateUploadMedia", params)
	if err != nil {
		t.Fatal(err)
	}
	u := &upload{MediaID: body["MediaId"].(string)}
	a, _ := base64.StdEncoding.DecodeString(body["UploadAddress"].(string))
	b, _ := base64.StdEncoding.DecodeString(body["UploadAuth"].(string))
	if err := json.Unmarshal(a, &u.Addr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &u.Auth); err != nil {
		t.Fatal(err)
	}
	u.Key = u.Addr.FileName
	u.Bucket = openBucket(t, u.Addr.Endpoint, u.Addr.Bucket, u.Auth.AccessKeyId, u.Auth.AccessKeySecret, append([]oss.ClientOption{oss.SecurityToken(u.Auth.SecurityToken)}, opts...)...)
	return u
}

func openBucket(t *testing.T, endpoint, name, id, secret string, opts ...oss.ClientOption) *oss.Bucket {
	t.Helper()
	c, err := oss.New(endpoint, id, secret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := c.Bucket(name)
	if err != nil {
		t.Fatal(err)
	}
	return bucket
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
	u := ticket(t, s, nil)
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("hello")); err != nil {
		t.Fatalf("a PUT with the ticket's credentials was refused: %v", err)
	}
	if got := s.Assets()[0]; got.Status != "Normal" || got.Size != 5 {
		t.Fatalf("after the PUT the asset is %+v, want Normal with 5 bytes", got)
	}
	if err := u.Bucket.PutObject("sv/someone-elses.mp4", strings.NewReader("x")); ossCode(err) != "AccessDenied" {
		t.Errorf("a PUT to another key: %v, want AccessDenied", err)
	}
	other := ticket(t, s, nil)
	if err := other.Bucket.PutObject(other.Key, strings.NewReader("theirs")); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Bucket.GetObject(other.Key); ossCode(err) != "AccessDenied" {
		t.Errorf("a GET of another asset's object: %v, want AccessDenied", err)
	}
	if _, err := u.Bucket.ListMultipartUploads(); ossCode(err) != "AccessDenied" {
		t.Errorf("listing the bucket's uploads: %v, want AccessDenied", err)
	}
	wrong := ticket(t, s, nil)
	bad := openBucket(t, wrong.Addr.Endpoint, wrong.Addr.Bucket, wrong.Auth.AccessKeyId, wrong.Auth.AccessKeySecret, oss.SecurityToken("CAISnot-the-token"))
	if err := bad.PutObject(wrong.Key, strings.NewReader("x")); ossCode(err) != "InvalidSecurityToken" {
		t.Errorf("a PUT with the wrong token: %v, want InvalidSecurityToken", err)
	}
	none := openBucket(t, wrong.Addr.Endpoint, wrong.Addr.Bucket, wrong.Auth.AccessKeyId, wrong.Auth.AccessKeySecret)
	if err := none.PutObject(wrong.Key, strings.NewReader("x")); ossCode(err) != "InvalidSecurityToken" {
		t.Errorf("a PUT without the token: %v, want InvalidSecurityToken", err)
	}
	time.Sleep(2100 * time.Millisecond)
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("again")); ossCode(err) != "SecurityTokenExpired" {
		t.Errorf("a PUT after the TTL: %v, want SecurityTokenExpired", err)
	}
	u2, _ := url.Parse(s.URL())
	if u2.Hostname() != "127.0.0.1" {
		t.Errorf("the emulator advertises %s; the OSS SDK needs an IP for path-style requests", u2.Host)
	}
}

// accountSTS asks the emulator for a temporary key for the account, as STS AssumeRole would give.
func accountSTS(t *testing.T, s *emulator.Server, ttl string) (id, secret, token string) {
	t.Helper()
	resp, err := http.Post(s.URL()+"/_emulator/sts?ttl="+ttl, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var k struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || k.SecurityToken == "" {
		t.Fatalf("POST /_emulator/sts: %v %+v", err, k)
	}
	return k.AccessKeyId, k.AccessKeySecret, k.SecurityToken
}

func stsClient(t *testing.T, s *emulator.Server, id, secret, token, algorithm string) *openapi.Client {
	t.Helper()
	cfg := &openapi.Config{
		AccessKeyId: dara.String(id), AccessKeySecret: dara.String(secret),
		Endpoint: dara.String(strings.TrimPrefix(s.URL(), "http://")), Protocol: dara.String("http"),
	}
	if token != "" {
		cfg.SecurityToken = dara.String(token)
	}
	if algorithm != "" {
		cfg.SignatureAlgorithm = dara.String(algorithm)
	}
	c, err := openapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIMSAcceptsTemporaryKeysAndTheLegacySignature(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	id, secret := s.AccessKey()
	stsID, stsSecret, token := accountSTS(t, s, "1h")
	shortID, shortSecret, shortToken := accountSTS(t, s, "1s")
	up := ticket(t, s, nil)
	time.Sleep(1100 * time.Millisecond) // the 1 s key is now expired

	for _, algorithm := range []string{"", "v2"} {
		name := map[string]string{"": "ACS3-HMAC-SHA256", "v2": "HMAC-SHA1"}[algorithm]
		tests := []struct {
			name, id, secret, token string
			code                    string
			status                  int
		}{
			{"account key", id, secret, "", "", 200},
			{"temporary key with its token", stsID, stsSecret, token, "", 200},
			{"temporary key without its token", stsID, stsSecret, "", "InvalidSecurityToken.MismatchWithAccessKey", 400},
			{"temporary key with another token", stsID, stsSecret, shortToken, "InvalidSecurityToken.MismatchWithAccessKey", 400},
			{"expired temporary key", shortID, shortSecret, shortToken, "InvalidSecurityToken.Expired", 400},
			{"upload credentials", up.Auth.AccessKeyId, up.Auth.AccessKeySecret, up.Auth.SecurityToken, "Forbidden.RAM", 403},
			{"wrong secret", id, "not-the-secret", "", "SignatureDoesNotMatch", 400},
			{"unknown key", "nobody", "x", "", "InvalidAccessKeyId.NotFound", 404},
		}
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				_, err := call(stsClient(t, s, tt.id, tt.secret, tt.token, algorithm), "CreateUploadMedia", video)
				code, status := errCode(err)
				if tt.status == 200 {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if code != tt.code || status != tt.status {
					t.Fatalf("got %s %d (%v), want %s %d", code, status, err, tt.code, tt.status)
				}
			})
		}
	}

	t.Run("legacy signature replayed", func(t *testing.T) {
		rec := &recorder{}
		c := stsClient(t, s, id, secret, "", "v2")
		cfgRec := *c
		cfgRec.HttpClient = rec
		if _, err := call(&cfgRec, "GetMediaInfo", map[string]string{"MediaId": up.MediaID}); err != nil {
			t.Fatal(err)
		}
		req, body := rec.last()
		if code := send(t, req.Clone(req.Context()), body); code != "SignatureNonceUsed" {
			t.Fatalf("a replayed legacy request got %q, want SignatureNonceUsed", code)
		}
		q := req.URL.Query()
		q.Set("MediaId", "someone-else")
		q.Set("SignatureNonce", "fresh-nonce")
		req.URL.RawQuery = q.Encode()
		if code := send(t, req, body); code != "SignatureDoesNotMatch" {
			t.Fatalf("a tampered legacy request got %q, want SignatureDoesNotMatch", code)
		}
	})
}

// newCallbackServer receives message callbacks and passes their JSON bodies on.
func newCallbackServer(t *testing.T, events chan<- map[string]any) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
			events <- ev
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/events"
}
