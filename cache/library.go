package cache

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The library is every asset of the IMS account as it was last listed: kept here so that a
// restarted mount shows it at once (and offline), and so that each asset keeps its name.
var bucketLibrary = []byte("library") // MediaId → LibraryAsset (JSON)

// libraryMetaKey names the LibraryMeta in the meta bucket.
var libraryMetaKey = []byte("library")

// LibraryAsset is one asset of the library as ListMediaBasicInfos last gave it, and where the
// mount shows it.
type LibraryAsset struct {
	MediaID string `json:"media_id"`
	// Dir and Name are where library/ shows it (Dir under library/, such as video/opening),
	// set once it has a file; Name is unique in Dir and kept while the asset exists.
	Dir  string `json:"dir,omitempty"`
	Name string `json:"name,omitempty"`
	// HasFile: the asset lists its source file (its upload is complete); it is shown only then.
	HasFile bool  `json:"has_file,omitempty"`
	Size    int64 `json:"size"`
	// Created is the asset's CreateTime; Changed its ModifiedTime (its fields); FileTime its
	// file's (the bytes).
	Created  time.Time `json:"created"`
	Changed  time.Time `json:"changed,omitzero"`
	FileTime time.Time `json:"file_time,omitzero"`

	MediaType    string `json:"media_type,omitempty"`
	BusinessType string `json:"business_type,omitempty"`
	Status       string `json:"status,omitempty"` // Init, Preparing, PrepareFail, Normal
	Source       string `json:"source,omitempty"`
	Title        string `json:"title,omitempty"`
	Description  string `json:"description,omitempty"`
	Tags         string `json:"tags,omitempty"`
	Category     string `json:"category,omitempty"`
	CateID       int64  `json:"cate_id,omitempty"`
	FileName     string `json:"file_name,omitempty"`
	FileURL      string `json:"file_url,omitempty"` // unsigned: InputURL, the object's address
}

// Version names the asset's bytes: what was fetched of it is kept under this name, and goes
// when the bytes change.
func (a *LibraryAsset) Version() string {
	return fmt.Sprintf("%s.%d.%d", a.MediaID, a.Size, a.FileTime.Unix())
}

// LibraryMeta is how far the listing of the library has come.
type LibraryMeta struct {
	// Listed is when a sweep of the whole library last ended.
	Listed time.Time `json:"listed,omitzero"`
	// SweptTo is where the sweep under way has come to (the end of the last creation-time
	// window listed whole): a restarted mount goes on from there.
	SweptTo time.Time `json:"swept_to,omitzero"`
	// Newest is the end of the last window of new assets listed.
	Newest time.Time `json:"newest,omitzero"`
}

// LibraryAssets returns every asset of the library as last listed.
func (s *Store) LibraryAssets() ([]LibraryAsset, error) {
	var out []LibraryAsset
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLibrary)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var a LibraryAsset
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("cache: library asset %s: %w", k, err)
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// LibraryAsset returns one asset of the library; ErrNotFound if it is not there.
func (s *Store) LibraryAsset(mediaID string) (LibraryAsset, error) {
	var a LibraryAsset
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLibrary)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(mediaID))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &a)
	})
	return a, err
}

// PutLibrary keeps what a listing found, forgets the assets it found gone, and notes how far
// the listing has come, in one transaction.
func (s *Store) PutLibrary(put []LibraryAsset, gone []string, meta LibraryMeta) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketLibrary)
		if err != nil {
			return err
		}
		for i := range put {
			if err := putJSON(b, put[i].MediaID, &put[i]); err != nil {
				return err
			}
		}
		for _, id := range gone {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return putJSON(tx.Bucket(bucketMeta), string(libraryMetaKey), meta)
	})
}

// LibraryMeta returns how far the listing of the library had come.
func (s *Store) LibraryMeta() (LibraryMeta, error) {
	var m LibraryMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(libraryMetaKey); v != nil {
			return json.Unmarshal(v, &m)
		}
		return nil
	})
	return m, err
}
