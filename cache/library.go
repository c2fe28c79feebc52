package cache

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The library is every asset of the IMS account as it was last listed: kept here so that a
// restarted mount shows it at once (and offline), and so that each asset keeps its name. Keys
// are the creation time (8 bytes, big endian Unix seconds) then the MediaId: a listing, which
// goes in creation order, writes pages one after another, and the bucket stays dense; a mount
// with 100,000 assets keeps its memory for them, not for half-empty pages.
var bucketLibrary = []byte("library")

// libraryMetaKey names the LibraryMeta in the meta bucket.
var libraryMetaKey = []byte("library")

// LibraryAsset is one asset of the library as ListMediaBasicInfos last gave it, and where the
// mount shows it. The JSON names are short: there may be 100,000 of them.
type LibraryAsset struct {
	MediaID string `json:"id"`
	// Dir and Name are where library/ shows it (Dir under library/, such as video/opening); the
	// name is given at its first listing and kept while the asset exists.
	Dir  string `json:"dir,omitempty"`
	Name string `json:"name,omitempty"`
	// HasFile: the asset lists its source file (its upload is complete); it is shown only then.
	HasFile bool  `json:"file,omitempty"`
	Size    int64 `json:"size,omitempty"`
	// Created is the asset's CreateTime; Changed its ModifiedTime (its fields); FileTime its
	// file's (the bytes).
	Created  time.Time `json:"c"`
	Changed  time.Time `json:"m,omitzero"`
	FileTime time.Time `json:"ft,omitzero"`

	MediaType    string `json:"mt,omitempty"`
	BusinessType string `json:"bt,omitempty"`
	Status       string `json:"st,omitempty"` // Init, Preparing, PrepareFail, Normal
	Title        string `json:"title,omitempty"`
	Description  string `json:"desc,omitempty"`
	Tags         string `json:"tags,omitempty"`
	CateID       int64  `json:"cate,omitempty"`
	FileName     string `json:"fn,omitempty"`
	FileURL      string `json:"url,omitempty"` // unsigned: InputURL, the object's address
}

// LibraryVersion names the bytes of asset mediaID of size at fileTime: what was fetched of it
// is kept under this name, and goes when the bytes change.
func LibraryVersion(mediaID string, size int64, fileTime time.Time) string {
	return fmt.Sprintf("%s.%d.%d", mediaID, size, fileTime.Unix())
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

func libraryKey(created time.Time, mediaID string) []byte {
	k := make([]byte, 8, 8+len(mediaID))
	binary.BigEndian.PutUint64(k, uint64(created.Unix()))
	return append(k, mediaID...)
}

// EachLibraryAsset calls fn with each asset of the library as last listed, in creation order,
// one at a time (a library of 100,000 is never all in memory at once).
func (s *Store) EachLibraryAsset(fn func(*LibraryAsset) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLibrary).ForEach(func(k, v []byte) error {
			var a LibraryAsset
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("cache: library asset %q: %w", k, err)
			}
			return fn(&a)
		})
	})
}

// LibraryAsset returns one asset of the library, made at created; ErrNotFound if it is not there.
func (s *Store) LibraryAsset(created time.Time, mediaID string) (LibraryAsset, error) {
	var a LibraryAsset
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLibrary).Get(libraryKey(created, mediaID))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &a)
	})
	return a, err
}

// PutLibrary keeps what a listing found, forgets the assets it found gone, and notes how far
// the listing has come, in one transaction.
func (s *Store) PutLibrary(put, gone []LibraryAsset, meta LibraryMeta) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLibrary)
		// Listings come in creation order: pages filled up, not split in halves.
		b.FillPercent = 0.9
		for i := range put {
			data, err := json.Marshal(&put[i])
			if err != nil {
				return fmt.Errorf("encode library asset %s: %w", put[i].MediaID, err)
			}
			if err := b.Put(libraryKey(put[i].Created, put[i].MediaID), data); err != nil {
				return err
			}
		}
		for i := range gone {
			if err := b.Delete(libraryKey(gone[i].Created, gone[i].MediaID)); err != nil {
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
