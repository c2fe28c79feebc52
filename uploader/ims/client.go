// Package ims calls the Intelligent Media Services (ICE 2020-11-09) RPC API through the generic
// darabonba-openapi client, which signs each request as every Alibaba Cloud Go SDK does. It
// knows the actions imsfs uses and their wire formats, nothing of files or queues.
package ims

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/credentials-go/credentials"
)

// apiVersion is the ICE (Intelligent Media Services) API version every action here belongs to.
const apiVersion = "2020-11-09"

// Client calls the IMS RPC API, signing with ACS3-HMAC-SHA256.
//
// An openapi.Client is not safe for concurrent use (each call writes its fields), so every call
// gets its own from cfg; they share one HTTP client and so its connections.
type Client struct {
	cfg      openapi.Config // read only: copied for each call
	protocol string
	paces    pacers // how fast each action may be called, as the service's flow control allows
}

// httpClient lets darabonba send through a client of ours: its shared default client has a
// data race (it rewrites its Timeout on every request).
type httpClient struct{ c *http.Client }

func (h httpClient) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	return h.c.Do(req)
}

// DefaultEndpoint returns the IMS endpoint for a region, as the ICE SDK's endpoint map gives it.
func DefaultEndpoint(region string) string {
	return "https://ice." + region + ".aliyuncs.com"
}

// New returns a client for the IMS API at endpoint (scheme included, e.g.
// "http://127.0.0.1:9000" or "https://ice.cn-shanghai.aliyuncs.com"), signing with cred.
func New(endpoint, region string, cred credentials.Credential) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("IMS endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]", endpoint)
	}
	cfg := &openapi.Config{
		Credential:     &serialCredential{c: cred},
		Endpoint:       dara.String(u.Host),
		Protocol:       dara.String(u.Scheme),
		RegionId:       dara.String(region),
		ConnectTimeout: dara.Int(5000),
		ReadTimeout:    dara.Int(30000),
		UserAgent:      dara.String("imsfs"),
		HttpClient:     httpClient{&http.Client{Timeout: 60 * time.Second}},
	}
	if _, err := openapi.NewClient(cfg); err != nil {
		return nil, fmt.Errorf("IMS client: %w", err)
	}
	return &Client{cfg: *cfg, protocol: u.Scheme}, nil
}

// APIError is an error answer from IMS: its code and message as the service gave them.
type APIError struct {
	Action     string
	StatusCode int
	Code       string
	Message    string
	RequestID  string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s: %s (HTTP %d, request %s)", e.Action, e.Code, e.Message, e.StatusCode, e.RequestID)
}

// Temporary reports whether the same call may succeed later: flow control and server-side
// errors.
func (e *APIError) Temporary() bool {
	return e.StatusCode >= 500 || e.Throttled() || e.Code == "InternalError"
}

// Throttled reports whether the service answered with flow control, refusing the call before
// it acted because the caller went too fast: Throttling, Throttling.User, Throttling.Api (400
// or 429), RequestsTooFrequent (403).
func (e *APIError) Throttled() bool {
	return e.StatusCode == 429 || strings.HasPrefix(e.Code, "Throttling") || e.Code == "RequestsTooFrequent"
}

// Overloaded reports whether the service said it cannot take calls now (ServiceUnavailable,
// 503): a reason to go slower too, though the call may have been taken.
func (e *APIError) Overloaded() bool {
	return e.StatusCode == 503 || e.Code == "ServiceUnavailable"
}

// Paces returns how fast the client lets itself call each action it called, and how often the
// service throttled it.
func (c *Client) Paces() []Pace { return c.paces.all() }

// call runs one RPC action with its parameters in the query, as the ICE SDK sends them, and
// decodes the JSON body into out.
func (c *Client) call(ctx context.Context, action string, query map[string]string, out any) error {
	params := &openapi.Params{
		Action:      dara.String(action),
		Version:     dara.String(apiVersion),
		Protocol:    dara.String(c.protocol),
		Pathname:    dara.String("/"),
		Method:      dara.String("POST"),
		AuthType:    dara.String("AK"),
		Style:       dara.String("RPC"),
		ReqBodyType: dara.String("formData"),
		BodyType:    dara.String("json"),
	}
	q := make(map[string]*string, len(query))
	for k, v := range query {
		if v != "" {
			q[k] = dara.String(v)
		}
	}
	cfg := c.cfg
	client, err := openapi.NewClient(&cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	p := c.paces.of(action)
	if err := p.wait(ctx, time.Now()); err != nil {
		return fmt.Errorf("%s: waiting for its pace: %w", action, err)
	}
	called := time.Now()
	res, err := client.CallApiWithCtx(ctx, params, &openapi.OpenApiRequest{Query: q}, &dara.RuntimeOptions{})
	if err != nil {
		err = apiError(action, err)
		var api *APIError
		if errors.As(err, &api) && (api.Throttled() || api.Overloaded()) {
			p.throttledAt(called, time.Now(), api.Code)
		}
		return err
	}
	p.wentThrough(time.Now())
	body, err := json.Marshal(res["body"])
	if err != nil {
		return fmt.Errorf("%s: encode response: %w", action, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		// Not the body itself: answers hold upload credentials and signed URLs.
		return fmt.Errorf("%s: the answer is not what the API reference describes: %w", action, err)
	}
	return nil
}

// apiError turns the SDK's error into an *APIError when the service answered, and leaves
// transport errors (refused connections, timeouts) as they are, wrapped with the action.
func apiError(action string, err error) error {
	var sdk *tea.SDKError
	if !errors.As(err, &sdk) || tea.IntValue(sdk.StatusCode) == 0 {
		return fmt.Errorf("%s: %w", action, err)
	}
	e := &APIError{Action: action, StatusCode: tea.IntValue(sdk.StatusCode), Code: tea.StringValue(sdk.Code), Message: tea.StringValue(sdk.Message)}
	// Data holds the body as the service sent it: its Message has no "code: 400, " decoration.
	var data struct{ Message, RequestId string }
	if json.Unmarshal([]byte(tea.StringValue(sdk.Data)), &data) == nil {
		if data.Message != "" {
			e.Message = data.Message
		}
		e.RequestID = data.RequestId
	}
	return e
}

// CreateUploadMediaRequest holds CreateUploadMedia's parameters; the JSON ones are encoded by
// the client.
type CreateUploadMediaRequest struct {
	AppID         string
	EntityID      string
	FileInfo      FileInfo
	MediaMetaData MediaMetaData
	UserData      map[string]any
	PostProcess   *PostProcessConfig  // PostProcessConfig (video and audio only) [none]
	UploadTarget  *UploadTargetConfig // UploadTargetConfig [IMS's default storage]
}

// PostProcessConfig is CreateUploadMedia's PostProcessConfig: a workflow run after the upload.
type PostProcessConfig struct {
	ProcessType string `json:"ProcessType"` // Workflow
	ProcessID   string `json:"ProcessID"`
}

// UploadTargetConfig is CreateUploadMedia's UploadTargetConfig: where the bytes are stored.
type UploadTargetConfig struct {
	StorageType     string `json:"StorageType"` // oss
	StorageLocation string `json:"StorageLocation"`
}

// FileInfo is CreateUploadMedia's FileInfo parameter.
type FileInfo struct {
	Type string `json:"Type"`
	Name string `json:"Name"`
	Size int64  `json:"Size,omitempty"`
	Ext  string `json:"Ext"`
}

// MediaMetaData is CreateUploadMedia's MediaMetaData parameter.
type MediaMetaData struct {
	Title        string `json:"Title"`
	Description  string `json:"Description,omitempty"`
	CateID       int64  `json:"CateId,omitempty"`
	Tags         string `json:"Tags,omitempty"`
	BusinessType string `json:"BusinessType"`
}

// Ticket is what CreateUploadMedia and RefreshUploadMedia answer: where to upload and with
// which credentials (see Decode).
type Ticket struct {
	RequestID     string `json:"RequestId"`
	MediaID       string `json:"MediaId"`
	MediaURL      string `json:"MediaURL"`
	FileURL       string `json:"FileURL"`
	UploadAddress string `json:"UploadAddress"`
	UploadAuth    string `json:"UploadAuth"`
}

// CreateUploadMedia registers a new asset and returns where and how to upload its bytes.
func (c *Client) CreateUploadMedia(ctx context.Context, req CreateUploadMediaRequest) (*Ticket, error) {
	fi, err := json.Marshal(req.FileInfo)
	if err != nil {
		return nil, err
	}
	md, err := json.Marshal(req.MediaMetaData)
	if err != nil {
		return nil, err
	}
	q := map[string]string{"AppId": req.AppID, "EntityId": req.EntityID, "FileInfo": string(fi), "MediaMetaData": string(md)}
	params := map[string]any{}
	if req.UserData != nil {
		params["UserData"] = req.UserData
	}
	if req.PostProcess != nil {
		params["PostProcessConfig"] = req.PostProcess
	}
	if req.UploadTarget != nil {
		params["UploadTargetConfig"] = req.UploadTarget
	}
	for name, v := range params {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("CreateUploadMedia: %s: %w", name, err)
		}
		q[name] = string(b)
	}
	var out Ticket
	if err := c.call(ctx, "CreateUploadMedia", q, &out); err != nil {
		return nil, err
	}
	if out.MediaID == "" || out.UploadAddress == "" || out.UploadAuth == "" {
		return nil, fmt.Errorf("CreateUploadMedia: answer lacks MediaId, UploadAddress or UploadAuth (request %s)", out.RequestID)
	}
	return &out, nil
}

// RefreshUploadMedia returns fresh upload credentials for an asset whose credentials expired.
func (c *Client) RefreshUploadMedia(ctx context.Context, mediaID string) (*Ticket, error) {
	var out Ticket
	if err := c.call(ctx, "RefreshUploadMedia", map[string]string{"MediaId": mediaID}, &out); err != nil {
		return nil, err
	}
	if out.UploadAddress == "" || out.UploadAuth == "" {
		return nil, fmt.Errorf("RefreshUploadMedia %s: answer lacks UploadAddress or UploadAuth (request %s)", mediaID, out.RequestID)
	}
	return &out, nil
}

// MediaInfo is the part of GetMediaInfo's and BatchGetMediaInfos' answers imsfs reads.
type MediaInfo struct {
	MediaID        string         `json:"MediaId"`
	MediaBasicInfo MediaBasicInfo `json:"MediaBasicInfo"`
	FileInfoList   []MediaFile    `json:"FileInfoList"`
}

// MediaFile is one file of an asset (its source file, once uploaded).
type MediaFile struct {
	FileBasicInfo struct {
		FileName     string `json:"FileName"`
		FileStatus   string `json:"FileStatus"`
		FileType     string `json:"FileType"` // source_file, …
		FileSize     string `json:"FileSize"` // bytes, as a string
		FileURL      string `json:"FileUrl"`  // signed, valid for the AuthTimeout asked
		CreateTime   string `json:"CreateTime"`
		ModifiedTime string `json:"ModifiedTime"`
	} `json:"FileBasicInfo"`
}

// SourceFile returns the asset's source file: the one of FileType source_file, else the first
// with a size; ok is false when the asset lists none (its upload has not come).
func (m *MediaInfo) SourceFile() (f MediaFile, ok bool) {
	for _, f := range m.FileInfoList {
		if f.FileBasicInfo.FileType == "source_file" && f.FileBasicInfo.FileSize != "" {
			return f, true
		}
	}
	for _, f := range m.FileInfoList {
		if f.FileBasicInfo.FileSize != "" {
			return f, true
		}
	}
	return MediaFile{}, false
}

// MediaBasicInfo is an asset's description, as every media action gives it.
type MediaBasicInfo struct {
	MediaID      string `json:"MediaId"`
	InputURL     string `json:"InputURL"`
	MediaType    string `json:"MediaType"`
	BusinessType string `json:"BusinessType"`
	Title        string `json:"Title"`
	Description  string `json:"Description"`
	MediaTags    string `json:"MediaTags"`
	CateID       int64  `json:"CateId"`
	Category     string `json:"Category"`
	Source       string `json:"Source"`
	Status       string `json:"Status"`
	UserData     string `json:"UserData"`
	CreateTime   string `json:"CreateTime"`
	ModifiedTime string `json:"ModifiedTime"`
}

// FileURL returns the signed URL of the asset's source file, or "".
func (m *MediaInfo) FileURL() string {
	for _, f := range m.FileInfoList {
		if f.FileBasicInfo.FileURL != "" {
			return f.FileBasicInfo.FileURL
		}
	}
	return ""
}

// Asset statuses of MediaBasicInfo.Status.
const (
	MediaInit        = "Init"
	MediaPreparing   = "Preparing"
	MediaPrepareFail = "PrepareFail"
	MediaNormal      = "Normal"
)

// TimeFormat is how the API writes times: UTC, to the second.
const TimeFormat = "2006-01-02T15:04:05Z"

// GetMediaInfo returns an asset's information and status; its FileUrl is signed for
// authTimeout (0: the service's default).
func (c *Client) GetMediaInfo(ctx context.Context, mediaID string, authTimeout time.Duration) (*MediaInfo, error) {
	var out struct {
		MediaInfo MediaInfo `json:"MediaInfo"`
	}
	q := map[string]string{"MediaId": mediaID}
	if authTimeout > 0 {
		q["AuthTimeout"] = strconv.Itoa(int(authTimeout / time.Second))
	}
	if err := c.call(ctx, "GetMediaInfo", q, &out); err != nil {
		return nil, err
	}
	return &out.MediaInfo, nil
}

// Batch is what BatchGetMediaInfos answers: the assets it knows, and the ids it does not
// (IgnoredList: deleted, or never made).
type Batch struct {
	MediaInfos []MediaInfo `json:"MediaInfos"`
	Ignored    []string    `json:"IgnoredList"`
}

// BatchGetMediaInfos returns the information and status of several assets in one call; with
// files, their source files too.
func (c *Client) BatchGetMediaInfos(ctx context.Context, mediaIDs []string, files bool) (*Batch, error) {
	var out Batch
	q := map[string]string{"MediaIds": strings.Join(mediaIDs, ",")}
	if files {
		q["AdditionType"] = "FileInfo"
	}
	if err := c.call(ctx, "BatchGetMediaInfos", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Update is UpdateMediaInfo's parameters; an empty one is left as it is.
type Update struct {
	MediaID      string
	Title        string
	BusinessType string
	Description  string // [unchanged]
	Tags         string // comma separated; they replace the asset's tags [unchanged]
	CateID       string // an integer [unchanged]
}

// UpdateMediaInfo changes an asset's Title and BusinessType, and the Description, tags and
// category given. An empty field is not sent: the asset keeps what it has.
func (c *Client) UpdateMediaInfo(ctx context.Context, u Update) error {
	var out struct {
		MediaID string `json:"MediaId"`
	}
	q := map[string]string{"MediaId": u.MediaID, "Title": u.Title, "BusinessType": u.BusinessType,
		"Description": u.Description, "MediaTags": u.Tags, "CateId": u.CateID}
	if u.Tags != "" {
		q["AppendTags"] = "false"
	}
	return c.call(ctx, "UpdateMediaInfo", q, &out)
}

// DeleteMediaInfos deletes assets and their stored files. An id IMS does not know is not an
// error: it is gone either way.
func (c *Client) DeleteMediaInfos(ctx context.Context, mediaIDs ...string) error {
	var out struct {
		ForbiddenList []string `json:"ForbiddenList"`
	}
	q := map[string]string{"MediaIds": strings.Join(mediaIDs, ","), "DeletePhysicalFiles": "true"}
	if err := c.call(ctx, "DeleteMediaInfos", q, &out); err != nil {
		return err
	}
	if len(out.ForbiddenList) > 0 {
		return &APIError{Action: "DeleteMediaInfos", StatusCode: 403, Code: "Forbidden",
			Message: "not allowed to delete " + strings.Join(out.ForbiddenList, ",")}
	}
	return nil
}

// ListRequest is a page of ListMediaBasicInfos: its filters (all optional) and where to go on.
// Its reference says at most the first 100 matches are returned, over all pages: a caller that
// may match more lists in windows of creation time (ListWindows).
type ListRequest struct {
	StartTime, EndTime time.Time // created after StartTime, up to EndTime (whole seconds)
	MediaType          string
	BusinessType       string
	Source             string
	Status             string
	MediaID            string
	SortBy             string        // "asc" or "desc" by creation time
	MaxResults         int           // at most 100
	Files              bool          // IncludeFileBasicInfo: each asset's files too
	AuthTimeout        time.Duration // how long the files' URLs open [the service's: an hour]
	NextToken          string
}

// ListPage is one page of assets and the token of the next ("" at the end).
type ListPage struct {
	Media     []MediaInfo
	NextToken string
}

// ListMediaBasicInfos returns one page of the assets that match r.
func (c *Client) ListMediaBasicInfos(ctx context.Context, r ListRequest) (*ListPage, error) {
	q := map[string]string{"MediaType": r.MediaType, "BusinessType": r.BusinessType, "Source": r.Source,
		"Status": r.Status, "MediaId": r.MediaID, "SortBy": r.SortBy, "NextToken": r.NextToken}
	if !r.StartTime.IsZero() {
		q["StartTime"] = r.StartTime.UTC().Format(TimeFormat)
	}
	if !r.EndTime.IsZero() {
		q["EndTime"] = r.EndTime.UTC().Format(TimeFormat)
	}
	if r.MaxResults > 0 {
		q["MaxResults"] = strconv.Itoa(r.MaxResults)
	}
	if r.Files {
		q["IncludeFileBasicInfo"] = "true"
	}
	if r.AuthTimeout > 0 {
		q["AuthTimeout"] = strconv.FormatInt(int64(r.AuthTimeout/time.Second), 10)
	}
	var res struct {
		MediaInfos []MediaInfo `json:"MediaInfos"`
		NextToken  string      `json:"NextToken"`
	}
	if err := c.call(ctx, "ListMediaBasicInfos", q, &res); err != nil {
		return nil, err
	}
	page := &ListPage{Media: res.MediaInfos, NextToken: res.NextToken}
	for i := range page.Media {
		m := &page.Media[i]
		if m.MediaBasicInfo.MediaID == "" {
			m.MediaBasicInfo.MediaID = m.MediaID
		}
		if m.MediaID == "" {
			m.MediaID = m.MediaBasicInfo.MediaID
		}
	}
	return page, nil
}

// serialCredential lets one credential serve concurrent calls: credentials-go's default chain
// caches which provider answered without a lock, a data race under concurrent uploads.
type serialCredential struct {
	mu sync.Mutex
	c  credentials.Credential
}

func (s *serialCredential) GetAccessKeyId() (*string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.GetAccessKeyId()
}

func (s *serialCredential) GetAccessKeySecret() (*string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.GetAccessKeySecret()
}

func (s *serialCredential) GetSecurityToken() (*string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.GetSecurityToken()
}

func (s *serialCredential) GetBearerToken() *string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.GetBearerToken()
}

func (s *serialCredential) GetType() *string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.GetType()
}

func (s *serialCredential) GetCredential() (*credentials.CredentialModel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.GetCredential()
}
