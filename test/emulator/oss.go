package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
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

// OSS limits the emulator enforces.
const (
	minPart    = 100 << 10 // smallest part but the last
	maxPart    = 5 << 30   // largest part, and largest single PUT
	maxPartNum = 10000     // the most parts in one upload, unless Options.MaxParts lowers it
)

func (s *Server) writeOSSError(w http.ResponseWriter, r *http.Request, reqID string, e *ossError) {
	s.opts.Log.Info("OSS request refused", "method", r.Method, "path", r.URL.Path, "code", e.code, "message", e.message)
	// Take the rest of the body before answering. The OSS SDK races with itself (a progress
	// counter shared by net/http's write loop and the caller) when an answer arrives while it
	// is still sending, and the race detector in the e2e tests would report that as ours.
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxPart))
	}
	type errorDoc struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		RequestId string
		HostId    string
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(errorDoc{Code: e.code, Message: e.message, RequestId: reqID, HostId: r.Host})
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Oss-Request-Id", reqID)
	if r.Method == http.MethodHead {
		// A HEAD answer has no body; OSS puts the error document in a header instead.
		w.Header().Set("x-oss-err", base64.StdEncoding.EncodeToString(buf.Bytes()))
		w.WriteHeader(e.status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(e.status)
	_, _ = w.Write(buf.Bytes())
}

func writeXML(w http.ResponseWriter, reqID string, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Oss-Request-Id", reqID)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

// ossPoint names an OSS request as fault rules and stats do.
func ossPoint(r *http.Request, key string) string {
	q := r.URL.Query()
	switch {
	case key == "" && r.Method == http.MethodGet && q.Has("uploads"):
		return "oss.listuploads"
	case key == "":
		return "oss.bucket"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "oss.initiate"
	case r.Method == http.MethodPut && q.Has("uploadId"):
		return "oss.part"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "oss.complete"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "oss.abort"
	case r.Method == http.MethodGet && q.Has("uploadId"):
		return "oss.listparts"
	case r.Method == http.MethodPut:
		return "oss.put"
	case r.Method == http.MethodGet:
		return "oss.get"
	case r.Method == http.MethodHead:
		return "oss.head"
	case r.Method == http.MethodDelete:
		return "oss.delete"
	}
	return "oss.other"
}

// handleOSS answers the OSS object API, path-style: /BUCKET/KEY.
func (s *Server) handleOSS(w http.ResponseWriter, r *http.Request) {
	reqID := strings.ReplaceAll(requestID(), "-", "")[:24]
	bucket, key := r.PathValue("bucket"), r.PathValue("key")
	point := ossPoint(r, key)
	w, answered := s.inject(w, r, point, func(status int, code string) {
		s.writeOSSError(w, r, reqID, errOSS(status, code, "The request failed: a fault the emulator was told to inject."))
	})
	if answered {
		return
	}
	if e := s.serveOSS(w, r, reqID, point, bucket, key); e != nil {
		s.writeOSSError(w, r, reqID, e)
	}
}

func (s *Server) serveOSS(w http.ResponseWriter, r *http.Request, reqID, point, bucket, key string) *ossError {
	if bucket != s.opts.Bucket {
		return errOSS(404, "NoSuchBucket", "The specified bucket does not exist.")
	}
	k, e := s.verifyOSS(r, bucket, key)
	if e != nil {
		return e
	}
	// Upload credentials are for their one object: any other object, and the bucket, is denied.
	if k != nil && k.scoped() && (bucket != k.Bucket || key != k.Key) {
		return errOSS(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
	}
	if key != "" {
		if err := checkKey(key); err != nil {
			return errOSS(400, "InvalidObjectName", "%v", err)
		}
	}
	q := r.URL.Query()
	obj := objectIndex(bucket, key)
	switch point {
	case "oss.listuploads":
		return s.listUploads(w, r, reqID, bucket)
	case "oss.initiate":
		return s.initiateMultipart(w, reqID, bucket, key)
	case "oss.part":
		return s.uploadPart(w, r, reqID, bucket, key, q.Get("uploadId"), q.Get("partNumber"))
	case "oss.complete":
		return s.completeMultipart(w, r, reqID, bucket, key, q.Get("uploadId"))
	case "oss.abort":
		return s.abortMultipart(w, reqID, bucket, key, q.Get("uploadId"))
	case "oss.listparts":
		return s.listParts(w, r, reqID, bucket, key, q.Get("uploadId"))
	case "oss.put":
		return s.putObject(w, r, reqID, bucket, key)
	case "oss.get", "oss.head":
		return s.getObject(w, r, reqID, obj)
	case "oss.delete":
		if err := s.deleteObject(obj); err != nil {
			return errOSS(500, "InternalError", "%v", err)
		}
		w.Header().Set("X-Oss-Request-Id", reqID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return errOSS(501, "NotImplemented", "The emulator does not implement this OSS operation.")
}

// checkContentMD5 compares a Content-MD5 header, when sent, with what arrived.
func checkContentMD5(r *http.Request) func(digest) error {
	return func(d digest) error {
		want := r.Header.Get("Content-MD5")
		if want == "" || want == base64.StdEncoding.EncodeToString(d.md5) {
			return nil
		}
		return errBadDigest
	}
}

var errBadDigest = errors.New("InvalidDigest")

func storeError(err error, what string) *ossError {
	if errors.Is(err, errBadDigest) {
		return errOSS(400, "InvalidDigest", "The Content-MD5 you specified did not match what we received.")
	}
	return errOSS(500, "InternalError", "%s: %v", what, err)
}

func etag(sum []byte) string { return `"` + strings.ToUpper(hex.EncodeToString(sum)) + `"` }

func (s *Server) checkLength(r *http.Request) *ossError {
	if r.ContentLength > maxPart {
		return errOSS(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
	}
	return nil
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, reqID, bucket, key string) *ossError {
	if e := s.checkLength(r); e != nil {
		return e
	}
	obj := objectIndex(bucket, key)
	s.objectStarted(bucket, key)
	body := countingReader{s: s, r: io.LimitReader(r.Body, maxPart+1)}
	meta, err := s.writeObject(obj, body, r.Header.Get("Content-Type"), checkContentMD5(r), func(d digest) string { return etag(d.md5) })
	if err != nil {
		return storeError(err, "store object")
	}
	md5hex := strings.ToLower(strings.Trim(meta.ETag, `"`))
	s.objectComplete(bucket, key, meta.Size, md5hex)
	w.Header().Set("ETag", meta.ETag)
	w.Header().Set("X-Oss-Hash-Crc64ecma", strconv.FormatUint(meta.CRC64, 10))
	w.Header().Set("X-Oss-Request-Id", reqID)
	w.WriteHeader(http.StatusOK)
	return nil
}

// getObject answers GET and HEAD, with one byte range if asked. As OSS does, a range it cannot
// satisfy is ignored and the whole object returned.
func (s *Server) getObject(w http.ResponseWriter, r *http.Request, reqID, obj string) *ossError {
	s.settled(obj)
	meta, err := s.readMeta(obj)
	if errors.Is(err, fs.ErrNotExist) {
		return errOSS(404, "NoSuchKey", "The specified key does not exist.")
	}
	if err != nil {
		return errOSS(500, "InternalError", "%v", err)
	}
	f, err := os.Open(s.objectFile(obj))
	if err != nil {
		return errOSS(404, "NoSuchKey", "The specified key does not exist.")
	}
	defer f.Close()
	h := w.Header()
	h.Set("X-Oss-Request-Id", reqID)
	h.Set("ETag", meta.ETag)
	h.Set("Last-Modified", meta.LastModified.Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Oss-Object-Type", map[bool]string{true: "Multipart", false: "Normal"}[strings.Contains(meta.ETag, "-")])
	if meta.ContentType != "" {
		h.Set("Content-Type", meta.ContentType)
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	start, end, partial := parseRange(r.Header.Get("Range"), meta.Size)
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, meta.Size))
	} else {
		// The CRC covers the whole object, so it is sent only with the whole object.
		h.Set("X-Oss-Hash-Crc64ecma", strconv.FormatUint(meta.CRC64, 10))
	}
	h.Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead || meta.Size == 0 {
		return nil
	}
	_, _ = io.Copy(w, io.NewSectionReader(f, start, end-start+1))
	return nil
}

// parseRange reads a single "bytes=" range; ok is false for none, several, or one that does not fit.
func parseRange(h string, size int64) (start, end int64, ok bool) {
	whole := func() (int64, int64, bool) { return 0, size - 1, false }
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") || size == 0 {
		return whole()
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return whole()
	}
	var err error
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return whole()
		}
		start, end = max(size-n, 0), size-1
	default:
		if start, err = strconv.ParseInt(a, 10, 64); err != nil {
			return whole()
		}
		end = size - 1
		if b != "" {
			if end, err = strconv.ParseInt(b, 10, 64); err != nil {
				return whole()
			}
		}
	}
	if start < 0 || start >= size || end < start {
		return whole()
	}
	return start, min(end, size-1), true
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
	s.objectStarted(bucket, key)
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
	if err != nil || n < 1 || n > s.opts.MaxParts {
		return errOSS(400, "InvalidArgument", "Part number must be an integer between 1 and %d, inclusive.", s.opts.MaxParts)
	}
	if e := s.checkLength(r); e != nil {
		return e
	}
	m, e := s.upload(id, bucket, key)
	if e != nil {
		return e
	}
	body := countingReader{s: s, r: io.LimitReader(r.Body, maxPart+1)}
	d, err := storeFile(filepath.Join(s.uploadDir(m.ID), strconv.Itoa(n)), body, checkContentMD5(r))
	if err != nil {
		return storeError(err, "store part")
	}
	s.mu.Lock()
	if s.uploads[m.ID] == nil {
		s.mu.Unlock()
		return errOSS(404, "NoSuchUpload", "The specified upload does not exist: it was aborted or completed while this part arrived.")
	}
	m.Parts[n] = partInfo{ETag: etag(d.md5), Size: d.size, CRC64: &d.crc, When: time.Now().UTC()}
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

func (s *Server) completeMultipart(w http.ResponseWriter, r *http.Request, reqID, bucket, key, id string) *ossError {
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

	// The multipart ETag is the MD5 of the parts' MD5s, dash, count; the CRC is combined from
	// the parts'. The whole object's MD5 (for the asset) is taken after the answer, as the real
	// service's Complete does not grow with the object: see objectComplete.
	etags := md5.New()
	files := make([]string, len(req.Parts))
	var size int64
	var crc uint64
	for i, p := range req.Parts {
		raw, _ := hex.DecodeString(strings.Trim(parts[i].ETag, `"`))
		etags.Write(raw)
		files[i] = filepath.Join(s.uploadDir(m.ID), strconv.Itoa(p.PartNumber))
		partCRC := parts[i].CRC64
		if partCRC == nil {
			c, err := crcOfFile(files[i])
			if err != nil {
				return errOSS(500, "InternalError", "read part %d: %v", p.PartNumber, err)
			}
			partCRC = &c
		}
		crc = crc64Combine(crc, *partCRC, parts[i].Size)
		size += parts[i].Size
	}
	tag := `"` + strings.ToUpper(hex.EncodeToString(etags.Sum(nil))) + "-" + strconv.Itoa(len(req.Parts)) + `"`
	obj := objectIndex(bucket, key)
	done, e := s.startAssembly(m.ID, obj)
	if e != nil {
		return e
	}
	// The object is put together after the answer, as the real Complete does not grow with the
	// object: what reads or replaces it waits (settled). What a restart finds here it finishes.
	c := completion{Bucket: bucket, Key: key, Size: size, CRC64: crc, ETag: tag}
	for _, p := range req.Parts {
		c.Parts = append(c.Parts, p.PartNumber)
	}
	if err := writeJSONFile(filepath.Join(s.uploadDir(m.ID), completionFile), c); err != nil {
		s.abandonAssembly(m, done)
		return errOSS(500, "InternalError", "%v", err)
	}
	s.objectComplete(bucket, key, size, "")
	go s.assemble(m.ID, c, done)

	w.Header().Set("X-Oss-Hash-Crc64ecma", strconv.FormatUint(crc, 10))
	writeXML(w, reqID, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Location: s.base + "/" + bucket + "/" + key, Bucket: bucket, Key: key, ETag: tag})
	return nil
}

func (s *Server) abortMultipart(w http.ResponseWriter, reqID, bucket, key, id string) *ossError {
	s.mu.Lock()
	m := s.uploads[id]
	if m != nil && m.Bucket == bucket && m.Key == key {
		delete(s.uploads, id)
	} else {
		m = nil
	}
	s.mu.Unlock()
	if m == nil {
		return errOSS(404, "NoSuchUpload", "The specified upload does not exist.")
	}
	os.RemoveAll(s.uploadDir(id))
	s.objectAborted(bucket, key)
	w.Header().Set("X-Oss-Request-Id", reqID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// encoder returns how keys are written in a listing: URL-encoded when the client asks for it.
func encoder(r *http.Request) (string, func(string) string) {
	if r.URL.Query().Get("encoding-type") == "url" {
		return "url", func(s string) string { return ossEscape(s) }
	}
	return "", func(s string) string { return s }
}

func (s *Server) listParts(w http.ResponseWriter, r *http.Request, reqID, bucket, key, id string) *ossError {
	m, e := s.upload(id, bucket, key)
	if e != nil {
		return e
	}
	q := r.URL.Query()
	maxParts, marker := 1000, 0
	if v := q.Get("max-parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errOSS(400, "InvalidArgument", "max-parts must be between 1 and 1000.")
		}
		maxParts = n
	}
	if v := q.Get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errOSS(400, "InvalidArgument", "part-number-marker must be a part number.")
		}
		marker = n
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
		if n > marker {
			parts = append(parts, part{PartNumber: n, LastModified: p.When.Format("2006-01-02T15:04:05.000Z"), ETag: p.ETag, Size: p.Size})
		}
	}
	s.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	truncated, next := false, 0
	if len(parts) > maxParts {
		parts, truncated = parts[:maxParts], true
	}
	if len(parts) > 0 {
		next = parts[len(parts)-1].PartNumber
	}
	encoding, enc := encoder(r)
	writeXML(w, reqID, struct {
		XMLName              xml.Name `xml:"ListPartsResult"`
		EncodingType         string   `xml:",omitempty"`
		Bucket               string
		Key                  string
		UploadId             string
		PartNumberMarker     int
		NextPartNumberMarker int
		MaxParts             int
		IsTruncated          bool
		Part                 []part
	}{EncodingType: encoding, Bucket: bucket, Key: enc(key), UploadId: id, PartNumberMarker: marker, NextPartNumberMarker: next, MaxParts: maxParts, IsTruncated: truncated, Part: parts})
	return nil
}

// listUploads answers ListMultipartUploads: the unfinished uploads under a prefix, by key and
// then initiation time.
func (s *Server) listUploads(w http.ResponseWriter, r *http.Request, reqID, bucket string) *ossError {
	q := r.URL.Query()
	maxUploads := 1000
	if v := q.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errOSS(400, "InvalidArgument", "max-uploads must be between 1 and 1000.")
		}
		maxUploads = n
	}
	prefix, keyMarker, idMarker := q.Get("prefix"), q.Get("key-marker"), q.Get("upload-id-marker")
	type upload struct {
		Key       string
		UploadId  string
		Initiated string
		init      time.Time
	}
	var list []upload
	s.mu.Lock()
	for _, m := range s.uploads {
		if m.Bucket != bucket || !strings.HasPrefix(m.Key, prefix) {
			continue
		}
		if keyMarker != "" && (m.Key < keyMarker || m.Key == keyMarker && (idMarker == "" || m.ID <= idMarker)) {
			continue
		}
		list = append(list, upload{Key: m.Key, UploadId: m.ID, init: m.Initiated})
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool {
		if list[i].Key != list[j].Key {
			return list[i].Key < list[j].Key
		}
		return list[i].UploadId < list[j].UploadId
	})
	truncated := len(list) > maxUploads
	if truncated {
		list = list[:maxUploads]
	}
	nextKey, nextID := "", ""
	if truncated {
		nextKey, nextID = list[len(list)-1].Key, list[len(list)-1].UploadId
	}
	encoding, enc := encoder(r)
	for i := range list {
		list[i].Key = enc(list[i].Key)
		list[i].Initiated = list[i].init.Format("2006-01-02T15:04:05.000Z")
	}
	writeXML(w, reqID, struct {
		XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
		EncodingType       string   `xml:",omitempty"`
		Bucket             string
		KeyMarker          string
		UploadIdMarker     string
		NextKeyMarker      string
		NextUploadIdMarker string
		Prefix             string
		MaxUploads         int
		IsTruncated        bool
		Upload             []upload
	}{EncodingType: encoding, Bucket: bucket, KeyMarker: enc(keyMarker), UploadIdMarker: idMarker, NextKeyMarker: enc(nextKey),
		NextUploadIdMarker: nextID, Prefix: enc(prefix), MaxUploads: maxUploads, IsTruncated: truncated, Upload: list})
	return nil
}

// escapePath escapes an object path for a URL, keeping its slashes.
func escapePath(p string) string { return (&url.URL{Path: p}).EscapedPath() }
