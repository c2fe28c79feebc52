package emulator

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// The data directory holds everything the emulator must keep across its own restart, as files,
// so that neither a restart nor a multi-GiB object costs memory:
//
//	assets/MEDIAID.json          one file per asset
//	objects/BUCKET/KEY           object bytes
//	meta/BUCKET/KEY.json         what OSS returns about an object (ETag, CRC-64, type)
//	multipart/UPLOADID/          an unfinished multipart upload: upload.json and one file per part
//	sts.jsonl                    journal of temporary keys handed out (one JSON line per key issued or dropped)

// Asset is a media asset as the emulator keeps it; GET /_emulator/media lists these.
type Asset struct {
	MediaId      string
	Status       string // Init, Preparing, Normal, PrepareFail
	Title        string
	Description  string `json:",omitempty"`
	Tags         string `json:",omitempty"` // MediaTags, comma separated
	CateId       int64  `json:",omitempty"`
	Category     string `json:",omitempty"`
	CoverURL     string `json:",omitempty"`
	ReferenceId  string `json:",omitempty"`
	Type         string // FileInfo.Type
	MediaType    string // as GetMediaInfo names it: video, image, audio, text, other
	BusinessType string
	AppId        string
	EntityId     string `json:",omitempty"`
	FileName     string // FileInfo.Name + "." + Ext
	UserData     string `json:",omitempty"`
	Workflow     string `json:",omitempty"` // PostProcessConfig.ProcessID: the workflow to run once uploaded
	Storage      string `json:",omitempty"` // UploadTargetConfig.StorageLocation (the emulator keeps every object in its one bucket)
	Bucket       string
	Key          string
	Size         int64  // of the stored object; 0 until it is complete
	MD5          string // lower-case hex of the stored object; empty until it is complete
	CreateTime   time.Time
	ModifiedTime time.Time
	// SettledAt is when it became Normal or PrepareFail, to the nanosecond (ModifiedTime has
	// the service's seconds): what a client's promptness is measured against.
	SettledAt time.Time `json:",omitzero"`
}

// stsKey is a temporary credential. One CreateUploadMedia or RefreshUploadMedia handed out may
// write only its one object (Bucket and Key set); one from POST /_emulator/sts stands for the
// account (Bucket empty), like an AssumeRole key with a broad policy.
type stsKey struct {
	Secret  string
	Token   string
	Bucket  string `json:",omitempty"`
	Key     string `json:",omitempty"`
	Expires time.Time
}

func (k *stsKey) scoped() bool { return k.Bucket != "" }

// objectMeta is what OSS answers about a stored object besides its bytes.
type objectMeta struct {
	ETag         string // quoted, as OSS sends it
	Size         int64
	CRC64        uint64
	ContentType  string
	LastModified time.Time
}

// multipart is an unfinished multipart upload; its parts are files in its directory.
type multipart struct {
	ID        string
	Bucket    string
	Key       string
	Initiated time.Time
	Parts     map[int]partInfo
}

type partInfo struct {
	ETag  string
	Size  int64
	CRC64 *uint64 `json:",omitempty"` // nil in a part an older emulator stored
	When  time.Time
}

var crcTable = crc64.MakeTable(crc64.ECMA)

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func (s *Server) assetPath(id string) string {
	return filepath.Join(s.opts.DataDir, "assets", id+".json")
}
func (s *Server) uploadDir(id string) string { return filepath.Join(s.opts.DataDir, "multipart", id) }
func (s *Server) stsFile() string            { return filepath.Join(s.opts.DataDir, "sts.jsonl") }
func (s *Server) objectsRoot() string        { return filepath.Join(s.opts.DataDir, "objects") }
func objectIndex(bucket, key string) string  { return bucket + "/" + key }
func (s *Server) metaPath(obj string) string {
	return filepath.Join(s.opts.DataDir, "meta", filepath.FromSlash(obj)+".json")
}
func (s *Server) objectFile(obj string) string {
	return filepath.Join(s.objectsRoot(), filepath.FromSlash(obj))
}

// checkKey refuses object keys that could climb out of the data directory when used as paths.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\x00") || len(key) > 1023 {
		return fmt.Errorf("invalid object key %q", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("invalid object key %q", key)
		}
	}
	return nil
}

// load reads what an earlier run left in the data dir.
func (s *Server) load() error {
	for _, d := range []string{"assets", "multipart", "objects", "meta"} {
		if err := os.MkdirAll(filepath.Join(s.opts.DataDir, d), 0o755); err != nil {
			return fmt.Errorf("emulator: %w", err)
		}
	}
	if err := s.migrateAssetList(); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	files, err := os.ReadDir(filepath.Join(s.opts.DataDir, "assets"))
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".json") {
			continue
		}
		var a Asset
		if err := readJSONFile(filepath.Join(s.opts.DataDir, "assets", f.Name()), &a); err != nil {
			return fmt.Errorf("emulator: %w", err)
		}
		s._index(&a)
	}
	dirs, err := os.ReadDir(filepath.Join(s.opts.DataDir, "multipart"))
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	for _, d := range dirs {
		if done, err := s.finishAssembly(d.Name()); done || err != nil {
			if err != nil {
				return fmt.Errorf("emulator: finish the object of a completed upload: %w", err)
			}
			continue
		}
		var m multipart
		if readJSONFile(filepath.Join(s.uploadDir(d.Name()), "upload.json"), &m) == nil && m.ID == d.Name() {
			if m.Parts == nil {
				m.Parts = map[int]partInfo{}
			}
			s.uploads[m.ID] = &m
		}
	}
	if err := s.loadSTS(); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}

// stsEntry is one line of the journal of temporary keys: a key issued, or (Key nil) dropped.
// A journal, not one file rewritten per key: a mount that makes thousands of assets would
// otherwise have the emulator write all their keys again for each.
type stsEntry struct {
	ID  string
	Key *stsKey `json:",omitempty"`
}

// loadSTS replays the journal (and the single file of earlier versions), then writes it again
// with only the keys that have not been expired for an hour.
func (s *Server) loadSTS() error {
	s.sts = map[string]*stsKey{}
	if err := readJSONFile(filepath.Join(s.opts.DataDir, "sts.json"), &s.sts); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := os.ReadFile(s.stsFile())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e stsEntry
		if json.Unmarshal(line, &e) != nil || e.ID == "" {
			continue // a line cut short by a crash
		}
		if e.Key == nil {
			delete(s.sts, e.ID)
		} else {
			s.sts[e.ID] = e.Key
		}
	}
	var out bytes.Buffer
	for id, k := range s.sts {
		if time.Since(k.Expires) > time.Hour {
			delete(s.sts, id)
			continue
		}
		line, _ := json.Marshal(stsEntry{ID: id, Key: k})
		out.Write(append(line, '\n'))
	}
	tmp := s.stsFile() + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.stsFile()); err != nil {
		return err
	}
	os.Remove(filepath.Join(s.opts.DataDir, "sts.json"))
	return nil
}

// migrateAssetList splits the single assets.json of earlier versions into one file per asset,
// so that a data dir made by them keeps its assets.
func (s *Server) migrateAssetList() error {
	old := filepath.Join(s.opts.DataDir, "assets.json")
	var list []*Asset
	if err := readJSONFile(old, &list); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, a := range list {
		if err := writeJSONFile(s.assetPath(a.MediaId), a); err != nil {
			return err
		}
	}
	return os.Rename(old, old+".migrated")
}

// _index adds an asset to the maps. Call with s.mu held.
func (s *Server) _index(a *Asset) {
	s.assets[a.MediaId] = a
	s.byObject[objectIndex(a.Bucket, a.Key)] = a
	if n := len(s.byTime); n > 0 && !createdBefore(s.byTime[n-1], a) {
		s.unsorted = true
	}
	s.byTime = append(s.byTime, a)
}

// createdBefore orders assets as the listing does: by creation time, then MediaId.
func createdBefore(a, b *Asset) bool {
	if !a.CreateTime.Equal(b.CreateTime) {
		return a.CreateTime.Before(b.CreateTime)
	}
	return a.MediaId < b.MediaId
}

// _inCreationOrder returns every asset in creation order. Call with s.mu held.
func (s *Server) _inCreationOrder() []*Asset {
	if s.unsorted {
		sort.Slice(s.byTime, func(i, j int) bool { return createdBefore(s.byTime[i], s.byTime[j]) })
		s.unsorted = false
	}
	return s.byTime
}

// _saveAsset writes one asset's record. Call with s.mu held.
func (s *Server) _saveAsset(a *Asset) error {
	return writeJSONFile(s.assetPath(a.MediaId), a)
}

// _deleteAsset forgets an asset. Call with s.mu held.
func (s *Server) _deleteAsset(a *Asset) error {
	delete(s.assets, a.MediaId)
	list := s._inCreationOrder()
	if i := sort.Search(len(list), func(i int) bool { return !createdBefore(list[i], a) }); i < len(list) && list[i] == a {
		s.byTime = slices.Delete(list, i, i+1)
	}
	delete(s.byObject, objectIndex(a.Bucket, a.Key))
	if t := s.timers[a.MediaId]; t != nil {
		t.Stop()
		delete(s.timers, a.MediaId)
	}
	if err := os.Remove(s.assetPath(a.MediaId)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// _saveUpload writes a multipart upload's record. Call with s.mu held.
func (s *Server) _saveUpload(m *multipart) error {
	return writeJSONFile(filepath.Join(s.uploadDir(m.ID), "upload.json"), m)
}

// _journalSTS adds lines to the journal of temporary keys. Call with s.mu held.
func (s *Server) _journalSTS(entries ...stsEntry) error {
	var b bytes.Buffer
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b.Write(append(line, '\n'))
	}
	f, err := os.OpenFile(s.stsFile(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// writeJSONFile replaces path atomically, so that a crash leaves the old or the new record.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// _assetList returns the assets in creation order. Call with s.mu held.
func (s *Server) _assetList() []Asset {
	list := make([]Asset, 0, len(s.assets))
	for _, a := range s._inCreationOrder() {
		list = append(list, *a)
	}
	return list
}

// Assets returns a copy of every asset, in creation order.
func (s *Server) Assets() []Asset {
	s.waitHashes() // every complete object's MD5 is in the list
	s.mu.Lock()
	defer s.mu.Unlock()
	return s._assetList()
}

func (s *Server) handleListMedia(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Assets())
}

// digest is what the emulator computes over bytes it stores.
type digest struct {
	size int64
	md5  []byte
	crc  uint64
}

// incoming makes the temporary file that becomes path by a rename, beside it (storedBytes and
// a reader pass over it).
func incoming(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.CreateTemp(filepath.Dir(path), ".incoming-*")
}

// storeFile copies r into path through a temporary file, so that a reader never sees half an
// object, and returns the size and digests of what was written. A check on the digest may
// refuse the bytes before they replace what path held.
func storeFile(path string, r io.Reader, check func(digest) error) (digest, error) {
	tmp, err := incoming(path)
	if err != nil {
		return digest{}, err
	}
	defer os.Remove(tmp.Name())
	m, c := md5.New(), crc64.New(crcTable)
	n, err := io.CopyBuffer(parallelWriter{tmp, m, c}, r, make([]byte, 1<<20))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return digest{}, err
	}
	d := digest{size: n, md5: m.Sum(nil), crc: c.Sum64()}
	if check != nil {
		if err := check(d); err != nil {
			return d, err
		}
	}
	return d, os.Rename(tmp.Name(), path)
}

// parallelWriter writes to each of its writers at once: the file and the two hashes of a large
// object or part (up to 5 GiB) cost the slowest of them, not their sum, as the real service's
// would not grow with the object as the emulator's does.
type parallelWriter []io.Writer

func (pw parallelWriter) Write(p []byte) (int, error) {
	errs := make([]error, len(pw))
	var wg sync.WaitGroup
	for i, w := range pw[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i+1] = w.Write(p)
		}()
	}
	_, errs[0] = pw[0].Write(p)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeObject stores an object's bytes and its metadata.
func (s *Server) writeObject(obj string, r io.Reader, contentType string, check func(digest) error, etag func(digest) string) (objectMeta, error) {
	s.settled(obj)
	d, err := storeFile(s.objectFile(obj), r, check)
	if err != nil {
		return objectMeta{}, err
	}
	meta := objectMeta{ETag: etag(d), Size: d.size, CRC64: d.crc, ContentType: contentType, LastModified: time.Now().UTC()}
	if err := writeJSONFile(s.metaPath(obj), meta); err != nil {
		return objectMeta{}, err
	}
	return meta, nil
}

// writeAssembled stores an object made of files, in order, and its metadata: the bytes are
// copied by the kernel (copy_file_range), and its CRC is given (combined from the parts'), so
// that a Complete costs little more as the object grows, as the real one does.
func (s *Server) writeAssembled(obj string, files []string, size int64, crc uint64, etag string) (objectMeta, error) {
	path := s.objectFile(obj)
	tmp, err := incoming(path)
	if err != nil {
		return objectMeta{}, err
	}
	defer os.Remove(tmp.Name())
	var n int64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			tmp.Close()
			return objectMeta{}, err
		}
		c, err := io.Copy(tmp, f) // *os.File to *os.File: copy_file_range
		f.Close()
		n += c
		if err != nil {
			tmp.Close()
			return objectMeta{}, err
		}
	}
	if err := tmp.Close(); err != nil {
		return objectMeta{}, err
	}
	if n != size {
		return objectMeta{}, fmt.Errorf("assembled %d bytes of %d", n, size)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return objectMeta{}, err
	}
	meta := objectMeta{ETag: etag, Size: size, CRC64: crc, LastModified: time.Now().UTC()}
	if err := writeJSONFile(s.metaPath(obj), meta); err != nil {
		return objectMeta{}, err
	}
	return meta, nil
}

// readMeta returns a stored object's metadata; fs.ErrNotExist when there is no such object.
func (s *Server) readMeta(obj string) (objectMeta, error) {
	var meta objectMeta
	err := readJSONFile(s.metaPath(obj), &meta)
	return meta, err
}

func (s *Server) deleteObject(obj string) error {
	s.settled(obj)
	err := os.Remove(s.objectFile(obj))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	err = os.Remove(s.metaPath(obj))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// storedBytes sums the sizes of the objects held, for /_emulator/stats.
func (s *Server) storedBytes() (objects int, size int64) {
	_ = filepath.WalkDir(s.objectsRoot(), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".incoming-") {
			return nil
		}
		if info, err := d.Info(); err == nil {
			objects++
			size += info.Size()
		}
		return nil
	})
	return objects, size
}
