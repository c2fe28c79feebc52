package emulator

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The parameter rules below are the reference's (../shared/CreateUploadMedia.md) where it is
// clear; docs/emulator.md (the CreateUploadMedia rules) lists which are choices where it is not.

// businessTypes lists, for each FileInfo.Type, the BusinessTypes allowed: the reference's
// pairs, watermark for images (the reference says "material", which is not a Type), and
// general for every type.
var businessTypes = map[string][]string{
	"video": {"opening", "ending", "general"},
	"image": {"default", "cover", "watermark", "general"},
	"audio": {"general"},
	"text":  {"subtitles", "font", "general"},
	"other": {"general"},
}

// mediaFormats are the extensions the service takes, by FileInfo.Type and, for text, by
// BusinessType ("Overview of media upload"). Type other has no list.
var mediaFormats = map[string][]string{
	"video": {"mp4", "ts", "3gp", "mpg", "mpeg", "mpe", "dat", "vob", "asf", "avi", "wmv", "flv", "f4v", "rm", "rmvb",
		"mov", "mkv", "m3u8", "dv", "gif", "m2t", "m4v", "mj2", "mjpeg", "mts", "ogg", "qt", "swf", "webm"},
	"audio":          {"mp3", "wma", "wav", "aac", "ra", "m4a", "flac", "ape", "ac3", "amr", "caf", "acm"},
	"image":          {"gif", "webp", "png", "jpg", "jpeg", "heic"},
	"text/subtitles": {"srt", "vtt", "ass"},
	"text/font":      {"ttf", "ttc", "fon"},
	"text":           {"srt", "vtt", "ass", "ttf", "ttc", "fon"},
}

func formatsFor(typ, business string) []string {
	if f, ok := mediaFormats[typ+"/"+business]; ok {
		return f
	}
	return mediaFormats[typ]
}

const (
	maxTitle        = 128     // characters in CreateUploadMedia, bytes in UpdateMediaInfo
	defaultMaxMedia = 5 << 30 // a single audio or video file ("5 GB", read as GiB)
	maxDescription  = 1024
	maxTags         = 16
	maxTag          = 32 // bytes, in UpdateMediaInfo
	timeFormat      = "2006-01-02T15:04:05Z"
	defaultAppID    = "app-1000000"
)

func invalid(format string, args ...any) *imsError {
	return errIMS(400, "InvalidParameter", format, args...)
}

func missing(name string) *imsError {
	return errIMS(400, "MissingParameter", "The input parameter %s that is mandatory for processing this request is not supplied.", name)
}

// decodeParam decodes a JSON-valued parameter, which must be an object.
func decodeParam(q url.Values, name string, v any, required bool) *imsError {
	raw := q.Get(name)
	if raw == "" {
		if required {
			return missing(name)
		}
		return nil
	}
	if !utf8.ValidString(raw) {
		return invalid("The specified parameter %s must be UTF-8.", name)
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return invalid("The specified parameter %s is not valid JSON: %v", name, err)
	}
	return nil
}

// checkText applies the length and encoding rules of Title and Description.
func checkText(name, v string, max int) *imsError {
	if !utf8.ValidString(v) {
		return invalid("The specified parameter %s must be UTF-8.", name)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return invalid("The specified parameter %s is %d characters long; at most %d are allowed.", name, n, max)
	}
	return nil
}

func checkTags(name, tags string) *imsError {
	if tags == "" {
		return nil
	}
	if n := len(strings.Split(tags, ",")); n > maxTags {
		return invalid("The specified parameter %s has %d tags; at most %d are allowed.", name, n, maxTags)
	}
	return checkText(name, tags, 1024)
}

// checkUserData validates UserData: a JSON object whose MessageCallback.CallbackURL, when
// given, is an http(s) URL, and whose Extend, when given, is an object or a string.
func checkUserData(raw string) *imsError {
	if raw == "" {
		return nil
	}
	if !utf8.ValidString(raw) {
		return invalid("The specified parameter UserData must be UTF-8.")
	}
	var ud struct {
		MessageCallback *struct{ CallbackURL string }
		Extend          json.RawMessage
	}
	if err := json.Unmarshal([]byte(raw), &ud); err != nil {
		return invalid("The specified parameter UserData is not a valid JSON object: %v", err)
	}
	if ud.MessageCallback != nil {
		u, err := url.Parse(ud.MessageCallback.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("The specified parameter UserData.MessageCallback.CallbackURL %q is not an http(s) URL.", ud.MessageCallback.CallbackURL)
		}
	}
	if len(ud.Extend) > 0 && ud.Extend[0] != '{' && ud.Extend[0] != '"' {
		return invalid("The specified parameter UserData.Extend must be a JSON object or string.")
	}
	return nil
}

func (s *Server) createUploadMedia(q url.Values) (map[string]any, *imsError) {
	var fi struct {
		Type, Name, Ext string
		Size            json.Number
	}
	if e := decodeParam(q, "FileInfo", &fi, true); e != nil {
		return nil, e
	}
	if fi.Type == "" || fi.Name == "" || fi.Ext == "" {
		return nil, invalid("The specified parameter FileInfo must contain Type, Name and Ext.")
	}
	if _, ok := businessTypes[fi.Type]; !ok {
		return nil, invalid("The specified parameter FileInfo.Type %q is not valid: use video, image, audio, text or other.", fi.Type)
	}
	if strings.ContainsAny(fi.Ext, "./\\") || !utf8.ValidString(fi.Name) {
		return nil, invalid("The specified parameter FileInfo.Ext %q is not a file name extension.", fi.Ext)
	}
	if fi.Size != "" {
		if n, err := fi.Size.Int64(); err != nil || n < 0 {
			return nil, invalid("The specified parameter FileInfo.Size %q is not a size in bytes.", fi.Size)
		}
	}
	var md struct {
		Title, Description, Tags, BusinessType, CoverURL, DynamicMetaData string
		CateId                                                            json.Number
	}
	if e := decodeParam(q, "MediaMetaData", &md, true); e != nil {
		return nil, e
	}
	if md.Title == "" {
		return nil, invalid("The specified parameter MediaMetaData.Title is required.")
	}
	if e := checkText("MediaMetaData.Title", md.Title, maxTitle); e != nil {
		return nil, e
	}
	if e := checkText("MediaMetaData.Description", md.Description, maxDescription); e != nil {
		return nil, e
	}
	if e := checkTags("MediaMetaData.Tags", md.Tags); e != nil {
		return nil, e
	}
	if md.BusinessType == "" {
		return nil, invalid("The specified parameter MediaMetaData.BusinessType is required.")
	}
	if !contains(businessTypes[fi.Type], md.BusinessType) {
		return nil, invalid("The specified parameter MediaMetaData.BusinessType %q is not valid for type %q: use %s.", md.BusinessType, fi.Type, strings.Join(businessTypes[fi.Type], ", "))
	}
	if f := formatsFor(fi.Type, md.BusinessType); f != nil && !contains(f, strings.ToLower(fi.Ext)) {
		return nil, invalid("The specified parameter FileInfo.Ext %q is not a format the media library takes for %s: use %s.", fi.Ext, fi.Type, strings.Join(f, ", "))
	}
	if n, err := fi.Size.Int64(); err == nil && (fi.Type == "video" || fi.Type == "audio") && n > s.opts.MaxMediaSize {
		return nil, invalid("The specified parameter FileInfo.Size %d exceeds the largest %s file the media library takes (%d bytes).", n, fi.Type, s.opts.MaxMediaSize)
	}
	var cate int64
	if md.CateId != "" {
		n, err := md.CateId.Int64()
		if err != nil {
			return nil, invalid("The specified parameter MediaMetaData.CateId %q is not an integer.", md.CateId)
		}
		cate = n
	}
	if e := checkPostProcess(q, fi.Type); e != nil {
		return nil, e
	}
	if e := checkUploadTarget(q); e != nil {
		return nil, e
	}
	if e := checkUserData(q.Get("UserData")); e != nil {
		return nil, e
	}
	appID := q.Get("AppId")
	if appID == "" {
		appID = defaultAppID
	}
	var pp struct{ ProcessID string }
	var ut struct{ StorageLocation string }
	_ = json.Unmarshal([]byte(q.Get("PostProcessConfig")), &pp) // checked above
	_ = json.Unmarshal([]byte(q.Get("UploadTargetConfig")), &ut)

	now := time.Now().UTC().Truncate(time.Second)
	a := &Asset{
		MediaId: randomHex(16), Status: "Init",
		Title: md.Title, Description: md.Description, Tags: md.Tags, CateId: cate, CoverURL: md.CoverURL,
		Type: fi.Type, MediaType: fi.Type, BusinessType: md.BusinessType, AppId: appID, EntityId: q.Get("EntityId"),
		FileName: fi.Name + "." + fi.Ext, UserData: q.Get("UserData"), Workflow: pp.ProcessID, Storage: ut.StorageLocation,
		Bucket: s.opts.Bucket, Key: "sv/" + randomHex(4) + "-" + randomHex(5) + "/" + randomHex(8) + "." + strings.ToLower(fi.Ext),
		CreateTime: now, ModifiedTime: now,
	}
	s.mu.Lock()
	s._index(a)
	err := s._saveAsset(a)
	s.mu.Unlock()
	if err != nil {
		return nil, errIMS(500, "InternalError", "The request processing has failed due to some unknown error: %v", err)
	}
	out, e := s.ticket(a)
	if e != nil {
		return nil, e
	}
	out["MediaURL"] = s.objectURL(a)
	out["FileURL"] = s.objectURL(a)
	return out, nil
}

// checkPostProcess: PostProcessConfig is for video and audio, with ProcessType Workflow.
func checkPostProcess(q url.Values, typ string) *imsError {
	var pp struct{ ProcessType, ProcessID string }
	if e := decodeParam(q, "PostProcessConfig", &pp, false); e != nil || q.Get("PostProcessConfig") == "" {
		return e
	}
	if typ != "video" && typ != "audio" {
		return invalid("The specified parameter PostProcessConfig is only for video and audio, not %s.", typ)
	}
	if pp.ProcessType != "Workflow" {
		return invalid("The specified parameter PostProcessConfig.ProcessType %q is not valid: use Workflow.", pp.ProcessType)
	}
	if pp.ProcessID == "" {
		return invalid("The specified parameter PostProcessConfig.ProcessID is required with ProcessType Workflow.")
	}
	return nil
}

// checkUploadTarget: StorageType oss, and a StorageLocation that is a storage address of the
// media service (a bare outin-* host), never an OSS URL.
func checkUploadTarget(q url.Values) *imsError {
	var ut struct{ StorageType, StorageLocation string }
	if e := decodeParam(q, "UploadTargetConfig", &ut, false); e != nil || q.Get("UploadTargetConfig") == "" {
		return e
	}
	if ut.StorageType != "oss" {
		return invalid("The specified parameter UploadTargetConfig.StorageType %q is not valid: use oss.", ut.StorageType)
	}
	loc := ut.StorageLocation
	if loc == "" {
		return invalid("The specified parameter UploadTargetConfig.StorageLocation is required.")
	}
	if strings.Contains(loc, "://") || strings.ContainsAny(loc, "/?#") || !strings.HasPrefix(loc, "outin-") {
		return invalid("The specified parameter UploadTargetConfig.StorageLocation %q is not a storage address of the media service; an OSS URL is not allowed.", loc)
	}
	return nil
}

func (s *Server) refreshUploadMedia(q url.Values) (map[string]any, *imsError) {
	s.mu.Lock()
	a, e := s._assetParam(q)
	var copy Asset
	if a != nil {
		copy = *a
	}
	s.mu.Unlock()
	if e != nil {
		return nil, e
	}
	return s.ticket(&copy)
}

// _assetParam returns the asset the MediaId (or else InputURL) parameter names. Call with s.mu held.
func (s *Server) _assetParam(q url.Values) (*Asset, *imsError) {
	id := q.Get("MediaId")
	if id == "" && q.Get("InputURL") != "" {
		bucket, key, ok := parseInputURL(q.Get("InputURL"))
		if a := s.byObject[objectIndex(bucket, key)]; ok && a != nil {
			return a, nil
		}
		return nil, errIMS(404, "InvalidParameter", "The specified InputURL %q is not registered as a media asset.", q.Get("InputURL"))
	}
	if id == "" {
		return nil, missing("MediaId")
	}
	a := s.assets[id]
	if a == nil {
		return nil, errIMS(404, "InvalidParameter", "The specified MediaId %q does not exist.", id)
	}
	return a, nil
}

// parseInputURL reads an object address: oss://BUCKET/KEY, or an http(s) URL path-style
// (/BUCKET/KEY, as the emulator's URLs are) or virtual-host style (BUCKET.oss-...).
func parseInputURL(raw string) (bucket, key string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", false
	}
	switch u.Scheme {
	case "oss":
		return u.Host, strings.TrimPrefix(u.Path, "/"), u.Host != ""
	case "http", "https":
		if b, _, found := strings.Cut(u.Hostname(), ".oss-"); found {
			return b, strings.TrimPrefix(u.Path, "/"), true
		}
		b, k, found := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		return b, k, found
	}
	return "", "", false
}

// ticket hands out a new temporary key for the asset's object and encodes UploadAddress and
// UploadAuth as the real service does.
func (s *Server) ticket(a *Asset) (map[string]any, *imsError) {
	akid, k, err := s.issueSTS(a.Bucket, a.Key, s.opts.STSTTL)
	if err != nil {
		return nil, errIMS(500, "InternalError", "The request processing has failed due to some unknown error: %v", err)
	}
	addr, _ := json.Marshal(map[string]string{"Endpoint": s.base, "Bucket": a.Bucket, "FileName": a.Key})
	auth, _ := json.Marshal(map[string]string{
		"AccessKeyId": akid, "AccessKeySecret": k.Secret, "SecurityToken": k.Token,
		"Expiration": strconv.Itoa(int(s.opts.STSTTL / time.Second)), "ExpireUTCTime": k.Expires.Format(timeFormat),
		"Region": s.opts.Region,
	})
	return map[string]any{
		"MediaId":       a.MediaId,
		"UploadAddress": base64.StdEncoding.EncodeToString(addr),
		"UploadAuth":    base64.StdEncoding.EncodeToString(auth),
	}, nil
}

// objectURL is an object's address without authentication, as FileURL and MediaURL give it.
func (s *Server) objectURL(a *Asset) string { return s.base + escapePath("/"+a.Bucket+"/"+a.Key) }

// basicInfo is MediaBasicInfo as GetMediaInfo and ListMediaBasicInfos give it.
func (s *Server) basicInfo(a *Asset) map[string]any {
	return map[string]any{
		"MediaId": a.MediaId, "InputURL": s.objectURL(a), "MediaType": a.MediaType, "BusinessType": a.BusinessType,
		"Source": "oss", "Title": a.Title, "Description": a.Description, "Category": a.Category, "CateId": a.CateId,
		"CateName": "", "MediaTags": a.Tags, "CoverURL": a.CoverURL, "UserData": a.UserData,
		"Snapshots": "[]", "SpriteImages": "[]", "Status": a.Status, "TranscodeStatus": "Init",
		"CreateTime": a.CreateTime.Format(timeFormat), "ModifiedTime": a.ModifiedTime.Format(timeFormat),
		"DeletedTime": "", "Biz": "ICE", "UploadSource": "general", "ReferenceId": a.ReferenceId,
	}
}

// fileInfoList is the asset's source file, once it is complete.
func (s *Server) fileInfoList(a *Asset, authTimeout time.Duration) []any {
	if a.MD5 == "" {
		return []any{}
	}
	return []any{map[string]any{
		"FileBasicInfo": map[string]any{
			"FileName": a.FileName, "FileStatus": "Normal", "FileType": "source_file",
			"FileSize": strconv.FormatInt(a.Size, 10), "FileUrl": s.signedURL(a.Bucket, a.Key, authTimeout),
			"Region": s.opts.Region, "FormatName": "", "Duration": "", "Bitrate": "", "Width": "", "Height": "",
			"CreateTime": a.CreateTime.Format(timeFormat), "ModifiedTime": a.ModifiedTime.Format(timeFormat),
		},
		"VideoStreamInfoList": []any{}, "AudioStreamInfoList": []any{}, "SubtitleStreamInfoList": []any{},
	}}
}

// authTimeout reads AuthTimeout: seconds, 1 to 86400, 3600 when absent (BatchGetMediaInfos'
// reference gives the range; GetMediaInfo's is silent and taken to be the same).
func authTimeout(q url.Values) (time.Duration, *imsError) {
	v := q.Get("AuthTimeout")
	if v == "" {
		return time.Hour, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > 86400 {
		return 0, invalid("The specified parameter AuthTimeout %q is not valid: use 1 to 86400 seconds.", v)
	}
	return time.Duration(n) * time.Second, nil
}

// batchGetMediaInfos describes the assets of MediaIds (comma-separated) that exist, in the
// order asked; with AdditionType FileInfo, their files too. The ids of assets that do not exist
// are listed in IgnoredList, as DeleteMediaInfos lists them; the reference names no error for
// them, and no limit on the ids either.
func (s *Server) batchGetMediaInfos(q url.Values) (map[string]any, *imsError) {
	timeout, e := authTimeout(q)
	if e != nil {
		return nil, e
	}
	files := false
	for _, t := range strings.Split(q.Get("AdditionType"), ",") {
		switch strings.TrimSpace(t) {
		case "":
		case "FileInfo":
			files = true
		case "DynamicMetaData":
		default:
			return nil, invalid("The specified parameter AdditionType %q is not valid: use FileInfo, DynamicMetaData.", t)
		}
	}
	if q.Get("MediaIds") == "" {
		return nil, missing("MediaIds")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	infos, ignored := []any{}, []string{}
	for _, id := range strings.Split(q.Get("MediaIds"), ",") {
		a := s.assets[strings.TrimSpace(id)]
		if a == nil {
			ignored = append(ignored, id)
			continue
		}
		info := map[string]any{"MediaId": a.MediaId, "MediaBasicInfo": s.basicInfo(a)}
		if files {
			info["FileInfoList"] = s.fileInfoList(a, timeout)
		}
		infos = append(infos, info)
	}
	return map[string]any{"MediaInfos": infos, "IgnoredList": ignored}, nil
}

func (s *Server) getMediaInfo(q url.Values) (map[string]any, *imsError) {
	timeout, e := authTimeout(q)
	if e != nil {
		return nil, e
	}
	if ot := q.Get("OutputType"); ot != "" && ot != "oss" && ot != "cdn" {
		return nil, invalid("The specified parameter OutputType %q is not valid: use oss or cdn.", ot)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s._assetParam(q)
	if e != nil {
		return nil, e
	}
	return map[string]any{"MediaInfo": map[string]any{
		"MediaId":        a.MediaId,
		"MediaBasicInfo": s.basicInfo(a),
		"FileInfoList":   s.fileInfoList(a, timeout),
	}}, nil
}

// updateBusinessTypes are the BusinessTypes UpdateMediaInfo's reference lists, whatever the
// asset's type.
var updateBusinessTypes = []string{"subtitles", "watermark", "opening", "ending", "general"}

// checkBytes applies a limit UpdateMediaInfo's reference gives in bytes.
func checkBytes(name, v string, max int) *imsError {
	if !utf8.ValidString(v) {
		return invalid("The specified parameter %s must be UTF-8.", name)
	}
	if n := len(v); n > max {
		return invalid("The specified parameter %s is %d bytes long; at most %d are allowed.", name, n, max)
	}
	return nil
}

func (s *Server) updateMediaInfo(q url.Values) (map[string]any, *imsError) {
	// UpdateMediaInfo's reference counts the Title and the Description in bytes, and each tag.
	if e := checkBytes("Title", q.Get("Title"), maxTitle); e != nil {
		return nil, e
	}
	if e := checkBytes("Description", q.Get("Description"), maxDescription); e != nil {
		return nil, e
	}
	if e := checkTags("MediaTags", q.Get("MediaTags")); e != nil {
		return nil, e
	}
	if tags := q.Get("MediaTags"); tags != "" {
		for _, tag := range strings.Split(tags, ",") {
			if e := checkBytes("MediaTags", tag, maxTag); e != nil {
				return nil, e
			}
		}
	}
	if bt := q.Get("BusinessType"); bt != "" && !contains(updateBusinessTypes, bt) {
		return nil, invalid("The specified parameter BusinessType %q is not valid: use subtitles, watermark, opening, ending or general.", bt)
	}
	if e := checkUserData(q.Get("UserData")); e != nil {
		return nil, e
	}
	var cate *int64
	if v := q.Get("CateId"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalid("The specified parameter CateId %q is not an integer.", v)
		}
		cate = &n
	}
	if v := q.Get("AppendTags"); v != "" && v != "true" && v != "false" {
		return nil, invalid("The specified parameter AppendTags %q is not a boolean.", v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s._assetParam(q)
	if e != nil {
		return nil, e
	}
	set := func(dst *string, name string) {
		if q.Has(name) && q.Get(name) != "" {
			*dst = q.Get(name)
		}
	}
	set(&a.Title, "Title")
	set(&a.Description, "Description")
	set(&a.CoverURL, "CoverURL")
	set(&a.BusinessType, "BusinessType")
	set(&a.Category, "Category")
	set(&a.ReferenceId, "ReferenceId")
	set(&a.UserData, "UserData")
	if tags := q.Get("MediaTags"); tags != "" {
		if q.Get("AppendTags") == "true" && a.Tags != "" {
			tags = a.Tags + "," + tags
		}
		if e := checkTags("MediaTags", tags); e != nil {
			return nil, e
		}
		a.Tags = tags
	}
	if cate != nil {
		a.CateId = *cate
	}
	a.ModifiedTime = time.Now().UTC().Truncate(time.Second)
	if err := s._saveAsset(a); err != nil {
		return nil, errIMS(500, "InternalError", "%v", err)
	}
	return map[string]any{"MediaId": a.MediaId}, nil
}

// deleteMediaInfos deletes up to 20 assets; ids it does not hold are listed as ignored. With
// DeletePhysicalFiles the objects go too; without, the bytes stay in the bucket.
func (s *Server) deleteMediaInfos(q url.Values) (map[string]any, *imsError) {
	var ids, urls []string
	if v := q.Get("MediaIds"); v != "" {
		ids = strings.Split(v, ",")
	}
	if v := q.Get("InputURLs"); v != "" {
		urls = strings.Split(v, ",")
	}
	if len(ids) == 0 && len(urls) == 0 {
		return nil, missing("MediaIds")
	}
	if len(ids) > 20 || len(urls) > 20 {
		return nil, invalid("The specified parameter MediaIds or InputURLs lists more than 20 items.")
	}
	physical := false
	switch v := q.Get("DeletePhysicalFiles"); v {
	case "", "false":
	case "true":
		physical = true
	default:
		return nil, invalid("The specified parameter DeletePhysicalFiles %q is not a boolean.", v)
	}
	ignored := []string{}
	var gone []Asset
	s.mu.Lock()
	for _, id := range ids {
		a := s.assets[strings.TrimSpace(id)]
		if a == nil {
			ignored = append(ignored, id)
			continue
		}
		gone = append(gone, *a)
		_ = s._deleteAsset(a)
	}
	for _, u := range urls {
		bucket, key, _ := parseInputURL(strings.TrimSpace(u))
		a := s.byObject[objectIndex(bucket, key)]
		if a == nil {
			ignored = append(ignored, u)
			continue
		}
		gone = append(gone, *a)
		_ = s._deleteAsset(a)
	}
	// The object's upload credentials die with the asset.
	var dropped []stsEntry
	for id, k := range s.sts {
		for _, a := range gone {
			if k.Bucket == a.Bucket && k.Key == a.Key {
				delete(s.sts, id)
				dropped = append(dropped, stsEntry{ID: id})
			}
		}
	}
	err := s._journalSTS(dropped...)
	s.mu.Unlock()
	if err != nil {
		return nil, errIMS(500, "InternalError", "%v", err)
	}
	if physical {
		for _, a := range gone {
			if err := s.deleteObject(objectIndex(a.Bucket, a.Key)); err != nil {
				return nil, errIMS(500, "InternalError", "%v", err)
			}
		}
	}
	return map[string]any{"ForbiddenList": []string{}, "IgnoredList": ignored}, nil
}

// listParams are the parameters ListMediaBasicInfos takes (its reference and SDK model), besides
// the RPC signature's. The reference's description also names Category among the fields matched
// exactly, but its parameter table and the SDK model have no such parameter.
var listParams = []string{"StartTime", "EndTime", "MediaType", "BusinessType", "Source", "Status",
	"MediaId", "IncludeFileBasicInfo", "SortBy", "MaxResults", "NextToken", "AuthTimeout"}

// rpcParams are what every RPC call carries besides its own parameters (the signature's).
var rpcParams = []string{"Action", "Version", "Format", "RegionId", "AccessKeyId", "SecurityToken",
	"Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "SignatureType", "Timestamp"}

// listCap is how many matches ListMediaBasicInfos returns at most, over all its pages: its
// reference says "at most the first 100 entries that meet the specified conditions are returned",
// read strictly. A client lists a larger library in windows of creation time.
const listCap = 100

// listMediaBasicInfos pages through the first listCap assets that match, by creation time
// (StartTime exclusive, EndTime inclusive), newest first unless SortBy is asc; NextToken is
// opaque to callers. A parameter the reference does not name is refused: the reference is silent
// on what the service does with one, and a client that counts on a filter it lacks must fail here,
// not list everything there.
func (s *Server) listMediaBasicInfos(q url.Values) (map[string]any, *imsError) {
	for name := range q {
		if !contains(listParams, name) && !contains(rpcParams, name) {
			return nil, invalid("The parameter %s is not one ListMediaBasicInfos takes (it takes %s).", name, strings.Join(listParams, ", "))
		}
	}
	parseTime := func(name string) (time.Time, *imsError) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(timeFormat, v)
		if err != nil {
			return t, invalid("The specified parameter %s %q is not a UTC time like 2020-12-20T12:00:00Z.", name, v)
		}
		return t, nil
	}
	start, e := parseTime("StartTime")
	if e != nil {
		return nil, e
	}
	end, e := parseTime("EndTime")
	if e != nil {
		return nil, e
	}
	max := 10
	if v := q.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, invalid("The specified parameter MaxResults %q is not valid: use 1 to 100.", v)
		}
		max = n
	}
	sortBy := q.Get("SortBy")
	if sortBy == "" {
		sortBy = "desc"
	}
	if sortBy != "desc" && sortBy != "asc" {
		return nil, invalid("The specified parameter SortBy %q is not valid: use desc or asc.", sortBy)
	}
	offset := 0
	if tok := q.Get("NextToken"); tok != "" {
		raw, err := base64.StdEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "offset:"))
		if err != nil || err2 != nil || n < 0 {
			return nil, invalid("The specified parameter NextToken is not valid.")
		}
		offset = n
	}
	timeout, e := authTimeout(q)
	if e != nil {
		return nil, e
	}
	withFiles := false
	switch v := q.Get("IncludeFileBasicInfo"); v {
	case "", "false":
	case "true":
		withFiles = true
	default:
		return nil, invalid("The specified parameter IncludeFileBasicInfo %q is not valid: use true or false.", v)
	}
	// The reference's MediaType values: image, video, audio, text (no other).
	if mt := q.Get("MediaType"); mt != "" && !contains([]string{"image", "video", "audio", "text"}, mt) {
		return nil, invalid("The specified parameter MediaType %q is not valid: use image, video, audio or text.", mt)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	all := s._inCreationOrder()
	// The window, by binary search: created after start, up to end.
	lo, hi := 0, len(all)
	if !start.IsZero() {
		lo = sort.Search(len(all), func(i int) bool { return all[i].CreateTime.After(start) })
	}
	if !end.IsZero() {
		hi = sort.Search(len(all), func(i int) bool { return all[i].CreateTime.After(end) })
	}
	// Every match is counted; the first listCap in the order asked are kept (a library of
	// 100,000 costs one pass, not a copy of it a call).
	matches := func(a *Asset) bool {
		switch {
		case q.Get("MediaType") != "" && a.MediaType != q.Get("MediaType"),
			q.Get("BusinessType") != "" && a.BusinessType != q.Get("BusinessType"),
			q.Get("Source") != "" && q.Get("Source") != "oss",
			q.Get("Status") != "" && a.Status != q.Get("Status"),
			q.Get("MediaId") != "" && a.MediaId != q.Get("MediaId"):
			return false
		}
		return true
	}
	var match []*Asset
	total := 0
	for k := 0; k < hi-lo; k++ {
		i := lo + k
		if sortBy == "desc" {
			i = hi - 1 - k
		}
		if matches(all[i]) {
			total++
			if len(match) < listCap {
				match = append(match, all[i])
			}
		}
	}
	infos := []any{}
	for i := offset; i < len(match) && i < offset+max; i++ {
		a := match[i]
		info := map[string]any{"MediaId": a.MediaId, "MediaBasicInfo": s.basicInfo(a)}
		if withFiles {
			info["FileInfoList"] = s.fileInfoList(a, timeout)
		}
		infos = append(infos, info)
	}
	next := ""
	if offset+max < len(match) {
		next = base64.StdEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset+max)))
	}
	// TotalCount: the reference does not say whether it counts past the cap; the emulator
	// counts every match, and imsfs does not read it.
	return map[string]any{"TotalCount": total, "MediaInfos": infos, "NextToken": next, "MaxResults": max}, nil
}

// The asset lifecycle: Init at creation; Preparing once bytes for its object arrive; Normal
// --ready-delay after the object is complete, or PrepareFail (an aborted upload, or the
// media.ready fault). A new upload to the object starts Preparing again.

// objectStarted moves the asset whose object is being written to Preparing.
func (s *Server) objectStarted(bucket, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byObject[objectIndex(bucket, key)]; a != nil && a.Status != "Preparing" {
		a.Status, a.ModifiedTime = "Preparing", time.Now().UTC().Truncate(time.Second)
		a.MD5, a.Size = "", 0
		_ = s._saveAsset(a)
	}
}

// objectAborted marks the asset PrepareFail when its multipart upload is aborted and it has no
// complete object.
func (s *Server) objectAborted(bucket, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byObject[objectIndex(bucket, key)]; a != nil && a.Status == "Preparing" && a.MD5 == "" && !s.hashing[a.MediaId] {
		s._settle(a, "PrepareFail")
	}
}

// objectComplete records a complete object on its asset, which settles after ReadyDelay. An
// empty md5hex (a Complete's object) is taken from the object first, after the answer.
func (s *Server) objectComplete(bucket, key string, size int64, md5hex string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.byObject[objectIndex(bucket, key)]
	if a == nil {
		return
	}
	a.Size, a.MD5, a.ModifiedTime = size, md5hex, time.Now().UTC().Truncate(time.Second)
	a.Status = "Preparing"
	_ = s._saveAsset(a)
	if (a.Type == "video" || a.Type == "audio") && size > s.opts.MaxMediaSize {
		// The object store takes it; the media library does not process it.
		s._settle(a, "PrepareFail")
		return
	}
	if md5hex == "" {
		s._hashLater(a)
		return
	}
	s._scheduleReady(a)
}

// _hashLater takes the MD5 of a's complete object in the background, then lets it settle.
// GET /_emulator/media waits for these, so that a listing shows every complete object's MD5.
// Call with s.mu held.
func (s *Server) _hashLater(a *Asset) {
	id, obj := a.MediaId, objectIndex(a.Bucket, a.Key)
	s.hashing[id] = true
	go func() {
		s.settled(obj)
		sum, st, err := hashFile(s.objectFile(obj))
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.hashing, id)
		s.hashed.Broadcast()
		a := s.assets[id]
		if a == nil || a.Status != "Preparing" || a.MD5 != "" {
			return // deleted, or written again since: that write has its own way
		}
		if now, err2 := os.Stat(s.objectFile(obj)); err != nil || err2 != nil || !os.SameFile(st, now) {
			return
		}
		a.MD5 = sum
		_ = s._saveAsset(a)
		s._scheduleReady(a)
	}()
}

// waitHashes waits until no MD5 is being taken.
func (s *Server) waitHashes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.hashing) > 0 {
		s.hashed.Wait()
	}
}

// hashFile returns the MD5 of the file at path, in hex, and what it hashed.
func hashFile(path string) (string, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	h := md5.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(h.Sum(nil)), st, nil
}

// _scheduleReady settles a complete asset after ReadyDelay. Call with s.mu held.
func (s *Server) _scheduleReady(a *Asset) {
	id := a.MediaId
	if t := s.timers[id]; t != nil {
		t.Stop()
		delete(s.timers, id)
	}
	ready := func() {
		if a := s.assets[id]; a != nil && a.Status == "Preparing" && a.MD5 != "" {
			status := "Normal"
			// Only the fault decides here; its latency is spent before taking the lock.
			if _, hit := s.faults.decide("media.ready"); hit != nil && hit.fail {
				status = "PrepareFail"
			}
			s._settle(a, status)
		}
	}
	delay := s.opts.ReadyDelay
	if d, _ := s.faultLatency("media.ready"); d > 0 {
		delay += d
	}
	if delay <= 0 {
		ready()
		return
	}
	s.timers[id] = time.AfterFunc(delay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.timers, id)
		ready()
	})
}

// faultLatency is the latency rules give a point, without drawing for an error.
func (s *Server) faultLatency(point string) (time.Duration, bool) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	var d time.Duration
	for i := range s.faults.rules {
		if s.faults.rules[i].matches(point) {
			d += s.faults.rules[i].latency
		}
	}
	return d, d > 0
}

// _settle ends an upload as Normal or PrepareFail and sends the message callback. Call with s.mu held.
func (s *Server) _settle(a *Asset, status string) {
	now := time.Now().UTC()
	a.Status, a.ModifiedTime, a.SettledAt = status, now.Truncate(time.Second), now
	_ = s._saveAsset(a)
	s.count("media." + strings.ToLower(status))
	var ud struct {
		MessageCallback *struct{ CallbackURL string }
	}
	if json.Unmarshal([]byte(a.UserData), &ud) != nil || ud.MessageCallback == nil || ud.MessageCallback.CallbackURL == "" {
		return
	}
	event := map[string]any{
		"EventType": eventType(a.MediaType),
		"UserId":    1234567890123456,
		"EventTime": a.ModifiedTime.Format(timeFormat),
		"MessageBody": map[string]any{
			"Status":  map[bool]string{true: "Success", false: "Fail"}[status == "Normal"],
			"FileUrl": s.objectURL(a), "MediaId": a.MediaId, "AppId": a.AppId,
			"Size": strconv.FormatInt(a.Size, 10), "MediaType": a.MediaType, "UserData": a.UserData,
		},
	}
	s.calls.Add(1)
	go s.callback(ud.MessageCallback.CallbackURL, event)
}

func eventType(mediaType string) string {
	switch mediaType {
	case "video", "audio":
		return "FileUploadComplete"
	case "image":
		return "ImageUploadComplete"
	}
	return "AttachedMediaUploadComplete"
}

// callback POSTs an event, trying three times a second apart, as long as the emulator runs.
func (s *Server) callback(target string, event map[string]any) {
	defer s.calls.Done()
	body, _ := json.Marshal(event)
	client := &http.Client{Timeout: 5 * time.Second}
	for try := 1; try <= 3; try++ {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-s.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				s.stats.mu.Lock()
				s.stats.callbacksSent++
				s.stats.mu.Unlock()
				return
			}
		}
		s.opts.Log.Info("message callback failed", "url", target, "try", try, "err", err)
		select {
		case <-s.done:
			try = 3
		case <-time.After(time.Second):
		}
	}
	s.stats.mu.Lock()
	s.stats.callbacksFailed++
	s.stats.mu.Unlock()
}

// handleSeed fills the library with assets other users made: POST
// /_emulator/seed?count=N&type=T&business_type=B&spread=D[&size=S][&name=F][&title=T] makes N
// Normal assets of that type, created evenly over the D before now, the newest first. Without
// size they have no object (an asset whose upload never came); with it each has an object of S
// random bytes (one file, hard-linked under each asset's key, so that 100,000 cost seconds). Each
// has the FileName seeded-I.bin and the Title "seeded I", or F and T for all of them (an empty
// F: a file without a name). It is how a test or the bench puts a library of 100,000
// assets in place without 100,000 uploads.
func (s *Server) handleSeed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	count, err := strconv.Atoi(q.Get("count"))
	if err != nil || count < 1 || count > 1_000_000 {
		http.Error(w, "count: want 1 to 1000000", http.StatusBadRequest)
		return
	}
	typ, biz := q.Get("type"), q.Get("business_type")
	if typ == "" {
		typ = "video"
	}
	if biz == "" {
		biz = "general"
	}
	if !contains(businessTypes[typ], biz) {
		http.Error(w, "type and business_type: want a pair CreateUploadMedia takes", http.StatusBadRequest)
		return
	}
	spread := 24 * time.Hour
	if v := q.Get("spread"); v != "" {
		if spread, err = time.ParseDuration(v); err != nil || spread < 0 {
			http.Error(w, "spread: want a Go duration such as 24h", http.StatusBadRequest)
			return
		}
	}
	size := int64(-1)
	if v := q.Get("size"); v != "" {
		if size, err = strconv.ParseInt(v, 10, 64); err != nil || size < 0 || size > 1<<30 {
			http.Error(w, "size: want 0 to 1073741824 bytes", http.StatusBadRequest)
			return
		}
	}
	var seedObj string // the object every seeded asset's key links to
	var seedMeta objectMeta
	var seedMD5 string
	if size >= 0 {
		data := make([]byte, size)
		rand.Read(data)
		sum := md5.Sum(data)
		seedMD5 = hex.EncodeToString(sum[:])
		seedObj = objectIndex(s.opts.Bucket, "sv/seeded/"+randomHex(8)) // the first asset's
		seedMeta, err = s.writeObject(seedObj, bytes.NewReader(data), "application/octet-stream",
			func(digest) error { return nil }, func(d digest) string { return `"` + strings.ToUpper(seedMD5) + `"` })
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	now := time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range count {
		// In floating point: spread × count passes int64 for a long spread over many assets.
		created := now.Add(-time.Duration(float64(spread) * float64(i+1) / float64(count))).Truncate(time.Second)
		name, title := "seeded-"+strconv.Itoa(i)+".bin", "seeded "+strconv.Itoa(i)
		if q.Has("name") {
			name = q.Get("name")
		}
		if q.Has("title") {
			title = q.Get("title")
		}
		a := &Asset{MediaId: randomHex(16), Status: "Normal", Title: title, Type: typ, MediaType: typ,
			BusinessType: biz, AppId: defaultAppID, FileName: name, Bucket: s.opts.Bucket,
			Key: "sv/seeded/" + randomHex(8), CreateTime: created, ModifiedTime: created}
		if i == 0 && seedObj != "" {
			a.Key = strings.TrimPrefix(seedObj, a.Bucket+"/")
		}
		if seedObj != "" {
			obj := objectIndex(a.Bucket, a.Key)
			if err := errors.Join(link(s.objectFile(seedObj), s.objectFile(obj)), link(s.metaPath(seedObj), s.metaPath(obj))); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			a.Size, a.MD5 = seedMeta.Size, seedMD5
		}
		s._index(a)
		if err := s._saveAsset(a); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// link hard-links name as alias unless they are one file.
func link(name, alias string) error {
	if name == alias {
		return nil
	}
	return os.Link(name, alias)
}
