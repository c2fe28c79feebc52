// Package fake is an in-memory IMS and OSS for tests of the uploader and the file system: it
// implements uploader.IMS and uploader.Objects, keeps assets, objects and multipart uploads in
// memory, checks the upload credentials it hands out, and fails any call a test asks it to.
// The emulator (test/emulator) is the stand-in for the real service over HTTP; this is the seam
// below the network, for tests that must not depend on one.
package fake

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc64"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// Cloud is the fake IMS and OSS. Its exported fields are set before use.
type Cloud struct {
	Clock      clockwork.Clock // [the real one]
	ReadyAfter time.Duration   // from a complete object to Normal [0]
	CredsTTL   time.Duration   // life of the upload credentials it hands out [1h]
	MaxParts   int             // parts OSS takes in one upload [10,000]
	// Fail, when set, is asked before each call (op as in Calls: "ims.create", "oss.part"…);
	// an error it returns is the call's answer and the call does nothing.
	Fail func(op string) error
	// FailAfter is asked after a call did its work: an error it returns is the answer the
	// caller gets, as when a connection is cut after the service acted.
	FailAfter func(op string) error
	// Hide keeps assets made from now on out of ListMediaBasicInfos.
	Hide bool
	// Damage, when set, is asked at each oss.put, oss.part and oss.complete: true stores other
	// bytes than were sent (the first flipped), and the answer reports their CRC-64, as OSS
	// would of bytes damaged on the way.
	Damage func(op string) bool

	mu      sync.Mutex
	calls   map[string]int
	assets  map[string]*Asset
	order   []string // MediaIds in creation order
	objects map[string]*object
	uploads map[string]*upload
	creds   map[string]cred
	seq     int
	batches []int                  // assets asked about, by BatchGetMediaInfos call
	asked   map[string][]time.Time // when each asset was asked about
	// Block, when set for an op, holds its calls until the channel is closed or the call's
	// context is done.
	Block map[string]chan struct{}
}

// Asset is one asset as the fake IMS keeps it.
type Asset struct {
	MediaID, Type, BusinessType, Title, UserData string
	Description, Tags, CateID                    string
	Bucket, Key                                  string
	Status                                       string // Init, Preparing, Normal, PrepareFail
	Created                                      time.Time
	Complete                                     time.Time // when its object was completed
	Deleted                                      bool
	hidden                                       bool
	// Data, given to Add, is the asset's object: its upload is complete.
	Data []byte
}

type object struct {
	data []byte
	etag string
}

type upload struct {
	bucket, key string
	parts       map[int][]byte
}

type cred struct {
	secret, token string
	expires       time.Time
	bucket, key   string
}

// New returns an empty fake cloud.
func New() *Cloud {
	return &Cloud{calls: map[string]int{}, assets: map[string]*Asset{}, objects: map[string]*object{},
		uploads: map[string]*upload{}, creds: map[string]cred{}, Block: map[string]chan struct{}{}}
}

func (c *Cloud) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}

// Add puts an asset in the library, as another user of the account made it, and returns its
// MediaId.
func (c *Cloud) Add(a Asset) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	a.MediaID = fmt.Sprintf("media-%d", c.seq)
	a.Created = a.Created.Truncate(time.Second) // the service's times are whole seconds
	if a.Data != nil {
		if a.Bucket == "" {
			a.Bucket = "fake"
		}
		if a.Key == "" {
			a.Key = "sv/" + a.MediaID + ".bin"
		}
		c.objects[a.Bucket+"/"+a.Key] = &object{data: a.Data}
		a.Complete, a.Data = a.Created, nil
	}
	c.assets[a.MediaID] = &a
	c.order = append(c.order, a.MediaID)
	return a.MediaID
}

// Calls returns how many calls of op were made (failed ones included).
func (c *Cloud) Calls(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// Assets returns every asset, deleted ones included, in creation order.
func (c *Cloud) Assets() []Asset {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Asset, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, *c.assets[id])
	}
	return out
}

// Object returns the bytes of the asset's object, and whether it is complete.
func (c *Cloud) Object(mediaID string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.assets[mediaID]
	if a == nil {
		return nil, false
	}
	o := c.objects[a.Bucket+"/"+a.Key]
	if o == nil {
		return nil, false
	}
	return o.data, true
}

// Asked returns when each asset was asked about by BatchGetMediaInfos, by MediaId.
func (c *Cloud) Asked() map[string][]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]time.Time, len(c.asked))
	for id, ts := range c.asked {
		out[id] = append([]time.Time(nil), ts...)
	}
	return out
}

// Batches returns how many assets each BatchGetMediaInfos call asked about.
func (c *Cloud) Batches() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.batches...)
}

// SetReadyAfter changes ReadyAfter while the cloud is in use.
func (c *Cloud) SetReadyAfter(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ReadyAfter = d
}

// SetStatus sets an asset's status (PrepareFail, say).
func (c *Cloud) SetStatus(mediaID, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.assets[mediaID]; a != nil {
		a.Status = status
	}
}

// Uploads returns how many multipart uploads are neither completed nor aborted.
func (c *Cloud) Uploads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.uploads)
}

// ExpireCredentials makes every upload credential handed out so far invalid.
func (c *Cloud) ExpireCredentials() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.creds {
		v.expires = time.Unix(1, 0)
		c.creds[k] = v
	}
}

// enter counts a call of op, waits while it is blocked, and returns what Fail says of it.
func (c *Cloud) enter(ctx context.Context, op string) error {
	c.mu.Lock()
	c.calls[op]++
	block := c.Block[op]
	fail := c.Fail
	c.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail(op)
	}
	return nil
}

func (c *Cloud) leave(op string) error {
	if c.FailAfter != nil {
		return c.FailAfter(op)
	}
	return nil
}

func apiErr(action string, status int, code string) error {
	return &ims.APIError{Action: action, StatusCode: status, Code: code, Message: code, RequestID: "fake"}
}

// _ticket hands out upload credentials for a's object. Call with c.mu held.
func (c *Cloud) _ticket(a *Asset) *ims.Ticket {
	c.seq++
	id := fmt.Sprintf("STS.%d", c.seq)
	ttl := c.CredsTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	cr := cred{secret: fmt.Sprint("secret-", c.seq), token: fmt.Sprint("token-", c.seq), expires: c.now().Add(ttl), bucket: a.Bucket, key: a.Key}
	c.creds[id] = cr
	addr, _ := json.Marshal(map[string]string{"Endpoint": "http://oss.fake", "Bucket": a.Bucket, "FileName": a.Key})
	auth, _ := json.Marshal(map[string]string{"AccessKeyId": id, "AccessKeySecret": cr.secret, "SecurityToken": cr.token,
		"ExpireUTCTime": cr.expires.UTC().Format(time.RFC3339), "Region": "cn-shanghai"})
	return &ims.Ticket{MediaID: a.MediaID, MediaURL: "http://oss.fake/" + a.Key, FileURL: "http://oss.fake/" + a.Key,
		UploadAddress: base64.StdEncoding.EncodeToString(addr), UploadAuth: base64.StdEncoding.EncodeToString(auth)}
}

// CreateUploadMedia makes an Init asset and its upload ticket.
func (c *Cloud) CreateUploadMedia(ctx context.Context, req ims.CreateUploadMediaRequest) (*ims.Ticket, error) {
	if err := c.enter(ctx, "ims.create"); err != nil {
		return nil, err
	}
	if req.FileInfo.Type == "" || req.FileInfo.Ext == "" || req.MediaMetaData.Title == "" {
		return nil, apiErr("CreateUploadMedia", 400, "InvalidParameter")
	}
	ud, _ := json.Marshal(req.UserData)
	c.mu.Lock()
	c.seq++
	a := &Asset{MediaID: fmt.Sprintf("media-%d", c.seq), Type: req.FileInfo.Type, BusinessType: req.MediaMetaData.BusinessType,
		Title: req.MediaMetaData.Title, UserData: string(ud),
		Description: req.MediaMetaData.Description, Tags: req.MediaMetaData.Tags, CateID: cateString(req.MediaMetaData.CateID), Bucket: "fake", Key: fmt.Sprintf("sv/%d.%s", c.seq, req.FileInfo.Ext),
		Status: ims.MediaInit, Created: c.now().Truncate(time.Second), hidden: c.Hide}
	c.assets[a.MediaID] = a
	c.order = append(c.order, a.MediaID)
	t := c._ticket(a)
	c.mu.Unlock()
	if err := c.leave("ims.create"); err != nil {
		return nil, err
	}
	return t, nil
}

// RefreshUploadMedia hands out new credentials for an asset's object.
func (c *Cloud) RefreshUploadMedia(ctx context.Context, mediaID string) (*ims.Ticket, error) {
	if err := c.enter(ctx, "ims.refresh"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.assets[mediaID]
	if a == nil || a.Deleted {
		return nil, apiErr("RefreshUploadMedia", 404, "InvalidParameter")
	}
	return c._ticket(a), nil
}

// _info describes an asset, moving it to Normal once its object has been complete for ReadyAfter.
// Call with c.mu held.
func (c *Cloud) _info(a *Asset) ims.MediaInfo {
	if a.Status == ims.MediaPreparing && !a.Complete.IsZero() && !c.now().Before(a.Complete.Add(c.ReadyAfter)) {
		a.Status = ims.MediaNormal
	}
	info := ims.MediaInfo{MediaID: a.MediaID, MediaBasicInfo: ims.MediaBasicInfo{
		MediaID: a.MediaID, InputURL: "http://oss.fake/" + a.Bucket + "/" + a.Key, MediaType: a.Type,
		BusinessType: a.BusinessType, Title: a.Title, Status: a.Status, UserData: a.UserData,
		CreateTime: a.Created.UTC().Format(ims.TimeFormat)}}
	if !a.Complete.IsZero() {
		info.FileInfoList = make([]ims.MediaFile, 1)
		f := &info.FileInfoList[0].FileBasicInfo
		f.FileURL = "http://oss.fake/" + a.Bucket + "/" + a.Key + "?Signature=x"
		f.FileType, f.FileName = "source_file", path.Base(a.Key)
		f.CreateTime = a.Complete.UTC().Format(ims.TimeFormat)
		f.ModifiedTime = f.CreateTime
		if o := c.objects[a.Bucket+"/"+a.Key]; o != nil {
			f.FileSize = strconv.Itoa(len(o.data))
		}
	}
	return info
}

// GetMediaInfo describes one asset.
func (c *Cloud) GetMediaInfo(ctx context.Context, mediaID string, _ time.Duration) (*ims.MediaInfo, error) {
	if err := c.enter(ctx, "ims.get"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.assets[mediaID]
	if a == nil || a.Deleted {
		return nil, apiErr("GetMediaInfo", 404, "InvalidParameter")
	}
	info := c._info(a)
	return &info, nil
}

// BatchGetMediaInfos describes the assets it knows of those asked, and lists the others as
// ignored.
func (c *Cloud) BatchGetMediaInfos(ctx context.Context, mediaIDs []string, _ bool) (*ims.Batch, error) {
	if err := c.enter(ctx, "ims.batchget"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, len(mediaIDs))
	if c.asked == nil {
		c.asked = map[string][]time.Time{}
	}
	for _, id := range mediaIDs {
		c.asked[id] = append(c.asked[id], time.Now())
	}
	out := &ims.Batch{}
	for _, id := range mediaIDs {
		if a := c.assets[id]; a != nil && !a.Deleted {
			out.MediaInfos = append(out.MediaInfos, c._info(a))
		} else {
			out.Ignored = append(out.Ignored, id)
		}
	}
	return out, nil
}

// UpdateMediaInfo sets an asset's Title, BusinessType, Description, tags and category.
func (c *Cloud) UpdateMediaInfo(ctx context.Context, u ims.Update) error {
	if err := c.enter(ctx, "ims.update"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.assets[u.MediaID]
	if a == nil || a.Deleted {
		return apiErr("UpdateMediaInfo", 404, "InvalidParameter")
	}
	if u.Title != "" {
		a.Title = u.Title
	}
	if u.BusinessType != "" {
		a.BusinessType = u.BusinessType
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{{&a.Description, u.Description}, {&a.Tags, u.Tags}, {&a.CateID, u.CateID}} {
		if f.v != "" {
			*f.dst = f.v // an empty field is not sent: the asset keeps what it has
		}
	}
	return nil
}

func cateString(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// DeleteMediaInfos marks assets deleted; unknown ones are ignored, as IMS does.
func (c *Cloud) DeleteMediaInfos(ctx context.Context, mediaIDs ...string) error {
	if err := c.enter(ctx, "ims.delete"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range mediaIDs {
		if a := c.assets[id]; a != nil {
			a.Deleted = true
		}
	}
	return nil
}

// ListMediaBasicInfos pages through the first ims.ListCap assets that match, by creation time
// (StartTime exclusive, EndTime inclusive), as the emulator does.
func (c *Cloud) ListMediaBasicInfos(ctx context.Context, r ims.ListRequest) (*ims.ListPage, error) {
	if err := c.enter(ctx, "ims.list"); err != nil {
		return nil, err
	}
	switch r.MediaType {
	case "", "image", "video", "audio", "text":
	default: // as the service's reference lists them
		return nil, apiErr("ListMediaBasicInfos", 400, "InvalidParameter")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var match []*Asset
	for _, id := range c.order {
		a := c.assets[id]
		switch {
		case a.Deleted, a.hidden,
			!r.StartTime.IsZero() && !a.Created.After(r.StartTime),
			!r.EndTime.IsZero() && a.Created.After(r.EndTime),
			r.MediaType != "" && a.Type != r.MediaType,
			r.BusinessType != "" && a.BusinessType != r.BusinessType,
			r.Status != "" && a.Status != r.Status:
			continue
		}
		match = append(match, a)
	}
	if r.SortBy != "asc" { // the reference's default: newest first
		sort.SliceStable(match, func(i, j int) bool { return match[i].Created.After(match[j].Created) })
	}
	match = match[:min(len(match), ims.ListCap)]
	n := r.MaxResults
	if n <= 0 || n > 100 {
		n = 10
	}
	offset, _ := strconv.Atoi(r.NextToken)
	page := &ims.ListPage{}
	for i := offset; i < len(match) && i < offset+n; i++ {
		info := c._info(match[i])
		if !r.Files {
			info.FileInfoList = nil
		}
		page.Media = append(page.Media, info)
	}
	if offset+n < len(match) {
		page.NextToken = strconv.Itoa(offset + n)
	}
	return page, nil
}

func ossErr(op string, status int, code string) error {
	return &transfer.Error{Op: op, Code: code, Status: status, Msg: code}
}

// check verifies upload credentials for t's object.
func (c *Cloud) check(op string, t transfer.Target, creds transfer.CredentialsFunc) error {
	cr := creds()
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.creds[cr.AccessKeyID]
	switch {
	case !ok:
		return ossErr(op, 403, "InvalidAccessKeyId")
	case k.secret != cr.AccessKeySecret || k.token != cr.SecurityToken:
		return ossErr(op, 403, "SignatureDoesNotMatch")
	case !c.now().Before(k.expires):
		return ossErr(op, 403, "SecurityTokenExpired")
	case k.bucket != t.Bucket || k.key != t.Key:
		return ossErr(op, 403, "AccessDenied")
	}
	return nil
}

// _started moves the asset of an object being written to Preparing. Call with c.mu held.
func (c *Cloud) _started(bucket, key string) {
	for _, a := range c.assets {
		if a.Bucket == bucket && a.Key == key && !a.Deleted {
			a.Status, a.Complete = ims.MediaPreparing, time.Time{}
		}
	}
}

// _complete stores an object and marks its asset's object complete. Call with c.mu held.
func (c *Cloud) _complete(bucket, key string, data []byte, etag string) {
	c.objects[bucket+"/"+key] = &object{data: data, etag: etag}
	for _, a := range c.assets {
		if a.Bucket == bucket && a.Key == key && !a.Deleted {
			a.Status, a.Complete = ims.MediaPreparing, c.now()
		}
	}
}

// Upload stores data as the object of asset mediaID, as another client's upload would.
func (c *Cloud) Upload(mediaID string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.assets[mediaID]
	if a == nil {
		return fmt.Errorf("fake: no asset %s", mediaID)
	}
	c._complete(a.Bucket, a.Key, data, md5hex(data))
	return nil
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// read takes size bytes from r, reporting them to p.
func read(r io.Reader, size int64, p transfer.Progress) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("fake OSS: %d bytes sent, %d announced", len(data), size)
	}
	if p != nil {
		p(size)
	}
	return data, nil
}

// Put stores a whole object and answers its CRC-64, checked against the bytes read, as
// transfer.Client does.
func (c *Cloud) Put(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, r io.Reader, size int64, p transfer.Progress) (uint64, error) {
	if err := c.enter(ctx, "oss.put"); err != nil {
		return 0, err
	}
	if err := c.check("PutObject", t, creds); err != nil {
		return 0, err
	}
	data, err := read(r, size, p)
	if err != nil {
		return 0, err
	}
	sent := crcOf(data)
	data = c.damage("oss.put", data)
	c.mu.Lock()
	c._started(t.Bucket, t.Key)
	c._complete(t.Bucket, t.Key, data, md5hex(data))
	c.mu.Unlock()
	if stored := crcOf(data); stored != sent {
		return 0, &transfer.CRCError{Op: "PutObject " + t.Key, Read: sent, OSS: stored}
	}
	return sent, c.leave("oss.put")
}

var crcTable = crc64.MakeTable(crc64.ECMA)

func crcOf(b []byte) uint64 { return crc64.Checksum(b, crcTable) }

// damage returns data as op stores it: with its first byte flipped when Damage says so.
func (c *Cloud) damage(op string, data []byte) []byte {
	if c.Damage == nil || len(data) == 0 || !c.Damage(op) {
		return data
	}
	d := append([]byte(nil), data...)
	d[0] ^= 0xff
	return d
}

// Initiate starts a multipart upload.
func (c *Cloud) Initiate(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc) (string, error) {
	if err := c.enter(ctx, "oss.initiate"); err != nil {
		return "", err
	}
	if err := c.check("InitiateMultipartUpload", t, creds); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.seq++
	id := fmt.Sprintf("upload-%d", c.seq)
	c.uploads[id] = &upload{bucket: t.Bucket, key: t.Key, parts: map[int][]byte{}}
	c._started(t.Bucket, t.Key)
	c.mu.Unlock()
	return id, c.leave("oss.initiate")
}

// UploadPart stores one part and answers it, its CRC-64 checked against the bytes read, as
// transfer.Client does.
func (c *Cloud) UploadPart(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, uploadID string, n int, r io.Reader, size int64, p transfer.Progress) (transfer.Part, error) {
	if err := c.enter(ctx, "oss.part"); err != nil {
		return transfer.Part{}, err
	}
	if err := c.check("UploadPart", t, creds); err != nil {
		return transfer.Part{}, err
	}
	max := c.MaxParts
	if max <= 0 {
		max = 10000
	}
	if n < 1 || n > max {
		return transfer.Part{}, ossErr("UploadPart", 400, "InvalidArgument")
	}
	data, err := read(r, size, p)
	if err != nil {
		return transfer.Part{}, err
	}
	sent := crcOf(data)
	data = c.damage("oss.part", data)
	c.mu.Lock()
	u := c.uploads[uploadID]
	if u == nil {
		c.mu.Unlock()
		return transfer.Part{}, ossErr("UploadPart", 404, "NoSuchUpload")
	}
	u.parts[n] = data
	c.mu.Unlock()
	if stored := crcOf(data); stored != sent {
		return transfer.Part{}, &transfer.CRCError{Op: fmt.Sprintf("UploadPart %d of %s", n, t.Key), Read: sent, OSS: stored}
	}
	return transfer.Part{Number: n, ETag: `"` + md5hex(data) + `"`, Size: size, CRC64: sent}, c.leave("oss.part")
}

// ListParts lists the stored parts of a multipart upload.
func (c *Cloud) ListParts(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, uploadID string) ([]transfer.Part, error) {
	if err := c.enter(ctx, "oss.listparts"); err != nil {
		return nil, err
	}
	if err := c.check("ListParts", t, creds); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.uploads[uploadID]
	if u == nil {
		return nil, ossErr("ListParts", 404, "NoSuchUpload")
	}
	var out []transfer.Part
	for n, d := range u.parts {
		out = append(out, transfer.Part{Number: n, ETag: `"` + md5hex(d) + `"`, Size: int64(len(d))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// Complete joins the parts into the object, as OSS checks them: each named part stored with
// that ETag, in ascending order.
func (c *Cloud) Complete(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, uploadID string, parts []transfer.Part) (uint64, error) {
	if err := c.enter(ctx, "oss.complete"); err != nil {
		return 0, err
	}
	if err := c.check("CompleteMultipartUpload", t, creds); err != nil {
		return 0, err
	}
	c.mu.Lock()
	u := c.uploads[uploadID]
	if u == nil {
		c.mu.Unlock()
		return 0, ossErr("CompleteMultipartUpload", 404, "NoSuchUpload")
	}
	var buf bytes.Buffer
	h := md5.New()
	for i, p := range parts {
		d, ok := u.parts[p.Number]
		if !ok || !strings.EqualFold(strings.Trim(p.ETag, `"`), md5hex(d)) {
			c.mu.Unlock()
			return 0, ossErr("CompleteMultipartUpload", 400, "InvalidPart")
		}
		if i > 0 && p.Number <= parts[i-1].Number {
			c.mu.Unlock()
			return 0, ossErr("CompleteMultipartUpload", 400, "InvalidPartOrder")
		}
		buf.Write(d)
		sum := md5.Sum(d)
		h.Write(sum[:])
	}
	delete(c.uploads, uploadID)
	data := c.damage("oss.complete", buf.Bytes())
	c._complete(t.Bucket, t.Key, data, strings.ToUpper(hex.EncodeToString(h.Sum(nil)))+"-"+strconv.Itoa(len(parts)))
	c.mu.Unlock()
	return crcOf(data), c.leave("oss.complete")
}

// Abort drops a multipart upload; an unknown one is no error.
func (c *Cloud) Abort(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, uploadID string) error {
	if err := c.enter(ctx, "oss.abort"); err != nil {
		return err
	}
	if err := c.check("AbortMultipartUpload", t, creds); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.uploads, uploadID)
	c.mu.Unlock()
	return nil
}

// Head returns an object's size, ETag and CRC-64.
func (c *Cloud) Head(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc) (transfer.Object, error) {
	if err := c.enter(ctx, "oss.head"); err != nil {
		return transfer.Object{}, err
	}
	if err := c.check("HeadObject", t, creds); err != nil {
		return transfer.Object{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[t.Bucket+"/"+t.Key]
	if o == nil {
		return transfer.Object{}, ossErr("HeadObject", 404, "NoSuchKey")
	}
	return transfer.Object{Size: int64(len(o.data)), ETag: o.etag, CRC64: crcOf(o.data)}, nil
}

// Drop forgets a multipart upload, as OSS does when it expires it.
func (c *Cloud) Drop(uploadID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.uploads, uploadID)
}
