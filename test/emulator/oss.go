package emulator

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ossError is an OSS error answer: the XML <Error> document.
type ossError struct {
	status  int
	code    string
	message string
}

func errOSS(status int, code, format string, args ...any) *ossError {
	return &ossError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Server) writeOSSError(w http.ResponseWriter, r *http.Request, reqID string, e *ossError) {
	s.opts.Log.Info("OSS request refused", "method", r.Method, "path", r.URL.Path, "code", e.code, "message", e.message)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Oss-Request-Id", reqID)
	w.WriteHeader(e.status)
	if r.Method == http.MethodHead {
		return
	}
	type errorDoc struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		RequestId string
		HostId    string
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(errorDoc{Code: e.code, Message: e.message, RequestId: reqID, HostId: r.Host})
}

func writeXML(w http.ResponseWriter, reqID string, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Oss-Request-Id", reqID)
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

// ossSubresources are the query parameters the V1 signature covers (the SDK's signKeyList, as
// far as the object API uses them).
var ossSubresources = map[string]bool{
	"acl": true, "uploads": true, "uploadId": true, "partNumber": true, "delete": true, "append": true,
	"position": true, "tagging": true, "security-token": true, "x-oss-process": true, "versionId": true,
	"response-content-type": true, "response-content-language": true, "response-expires": true,
	"response-cache-control": true, "response-content-disposition": true, "response-content-encoding": true,
}

// handleOSS answers the OSS object API, path-style: /BUCKET/KEY.
func (s *Server) handleOSS(w http.ResponseWriter, r *http.Request) {
	reqID := strings.ReplaceAll(requestID(), "-", "")[:24]
	bucket, key := r.PathValue("bucket"), r.PathValue("key")
	if bucket != s.opts.Bucket {
		s.writeOSSError(w, r, reqID, errOSS(404, "NoSuchBucket", "The specified bucket does not exist."))
		return
	}
	q := r.URL.Query()
	write := r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodDelete
	if e := s.verifyOSSV1(r, bucket, key, write); e != nil {
		s.writeOSSError(w, r, reqID, e)
		return
	}
	path, err := s.objectPath(bucket, key)
	if err != nil {
		s.writeOSSError(w, r, reqID, errOSS(400, "InvalidObjectName", "%v", err))
		return
	}
	var e *ossError
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		e = s.initiateMultipart(w, reqID, bucket, key)
	case r.Method == http.MethodPut && q.Has("uploadId"):
		e = s.uploadPart(w, r, reqID, bucket, key, q.Get("uploadId"), q.Get("partNumber"))
	case r.Method == http.MethodPost && q.Has("uploadId"):
		e = s.completeMultipart(w, r, reqID, bucket, key, path, q.Get("uploadId"))
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		e = s.abortMultipart(w, reqID, q.Get("uploadId"))
	case r.Method == http.MethodGet && q.Has("uploadId"):
		e = s.listParts(w, reqID, bucket, key, q.Get("uploadId"))
	case r.Method == http.MethodPut:
		e = s.putObject(w, r, reqID, bucket, key, path)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		e = s.getObject(w, r, reqID, path)
	case r.Method == http.MethodDelete:
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			e = errOSS(500, "InternalError", "%v", err)
		} else {
			w.Header().Set("X-Oss-Request-Id", reqID)
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		e = errOSS(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	if e != nil {
		s.writeOSSError(w, r, reqID, e)
	}
}

// verifyOSSV1 checks an OSS V1 signature, the SDK's default. The main key pair may do anything;
// a temporary key needs its security token and may write only the object it was issued for.
func (s *Server) verifyOSSV1(r *http.Request, bucket, key string, write bool) *ossError {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "OSS ") {
		return errOSS(403, "AccessDenied", "The request is not signed with an OSS V1 signature.")
	}
	akid, sig, ok := strings.Cut(strings.TrimPrefix(auth, "OSS "), ":")
	if !ok {
		return errOSS(400, "InvalidArgument", "Authorization header is invalid.")
	}
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return errOSS(403, "AccessDenied", "The Date header is missing or malformed.")
	}
	if d := time.Since(date); d > maxSkew || d < -maxSkew {
		return errOSS(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
	}
	var secret string
	s.mu.Lock()
	k := s.sts[akid]
	s.mu.Unlock()
	switch {
	case akid == s.opts.AccessKeyID:
		secret = s.opts.AccessKeySecret
	case k != nil:
		secret = k.secret
	default:
		return errOSS(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")
	}

	var oss []string
	for name, vals := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-oss-") {
			oss = append(oss, l+":"+vals[0]+"\n")
		}
	}
	sort.Strings(oss)
	var sub []string
	for name, vals := range r.URL.Query() {
		if ossSubresources[name] {
			if vals[0] != "" {
				sub = append(sub, name+"="+vals[0])
			} else {
				sub = append(sub, name)
			}
		}
	}
	sort.Strings(sub)
	resource := "/" + bucket + "/" + key
	if len(sub) > 0 {
		resource += "?" + strings.Join(sub, "&")
	}
	toSign := r.Method + "\n" + r.Header.Get("Content-MD5") + "\n" + r.Header.Get("Content-Type") + "\n" +
		r.Header.Get("Date") + "\n" + strings.Join(oss, "") + resource
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(toSign))
	if !hmac.Equal([]byte(base64.StdEncoding.EncodeToString(mac.Sum(nil))), []byte(sig)) {
		return errOSS(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. StringToSign: %q", toSign)
	}
	if k == nil {
		return nil
	}
	if r.Header.Get("X-Oss-Security-Token") != k.token {
		return errOSS(403, "InvalidSecurityToken", "The security token you provided is invalid.")
	}
	if time.Now().After(k.expires) {
		return errOSS(403, "SecurityTokenExpired", "The security token you provided has expired.")
	}
	if write && (bucket != k.bucket || key != k.key) {
		return errOSS(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
	}
	return nil
}

// checkContentMD5 compares a Content-MD5 header, when sent, with what arrived.
func checkContentMD5(r *http.Request, sum []byte) *ossError {
	want := r.Header.Get("Content-MD5")
	if want == "" || want == base64.StdEncoding.EncodeToString(sum) {
		return nil
	}
	return errOSS(400, "InvalidDigest", "The Content-MD5 you specified did not match what we received.")
}

func etag(sum []byte) string { return `"` + strings.ToUpper(hex.EncodeToString(sum)) + `"` }

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, reqID, bucket, key, path string) *ossError {
	s.markPreparing(bucket, key)
	d, err := storeFile(path, r.Body)
	if err != nil {
		return errOSS(500, "InternalError", "store object: %v", err)
	}
	if e := checkContentMD5(r, d.md5); e != nil {
		os.Remove(path)
		return e
	}
	s.objectComplete(bucket, key, d)
	w.Header().Set("ETag", etag(d.md5))
	w.Header().Set("X-Oss-Hash-Crc64ecma", strconv.FormatUint(d.crc, 10))
	w.Header().Set("X-Oss-Request-Id", reqID)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, reqID, path string) *ossError {
	f, err := os.Open(path)
	if err != nil {
		return errOSS(404, "NoSuchKey", "The specified key does not exist.")
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		return errOSS(404, "NoSuchKey", "The specified key does not exist.")
	}
	w.Header().Set("X-Oss-Request-Id", reqID)
	http.ServeContent(w, r, "", st.ModTime(), f)
	return nil
}

// markPreparing moves the asset whose object is being written from Init to Preparing.
func (s *Server) markPreparing(bucket, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s._assetFor(bucket, key); a != nil && a.Status == "Init" {
		a.Status, a.ModifiedTime = "Preparing", time.Now().UTC()
		_ = s._saveAssets()
	}
}

// objectComplete records a complete object on its asset, which turns Normal after ReadyDelay.
func (s *Server) objectComplete(bucket, key string, d digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s._assetFor(bucket, key)
	if a == nil {
		return
	}
	a.Size, a.MD5, a.ModifiedTime = d.size, hex.EncodeToString(d.md5), time.Now().UTC()
	a.Status = "Preparing"
	if s.opts.ReadyDelay <= 0 {
		a.Status = "Normal"
		_ = s._saveAssets()
		return
	}
	_ = s._saveAssets()
	id := a.MediaId
	if t := s.timers[id]; t != nil {
		t.Stop()
	}
	s.timers[id] = time.AfterFunc(s.opts.ReadyDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.timers, id)
		if a := s.assets[id]; a != nil && a.Status == "Preparing" && a.MD5 != "" {
			a.Status, a.ModifiedTime = "Normal", time.Now().UTC()
			_ = s._saveAssets()
		}
	})
}

func (s *Server) initiateMultipart(w http.ResponseWriter, reqID, bucket, key string) *ossError {
	m := &multipart{ID: strings.ToUpper(randomHex(16)), Bucket: bucket, Key: key, Initiated: time.Now().UTC(), Parts: map[int]partInfo{}}
	if err := os.MkdirAll(s.uploadDir(m.ID), 0o755); err != nil {
		return errOSS(500, "InternalError", "%v", err)
	}
	s.mu.Lock()
	s.uploads[m.ID] = m
	err := s._saveUpload(m)
	s.mu.Unlock()
	if err != nil {
		return errOSS(500, "InternalError", "%v", err)
	}
	s.markPreparing(bucket, key)
	writeXML(w, reqID, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Bucket   string
		Key      string
		UploadId string
	}{Bucket: bucket, Key: key, UploadId: m.ID})
	return nil
}

// upload returns the unfinished multipart upload id for bucket/key.
func (s *Server) upload(id, bucket, key string) (*multipart, *ossError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.uploads[id]
	if m == nil || m.Bucket != bucket || m.Key != key {
		return nil, errOSS(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	}
	return m, nil
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, reqID, bucket, key, id, number string) *ossError {
	n, err := strconv.Atoi(number)
	if err != nil || n < 1 || n > 10000 {
		return errOSS(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.")
	}
	m, e := s.upload(id, bucket, key)
	if e != nil {
		return e
	}
	d, err := storeFile(filepath.Join(s.uploadDir(m.ID), strconv.Itoa(n)), r.Body)
	if err != nil {
		return errOSS(500, "InternalError", "store part: %v", err)
	}
	if e := checkContentMD5(r, d.md5); e != nil {
		return e
	}
	s.mu.Lock()
	m.Parts[n] = partInfo{ETag: etag(d.md5), Size: d.size, When: time.Now().UTC()}
	err = s._saveUpload(m)
	s.mu.Unlock()
	if err != nil {
		return errOSS(500, "InternalError", "%v", err)
	}
	w.Header().Set("ETag", etag(d.md5))
	w.Header().Set("X-Oss-Hash-Crc64ecma", strconv.FormatUint(d.crc, 10))
	w.Header().Set("X-Oss-Request-Id", reqID)
	w.WriteHeader(http.StatusOK)
	return nil
}

// minPart is the smallest part OSS accepts, but for the last.
const minPart = 100 << 10

func (s *Server) completeMultipart(w http.ResponseWriter, r *http.Request, reqID, bucket, key, path, id string) *ossError {
	m, e := s.upload(id, bucket, key)
	if e != nil {
		return e
	}
	var req struct {
		Parts []struct {
			PartNumber int
			ETag       string
		} `xml:"Part"`
	}
	if err := xml.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil {
		return errOSS(400, "MalformedXML", "The XML you provided was not well-formed: %v", err)
	}
	if len(req.Parts) == 0 {
		return errOSS(400, "MalformedXML", "The XML you provided lists no parts.")
	}
	s.mu.Lock()
	parts := make([]partInfo, len(req.Parts))
	var bad *ossError
	for i, p := range req.Parts {
		info, ok := m.Parts[p.PartNumber]
		switch {
		case i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber:
			bad = errOSS(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
		case !ok || !strings.EqualFold(strings.Trim(info.ETag, `"`), strings.Trim(p.ETag, `"`)):
			bad = errOSS(400, "InvalidPart", "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.")
		case i < len(req.Parts)-1 && info.Size < minPart:
			bad = errOSS(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
		}
		if bad != nil {
			break
		}
		parts[i] = info
	}
	s.mu.Unlock()
	if bad != nil {
		return bad
	}

	// Concatenate the parts; the multipart ETag is the MD5 of the parts' MD5s, dash, count.
	pr, pw := io.Pipe()
	etags := md5.New()
	go func() {
		for i, p := range req.Parts {
			raw, _ := hex.DecodeString(strings.Trim(parts[i].ETag, `"`))
			etags.Write(raw)
			f, err := os.Open(filepath.Join(s.uploadDir(m.ID), strconv.Itoa(p.PartNumber)))
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			_, err = io.Copy(pw, f)
			f.Close()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	d, err := storeFile(path, pr)
	if err != nil {
		return errOSS(500, "InternalError", "assemble object: %v", err)
	}
	s.mu.Lock()
	delete(s.uploads, m.ID)
	s.mu.Unlock()
	os.RemoveAll(s.uploadDir(m.ID))
	s.objectComplete(bucket, key, d)

	tag := `"` + strings.ToUpper(hex.EncodeToString(etags.Sum(nil))) + "-" + strconv.Itoa(len(req.Parts)) + `"`
	w.Header().Set("X-Oss-Hash-Crc64ecma", strconv.FormatUint(d.crc, 10))
	writeXML(w, reqID, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Location: s.base + "/" + bucket + "/" + key, Bucket: bucket, Key: key, ETag: tag})
	return nil
}

func (s *Server) abortMultipart(w http.ResponseWriter, reqID, id string) *ossError {
	s.mu.Lock()
	m := s.uploads[id]
	delete(s.uploads, id)
	s.mu.Unlock()
	if m == nil {
		return errOSS(404, "NoSuchUpload", "The specified upload does not exist.")
	}
	os.RemoveAll(s.uploadDir(id))
	w.Header().Set("X-Oss-Request-Id", reqID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listParts(w http.ResponseWriter, reqID, bucket, key, id string) *ossError {
	m, e := s.upload(id, bucket, key)
	if e != nil {
		return e
	}
	type part struct {
		PartNumber   int
		LastModified string
		ETag         string
		Size         int64
	}
	s.mu.Lock()
	parts := make([]part, 0, len(m.Parts))
	for n, p := range m.Parts {
		parts = append(parts, part{PartNumber: n, LastModified: p.When.Format("2006-01-02T15:04:05.000Z"), ETag: p.ETag, Size: p.Size})
	}
	s.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	writeXML(w, reqID, struct {
		XMLName              xml.Name `xml:"ListPartsResult"`
		Bucket               string
		Key                  string
		UploadId             string
		NextPartNumberMarker int
		MaxParts             int
		IsTruncated          bool
		Part                 []part
	}{Bucket: bucket, Key: key, UploadId: id, MaxParts: 1000, Part: parts})
	return nil
}
