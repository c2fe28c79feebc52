package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// imsError is an IMS error answer: the JSON envelope every Alibaba Cloud RPC API returns.
type imsError struct {
	status  int
	code    string
	message string
}

// maxSkew is how far a request's date may be from the emulator's clock, as the real gateway allows.
const maxSkew = 15 * time.Minute

func errIMS(status int, code, format string, args ...any) *imsError {
	return &imsError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Server) writeIMS(w http.ResponseWriter, r *http.Request, reqID string, status int, body map[string]any) {
	body["RequestId"] = reqID
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", reqID)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) writeIMSError(w http.ResponseWriter, r *http.Request, reqID string, e *imsError) {
	s.opts.Log.Info("IMS request refused", "action", r.Header.Get("x-acs-action"), "code", e.code, "message", e.message)
	host := r.Host
	s.writeIMS(w, r, reqID, e.status, map[string]any{
		"HostId":    host,
		"Code":      e.code,
		"Message":   e.message,
		"Recommend": "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.code) + "&product=ICE&requestId=" + reqID,
	})
}

// handleIMS answers the IMS RPC actions, the way the darabonba-openapi client calls them:
// parameters in the query, the action in x-acs-action, signed with ACS3-HMAC-SHA256.
func (s *Server) handleIMS(w http.ResponseWriter, r *http.Request) {
	reqID := requestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.writeIMSError(w, r, reqID, errIMS(400, "InvalidParameter", "cannot read the request body: %v", err))
		return
	}
	if e := s.verifyACS3(r, body); e != nil {
		s.writeIMSError(w, r, reqID, e)
		return
	}
	if v := r.Header.Get("x-acs-version"); v != "2020-11-09" {
		s.writeIMSError(w, r, reqID, errIMS(400, "InvalidVersion", "Specified parameter Version is not valid: %q.", v))
		return
	}
	q := r.URL.Query()
	var out map[string]any
	var e *imsError
	switch action := r.Header.Get("x-acs-action"); action {
	case "CreateUploadMedia":
		out, e = s.createUploadMedia(q)
	case "RefreshUploadMedia":
		out, e = s.refreshUploadMedia(q)
	case "GetMediaInfo":
		out, e = s.getMediaInfo(q)
	default:
		e = errIMS(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
	}
	if e != nil {
		s.writeIMSError(w, r, reqID, e)
		return
	}
	s.writeIMS(w, r, reqID, 200, out)
}

// verifyACS3 checks an ACS3-HMAC-SHA256 signature as the gateway does: it rebuilds the
// canonical request from what arrived, with the headers the Authorization header names.
func (s *Server) verifyACS3(r *http.Request, body []byte) *imsError {
	auth := r.Header.Get("Authorization")
	const algo = "ACS3-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return errIMS(400, "MissingAuthorization", "The request is not signed with ACS3-HMAC-SHA256.")
	}
	fields := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			fields[k] = v
		}
	}
	akid, signedHeaders, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if akid == "" || signedHeaders == "" || sig == "" {
		return errIMS(400, "IncompleteSignature", "The Authorization header lacks Credential, SignedHeaders or Signature.")
	}
	if akid != s.opts.AccessKeyID {
		return errIMS(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	date, err := time.Parse("2006-01-02T15:04:05Z", r.Header.Get("x-acs-date"))
	if err != nil {
		return errIMS(400, "MissingParameter", "The x-acs-date header is missing or malformed.")
	}
	if d := time.Since(date); d > maxSkew || d < -maxSkew {
		return errIMS(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	sum := sha256.Sum256(body)
	if payload := r.Header.Get("x-acs-content-sha256"); payload != hex.EncodeToString(sum[:]) {
		return errIMS(400, "SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the body.")
	}

	names := strings.Split(signedHeaders, ";")
	for _, must := range []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"} {
		if !contains(names, must) {
			return errIMS(400, "IncompleteSignature", "Header %s must be signed.", must)
		}
	}
	var canonHeaders strings.Builder
	for _, h := range names {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		canonHeaders.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	canonical := r.Method + "\n" + "/" + "\n" + canonicalQuery(r.URL.Query()) + "\n" + canonHeaders.String() + "\n" +
		signedHeaders + "\n" + r.Header.Get("x-acs-content-sha256")
	h := sha256.Sum256([]byte(canonical))
	stringToSign := "ACS3-HMAC-SHA256\n" + hex.EncodeToString(h[:])
	mac := hmac.New(sha256.New, []byte(s.opts.AccessKeySecret))
	mac.Write([]byte(stringToSign))
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(sig)) {
		return errIMS(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:%s", stringToSign)
	}

	// A nonce is checked last, so that a request refused for another reason does not use it up.
	nonce := r.Header.Get("x-acs-signature-nonce")
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, t := range s.nonces {
		if time.Since(t) > 2*maxSkew {
			delete(s.nonces, n)
		}
	}
	if _, seen := s.nonces[nonce]; seen {
		return errIMS(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	s.nonces[nonce] = time.Now()
	return nil
}

// canonicalQuery encodes query parameters as the ACS3 signer does: sorted keys, values
// percent-encoded with %20 for space, %2A for *, and ~ left alone.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=")
		if v := q.Get(k); v != "" {
			b.WriteString(url.QueryEscape(v))
		}
	}
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(b.String())
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// businessTypes lists, for each FileInfo.Type, the BusinessTypes the reference allows;
// "general" is allowed for every type.
var businessTypes = map[string][]string{
	"video": {"opening", "ending", "general"},
	"image": {"default", "cover", "watermark", "general"},
	"audio": {"general"},
	"text":  {"subtitles", "font", "general"},
	"other": {"general"},
}

func (s *Server) createUploadMedia(q url.Values) (map[string]any, *imsError) {
	var fi struct {
		Type, Name, Ext string
		Size            json.Number
	}
	if e := decodeParam(q, "FileInfo", &fi, true); e != nil {
		return nil, e
	}
	if _, ok := businessTypes[fi.Type]; !ok {
		return nil, errIMS(400, "InvalidParameter", "The specified parameter FileInfo.Type %q is not valid: use video, image, audio, text or other.", fi.Type)
	}
	if fi.Name == "" || fi.Ext == "" {
		return nil, errIMS(400, "InvalidParameter", "The specified parameter FileInfo must contain Name and Ext.")
	}
	var md struct {
		Title, Description, Tags, BusinessType, CoverURL string
		CateId                                           json.Number
	}
	if e := decodeParam(q, "MediaMetaData", &md, true); e != nil {
		return nil, e
	}
	if md.Title == "" {
		return nil, errIMS(400, "InvalidParameter", "The specified parameter MediaMetaData.Title is required.")
	}
	if !utf8.ValidString(md.Title) || utf8.RuneCountInString(md.Title) > 128 {
		return nil, errIMS(400, "InvalidParameter", "The specified parameter MediaMetaData.Title must be UTF-8 and at most 128 characters.")
	}
	if !utf8.ValidString(md.Description) || utf8.RuneCountInString(md.Description) > 1024 {
		return nil, errIMS(400, "InvalidParameter", "The specified parameter MediaMetaData.Description must be UTF-8 and at most 1024 characters.")
	}
	if md.BusinessType == "" {
		return nil, errIMS(400, "InvalidParameter", "The specified parameter MediaMetaData.BusinessType is required.")
	}
	if !contains(businessTypes[fi.Type], md.BusinessType) {
		return nil, errIMS(400, "InvalidParameter", "The specified parameter MediaMetaData.BusinessType %q is not valid for type %q.", md.BusinessType, fi.Type)
	}
	if ud := q.Get("UserData"); ud != "" && !json.Valid([]byte(ud)) {
		return nil, errIMS(400, "InvalidParameter", "The specified parameter UserData is not valid JSON.")
	}
	cate, _ := md.CateId.Int64()
	appID := q.Get("AppId")
	if appID == "" {
		appID = "app-1000000"
	}

	now := time.Now().UTC()
	a := &Asset{
		MediaId: randomHex(16), Status: "Init",
		Title: md.Title, Description: md.Description, Tags: md.Tags, CateId: cate,
		Type: fi.Type, MediaType: fi.Type, BusinessType: md.BusinessType, AppId: appID,
		FileName: fi.Name + "." + fi.Ext, UserData: q.Get("UserData"),
		Bucket: s.opts.Bucket, Key: "sv/" + randomHex(4) + "-" + randomHex(8) + "." + strings.ToLower(fi.Ext),
		CreateTime: now, ModifiedTime: now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assets[a.MediaId] = a
	if err := s._saveAssets(); err != nil {
		return nil, errIMS(500, "InternalError", "The request processing has failed due to some unknown error: %v", err)
	}
	out := s._ticket(a)
	out["MediaURL"] = s.objectURL(a)
	out["FileURL"] = s.objectURL(a)
	return out, nil
}

func (s *Server) refreshUploadMedia(q url.Values) (map[string]any, *imsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s._assetParam(q)
	if e != nil {
		return nil, e
	}
	return s._ticket(a), nil
}

// _assetParam returns the asset the MediaId parameter names. Call with s.mu held.
func (s *Server) _assetParam(q url.Values) (*Asset, *imsError) {
	id := q.Get("MediaId")
	if id == "" {
		return nil, errIMS(400, "MissingParameter", "The input parameter MediaId that is mandatory for processing this request is not supplied.")
	}
	a := s.assets[id]
	if a == nil {
		return nil, errIMS(404, "InvalidParameter", "The specified MediaId %q does not exist.", id)
	}
	return a, nil
}

// _ticket hands out a new temporary key for the asset's object and encodes UploadAddress and
// UploadAuth as the real service does. Call with s.mu held.
func (s *Server) _ticket(a *Asset) map[string]any {
	now := time.Now().UTC()
	k := &stsKey{secret: randomHex(15), token: "CAIS" + randomHex(60), bucket: a.Bucket, key: a.Key, expires: now.Add(s.opts.STSTTL)}
	akid := "STS." + strings.ToUpper(randomHex(12))
	s.sts[akid] = k
	for id, old := range s.sts {
		if now.Sub(old.expires) > time.Hour {
			delete(s.sts, id)
		}
	}
	addr, _ := json.Marshal(map[string]string{"Endpoint": s.base, "Bucket": a.Bucket, "FileName": a.Key})
	auth, _ := json.Marshal(map[string]string{
		"AccessKeyId": akid, "AccessKeySecret": k.secret, "SecurityToken": k.token,
		"Expiration": strconv.Itoa(int(s.opts.STSTTL / time.Second)), "ExpireUTCTime": k.expires.Format(time.RFC3339),
		"Region": s.opts.Region,
	})
	return map[string]any{
		"MediaId":       a.MediaId,
		"UploadAddress": base64.StdEncoding.EncodeToString(addr),
		"UploadAuth":    base64.StdEncoding.EncodeToString(auth),
	}
}

func (s *Server) objectURL(a *Asset) string { return s.base + "/" + a.Bucket + "/" + a.Key }

func (s *Server) getMediaInfo(q url.Values) (map[string]any, *imsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s._assetParam(q)
	if e != nil {
		return nil, e
	}
	const tf = "2006-01-02T15:04:05Z"
	files := []any{}
	if a.Status == "Normal" {
		files = append(files, map[string]any{"FileBasicInfo": map[string]any{
			"FileName": a.FileName, "FileStatus": "Normal", "FileType": "source_file",
			"FileSize": strconv.FormatInt(a.Size, 10), "FileUrl": s.objectURL(a), "Region": s.opts.Region,
			"CreateTime": a.CreateTime.Format(tf), "ModifiedTime": a.ModifiedTime.Format(tf),
		}})
	}
	return map[string]any{"MediaInfo": map[string]any{
		"MediaId": a.MediaId,
		"MediaBasicInfo": map[string]any{
			"MediaId": a.MediaId, "InputURL": s.objectURL(a), "MediaType": a.MediaType, "BusinessType": a.BusinessType,
			"Source": "oss", "Title": a.Title, "Description": a.Description, "CateId": a.CateId, "MediaTags": a.Tags,
			"UserData": a.UserData, "Status": a.Status, "CreateTime": a.CreateTime.Format(tf),
			"ModifiedTime": a.ModifiedTime.Format(tf), "Biz": "ICE", "UploadSource": "general",
		},
		"FileInfoList": files,
	}}, nil
}

// decodeParam decodes a JSON-valued query parameter.
func decodeParam(q url.Values, name string, v any, required bool) *imsError {
	raw := q.Get(name)
	if raw == "" {
		if required {
			return errIMS(400, "MissingParameter", "The input parameter %s that is mandatory for processing this request is not supplied.", name)
		}
		return nil
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return errIMS(400, "InvalidParameter", "The specified parameter %s is not valid JSON: %v", name, err)
	}
	return nil
}
