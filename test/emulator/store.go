package emulator

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Asset is a media asset as the emulator keeps it; GET /_emulator/media lists these.
type Asset struct {
	MediaId      string
	Status       string // Init, Preparing, Normal, PrepareFail
	Title        string
	Description  string `json:",omitempty"`
	Tags         string `json:",omitempty"`
	CateId       int64  `json:",omitempty"`
	Type         string // FileInfo.Type
	MediaType    string // as GetMediaInfo names it: video, image, audio, text, other
	BusinessType string
	AppId        string
	FileName     string // FileInfo.Name + "." + Ext
	UserData     string `json:",omitempty"`
	Bucket       string
	Key          string
	Size         int64  // of the stored object; 0 until it is complete
	MD5          string // lower-case hex of the stored object; empty until it is complete
	CreateTime   time.Time
	ModifiedTime time.Time
}

// stsKey is a temporary credential CreateUploadMedia or RefreshUploadMedia handed out: valid
// for one object, until it expires.
type stsKey struct {
	secret, token string
	bucket, key   string
	expires       time.Time
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
	ETag string
	Size int64
	When time.Time
}

var crcTable = crc64.MakeTable(crc64.ECMA)

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func (s *Server) assetsFile() string         { return filepath.Join(s.opts.DataDir, "assets.json") }
func (s *Server) uploadDir(id string) string { return filepath.Join(s.opts.DataDir, "multipart", id) }

// objectPath is where the bytes of bucket/key are kept. Keys are used as relative paths, so
// anything that could climb out of the data directory is refused.
func (s *Server) objectPath(bucket, key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\x00") {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == ".." || seg == "." {
			return "", fmt.Errorf("invalid object key %q", key)
		}
	}
	return filepath.Join(s.opts.DataDir, "objects", bucket, filepath.FromSlash(key)), nil
}

// load reads the assets and unfinished multipart uploads an earlier run left in the data dir.
func (s *Server) load() error {
	if err := os.MkdirAll(filepath.Join(s.opts.DataDir, "multipart"), 0o755); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	data, err := os.ReadFile(s.assetsFile())
	if err == nil {
		var list []*Asset
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("emulator: read %s: %w", s.assetsFile(), err)
		}
		for _, a := range list {
			s.assets[a.MediaId] = a
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("emulator: %w", err)
	}
	dirs, err := os.ReadDir(filepath.Join(s.opts.DataDir, "multipart"))
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(s.uploadDir(d.Name()), "upload.json"))
		if err != nil {
			continue
		}
		var m multipart
		if json.Unmarshal(data, &m) == nil && m.ID == d.Name() {
			if m.Parts == nil {
				m.Parts = map[int]partInfo{}
			}
			s.uploads[m.ID] = &m
		}
	}
	return nil
}

// _saveAssets writes every asset to the data dir. Call with s.mu held.
func (s *Server) _saveAssets() error {
	return writeJSONFile(s.assetsFile(), s._assetList())
}

// _saveUpload writes a multipart upload's record. Call with s.mu held.
func (s *Server) _saveUpload(m *multipart) error {
	return writeJSONFile(filepath.Join(s.uploadDir(m.ID), "upload.json"), m)
}

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
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
	for _, a := range s.assets {
		list = append(list, *a)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].CreateTime.Equal(list[j].CreateTime) {
			return list[i].CreateTime.Before(list[j].CreateTime)
		}
		return list[i].MediaId < list[j].MediaId
	})
	return list
}

// _assetFor returns the asset whose upload address is bucket/key. Call with s.mu held.
func (s *Server) _assetFor(bucket, key string) *Asset {
	for _, a := range s.assets {
		if a.Bucket == bucket && a.Key == key {
			return a
		}
	}
	return nil
}

// Assets returns a copy of every asset, in creation order.
func (s *Server) Assets() []Asset {
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

// storeFile copies r into path through a temporary file, so that a reader never sees half an
// object, and returns the size and digests of what was written.
func storeFile(path string, r io.Reader) (digest, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return digest{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".incoming-*")
	if err != nil {
		return digest{}, err
	}
	defer os.Remove(tmp.Name())
	m, c := md5.New(), crc64.New(crcTable)
	n, err := io.Copy(io.MultiWriter(tmp, m, c), r)
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return digest{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return digest{}, err
	}
	return digest{size: n, md5: m.Sum(nil), crc: c.Sum64()}, nil
}
