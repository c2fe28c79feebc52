package ims

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"
)

// server answers IMS actions with canned bodies, as the service shapes them, and records what
// the client sent. It checks the client's wire format (every parameter in the query, the
// action in x-acs-action, an ACS3 signature header), not the signature itself: the emulator's
// contract tests do that.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	queries map[string]url.Values // by action, the last one
	answer  func(action string, q url.Values) (int, any)
}

func newServer(t *testing.T, answer func(action string, q url.Values) (int, any)) *server {
	s := &server{queries: map[string]url.Values{}, answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := r.Header.Get("x-acs-action")
		if !strings.HasPrefix(r.Header.Get("Authorization"), "ACS3-HMAC-SHA256 Credential=ak,") || r.Method != http.MethodPost {
			t.Errorf("%s: %s with Authorization %q", action, r.Method, r.Header.Get("Authorization"))
		}
		s.mu.Lock()
		s.queries[action] = r.URL.Query()
		s.mu.Unlock()
		status, body := s.answer(action, r.URL.Query())
		data, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(status)
		w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) query(action string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[action]
}

func newClient(t *testing.T, s *server) *Client {
	t.Helper()
	cred, err := credentials.NewCredential(&credentials.Config{Type: ptr("access_key"), AccessKeyId: ptr("ak"), AccessKeySecret: ptr("sk")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(s.URL, "cn-shanghai", cred)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func TestEveryActionSendsItsParametersAndReadsItsAnswer(t *testing.T) {
	ticket := map[string]any{"RequestId": "r1", "MediaId": "m1", "MediaURL": "http://m", "FileURL": "http://f",
		"UploadAddress": b64(`{"Endpoint":"oss","Bucket":"b","FileName":"k"}`), "UploadAuth": b64(`{"AccessKeyId":"a","AccessKeySecret":"s"}`)}
	info := map[string]any{"MediaId": "m1", "MediaBasicInfo": map[string]any{"MediaId": "m1", "Status": "Normal", "InputURL": "http://in", "UserData": `{"Extend":{"imsfs":"x"}}`},
		"FileInfoList": []any{map[string]any{"FileBasicInfo": map[string]any{"FileUrl": "http://signed?Expires=1"}}}}
	s := newServer(t, func(action string, q url.Values) (int, any) {
		switch action {
		case "CreateUploadMedia", "RefreshUploadMedia":
			return 200, ticket
		case "GetMediaInfo":
			return 200, map[string]any{"RequestId": "r", "MediaInfo": info}
		case "BatchGetMediaInfos":
			return 200, map[string]any{"RequestId": "r", "MediaInfos": []any{info}, "IgnoredList": []string{"m2"}}
		case "UpdateMediaInfo":
			return 200, map[string]any{"RequestId": "r", "MediaId": "m1"}
		case "DeleteMediaInfos":
			return 200, map[string]any{"RequestId": "r", "ForbiddenList": []string{}, "IgnoredList": []string{}}
		case "ListMediaBasicInfos":
			return 200, map[string]any{"RequestId": "r", "MediaInfos": []any{map[string]any{"MediaId": "m1", "MediaBasicInfo": map[string]any{"Status": "Init"}}}, "NextToken": "t2"}
		}
		return 404, map[string]any{"Code": "InvalidAction.NotFound", "Message": "no"}
	})
	c := newClient(t, s)
	ctx := context.Background()

	tk, err := c.CreateUploadMedia(ctx, CreateUploadMediaRequest{AppID: "app-1", FileInfo: FileInfo{Type: "video", Name: "a", Ext: "mp4", Size: 3},
		MediaMetaData: MediaMetaData{Title: "a", BusinessType: "general"}, UserData: map[string]any{"Extend": map[string]string{"imsfs": "x"}}})
	if err != nil || tk.MediaID != "m1" || tk.MediaURL != "http://m" {
		t.Fatalf("CreateUploadMedia: %+v %v", tk, err)
	}
	q := s.query("CreateUploadMedia")
	if q.Get("AppId") != "app-1" || q.Get("EntityId") != "" || !strings.Contains(q.Get("FileInfo"), `"Ext":"mp4"`) ||
		!strings.Contains(q.Get("MediaMetaData"), `"BusinessType":"general"`) || !strings.Contains(q.Get("UserData"), `"imsfs":"x"`) {
		t.Errorf("CreateUploadMedia query: %v", q)
	}
	if _, err := c.RefreshUploadMedia(ctx, "m1"); err != nil || s.query("RefreshUploadMedia").Get("MediaId") != "m1" {
		t.Errorf("RefreshUploadMedia: %v %v", err, s.query("RefreshUploadMedia"))
	}
	mi, err := c.GetMediaInfo(ctx, "m1", 90*time.Second)
	if err != nil || mi.MediaBasicInfo.Status != MediaNormal || mi.FileURL() != "http://signed?Expires=1" || s.query("GetMediaInfo").Get("AuthTimeout") != "90" {
		t.Errorf("GetMediaInfo: %+v %v %v", mi, err, s.query("GetMediaInfo"))
	}
	batch, err := c.BatchGetMediaInfos(ctx, []string{"m1", "m2"}, true)
	if err != nil || len(batch.MediaInfos) != 1 || len(batch.Ignored) != 1 || batch.Ignored[0] != "m2" || s.query("BatchGetMediaInfos").Get("MediaIds") != "m1,m2" || s.query("BatchGetMediaInfos").Get("AdditionType") != "FileInfo" {
		t.Errorf("BatchGetMediaInfos: %+v %v %v", batch, err, s.query("BatchGetMediaInfos"))
	}
	if err := c.UpdateMediaInfo(ctx, Update{MediaID: "m1", Title: "新しい", BusinessType: "opening"}); err != nil {
		t.Errorf("UpdateMediaInfo: %v", err)
	}
	if q := s.query("UpdateMediaInfo"); q.Get("Title") != "新しい" || q.Get("BusinessType") != "opening" {
		t.Errorf("UpdateMediaInfo query: %v", q)
	}
	if err := c.DeleteMediaInfos(ctx, "m1", "m2"); err != nil || s.query("DeleteMediaInfos").Get("MediaIds") != "m1,m2" || s.query("DeleteMediaInfos").Get("DeletePhysicalFiles") != "true" {
		t.Errorf("DeleteMediaInfos: %v %v", err, s.query("DeleteMediaInfos"))
	}
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	page, err := c.ListMediaBasicInfos(ctx, ListRequest{StartTime: start, EndTime: start.Add(time.Hour), MediaType: "video", SortBy: "asc", MaxResults: 100, NextToken: "t1"})
	if err != nil || len(page.Media) != 1 || page.Media[0].MediaID != "m1" || page.NextToken != "t2" {
		t.Errorf("ListMediaBasicInfos: %+v %v", page, err)
	}
	if q := s.query("ListMediaBasicInfos"); q.Get("StartTime") != "2026-11-27T10:00:00Z" || q.Get("EndTime") != "2026-11-27T11:00:00Z" ||
		q.Get("MediaType") != "video" || q.Get("MaxResults") != "100" || q.Get("NextToken") != "t1" || q.Has("Status") {
		t.Errorf("ListMediaBasicInfos query: %v", q)
	}
}

func TestErrorAnswersBecomeAPIErrors(t *testing.T) {
	s := newServer(t, func(action string, q url.Values) (int, any) {
		switch q.Get("MediaId") + q.Get("MediaIds") {
		case "throttled":
			return 400, map[string]any{"RequestId": "r2", "Code": "Throttling.User", "Message": "Request was denied due to user flow control."}
		case "broken":
			return 503, map[string]any{"RequestId": "r3", "Code": "ServiceUnavailable", "Message": "later"}
		case "forbidden":
			return 200, map[string]any{"RequestId": "r4", "ForbiddenList": []string{"forbidden"}}
		case "odd":
			return 200, map[string]any{"RequestId": "r5", "MediaInfo": "not an object"}
		case "empty":
			return 200, map[string]any{"RequestId": "r6"}
		}
		return 400, map[string]any{"RequestId": "r1", "Code": "InvalidParameter", "Message": "The specified MediaId does not exist."}
	})
	c := newClient(t, s)
	ctx := context.Background()
	_, err := c.GetMediaInfo(ctx, "nope", 0)
	var api *APIError
	if !errors.As(err, &api) || api.Code != "InvalidParameter" || api.StatusCode != 400 || api.RequestID != "r1" ||
		api.Message != "The specified MediaId does not exist." || api.Temporary() {
		t.Errorf("a refusal: %#v", err)
	}
	if !strings.Contains(err.Error(), "GetMediaInfo: InvalidParameter: The specified MediaId does not exist. (HTTP 400, request r1)") {
		t.Errorf("its text: %v", err)
	}
	if _, err := c.RefreshUploadMedia(ctx, "throttled"); !errors.As(err, &api) || !api.Temporary() {
		t.Errorf("throttling is temporary: %v", err)
	}
	if _, err := c.RefreshUploadMedia(ctx, "broken"); !errors.As(err, &api) || !api.Temporary() || api.StatusCode != 503 {
		t.Errorf("a 503 is temporary: %v", err)
	}
	if err := c.DeleteMediaInfos(ctx, "forbidden"); !errors.As(err, &api) || api.Code != "Forbidden" || api.Temporary() {
		t.Errorf("a forbidden deletion: %v", err)
	}
	if _, err := c.GetMediaInfo(ctx, "odd", 0); err == nil || strings.Contains(err.Error(), "not an object") {
		t.Errorf("an answer not as described: %v (it must not quote the body)", err)
	}
	if _, err := c.RefreshUploadMedia(ctx, "empty"); err == nil || !strings.Contains(err.Error(), "lacks UploadAddress") {
		t.Errorf("an answer without credentials: %v", err)
	}
	if _, err := c.CreateUploadMedia(ctx, CreateUploadMediaRequest{}); err == nil {
		t.Errorf("CreateUploadMedia refused: no error")
	}
}

func TestNetworkErrorsAreNotAPIErrors(t *testing.T) {
	s := newServer(t, func(string, url.Values) (int, any) { return 200, map[string]any{} })
	c := newClient(t, s)
	s.Close()
	_, err := c.GetMediaInfo(context.Background(), "m1", 0)
	var api *APIError
	if err == nil || errors.As(err, &api) || !strings.HasPrefix(err.Error(), "GetMediaInfo: ") {
		t.Errorf("a refused connection: %v", err)
	}
}

func TestNewRefusesAnEndpointWithoutScheme(t *testing.T) {
	cred, _ := credentials.NewCredential(&credentials.Config{Type: ptr("access_key"), AccessKeyId: ptr("ak"), AccessKeySecret: ptr("sk")})
	for _, e := range []string{"ice.cn-shanghai.aliyuncs.com", "ftp://x", "http://"} {
		if _, err := New(e, "cn-shanghai", cred); err == nil {
			t.Errorf("New(%q) accepted", e)
		}
	}
	if DefaultEndpoint("cn-beijing") != "https://ice.cn-beijing.aliyuncs.com" {
		t.Errorf("DefaultEndpoint: %s", DefaultEndpoint("cn-beijing"))
	}
}

func TestSerialCredentialPassesEveryCallThrough(t *testing.T) {
	cred, _ := credentials.NewCredential(&credentials.Config{Type: ptr("access_key"), AccessKeyId: ptr("ak"), AccessKeySecret: ptr("sk")})
	s := &serialCredential{c: cred}
	id, _ := s.GetAccessKeyId()
	secret, _ := s.GetAccessKeySecret()
	token, _ := s.GetSecurityToken()
	m, err := s.GetCredential()
	if *id != "ak" || *secret != "sk" || *token != "" || err != nil || *m.AccessKeyId != "ak" || *s.GetType() != "access_key" || s.GetBearerToken() == nil {
		t.Errorf("serialCredential: %v %v %v %+v %v", *id, *secret, *token, m, err)
	}
}
