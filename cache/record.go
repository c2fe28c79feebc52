package cache

import "time"

// Record is what the store keeps for one file in the mount: where its bytes are spooled, how
// far its upload has gone, and what IMS said about it. It is the only upload state imsfs has;
// every surface (xattrs, the uploader, recovery after a crash) reads it from the store.
//
// It is kept small on purpose: the parts of a multipart upload live in their own bucket, and
// upload credentials are never written to disk (RefreshUploadMedia gives new ones on resume).
type Record struct {
	ID   uint64 `json:"id"`   // stable for the file's life; names its spool file
	Path string `json:"path"` // slash-separated, relative to the mount root, e.g. "video/clip.mp4"

	State    State     `json:"state"`
	Gen      uint64    `json:"gen"`                // bumped whenever the content may change; an upload of an older Gen is void
	Due      time.Time `json:"due,omitzero"`       // a Queued record is not started before this (settle delay, backoff)
	Attempts int       `json:"attempts,omitempty"` // failed tries of the current Gen since it last got somewhere (the backoff's)
	Retries  int       `json:"retries,omitempty"`  // failed tries of the current Gen in all, for the outcome's log line
	// Unknowns counts the last Attempts that failed for a reason of no known kind, in a row: past
	// the retry policy's cap, the file fails. It means nothing once Attempts is back to 0.
	Unknowns int `json:"unknowns,omitempty"`
	// StartOvers counts the uploads of these bytes that started over with a new asset (a new
	// Gen each) since the last one completed or the file was written: their backoff, and the
	// cap after which the file fails.
	StartOvers int    `json:"start_overs,omitempty"`
	Error      string `json:"error,omitempty"` // last error, for user.ims.error

	Size  int64     `json:"size"`
	Mode  uint32    `json:"mode"`
	Mtime time.Time `json:"mtime"`
	Atime time.Time `json:"atime,omitzero"` // as touch -a set it [Mtime]

	Type         string `json:"type,omitempty"`          // FileInfo.Type, from the folder mapping
	BusinessType string `json:"business_type,omitempty"` // MediaMetaData.BusinessType, from the folder mapping

	MediaID  string `json:"media_id,omitempty"`
	MediaURL string `json:"media_url,omitempty"`
	FileURL  string `json:"file_url,omitempty"`

	Upload *Upload `json:"upload,omitempty"` // set once CreateUploadMedia has answered for this Gen

	// Asked: when CreateUploadMedia was first called for this Gen, committed before the call.
	// If the answer never came (a crash, a cut connection), the asset it may have made is
	// looked for from then on, by its tag, before another is made.
	Asked time.Time `json:"asked,omitzero"`

	// Uploaded: when the object was complete; readiness is waited for from then on.
	Uploaded time.Time `json:"uploaded,omitzero"`

	// Meta is what the user set for the asset (user.ims.title, description, tags, cate_id).
	// It is the file's, not an upload's: a new generation keeps it.
	Meta Meta `json:"meta,omitzero"`

	// MetaPending: the asset is to follow the file's name, folder or Meta (a finished file was
	// renamed, or Meta set once the asset was made); the uploader calls UpdateMediaInfo and
	// clears it, if nothing changed since (MetaSeq).
	MetaPending bool   `json:"meta_pending,omitempty"`
	MetaSeq     uint64 `json:"meta_seq,omitempty"` // counts the changes the asset is to follow
	// MetaDone: when UpdateMediaInfo last carried a change to the asset.
	MetaDone time.Time `json:"meta_done,omitzero"`
	// AssetFields are the asset's fields as imsfs last set them (its creation, then each
	// update): an update sends only what differs [nil: not known, everything is sent].
	AssetFields *AssetFields `json:"asset_fields,omitempty"`

	// Damaged: a write of the last session failed (a full cache disk), so the spool is not
	// what the writer meant to save; only a new write session can make it uploadable.
	Damaged bool `json:"damaged,omitempty"`

	// Early: the asset and the parts were made while the file was being written (upload while
	// writing); a part may have been written again since it was sent, so each is checked
	// against the spool before the upload completes.
	Early bool `json:"early,omitempty"`

	// Evicted: the spool was removed to bound the cache (only a Ready file's); its bytes are
	// read back from the object, and fetched again before they change.
	Evicted bool `json:"evicted,omitempty"`

	// Xattrs are the user.* attributes set on the file other than imsfs's own (xattr.go).
	Xattrs Xattrs `json:"xattrs,omitempty"`

	// MetaRefused says why a value of the asset's fields written in its sidecar was refused,
	// until one is taken ("": none).
	MetaRefused string `json:"meta_refused,omitempty"`
}

// Meta is what a file's extended attributes set for its asset; an empty field is the default
// (the Title from the file's name; no Description, Tags or CateId).
type Meta struct {
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Tags        string `json:"tags,omitempty"`    // comma separated
	CateID      string `json:"cate_id,omitempty"` // an integer
}

// AssetFields are the fields of an asset that imsfs sets, as they were sent.
type AssetFields struct {
	Title        string `json:"title,omitempty"`
	BusinessType string `json:"business_type,omitempty"`
	Description  string `json:"description,omitempty"`
	Tags         string `json:"tags,omitempty"`
	CateID       string `json:"cate_id,omitempty"`
}

// MetaFields names the fields of Meta as their attributes do (user.ims.NAME).
var MetaFields = []string{"title", "description", "tags", "cate_id"}

// Field returns the field named name (one of MetaFields).
func (m *Meta) Field(name string) string {
	if p := m.field(name); p != nil {
		return *p
	}
	return ""
}

func (m *Meta) field(name string) *string {
	switch name {
	case "title":
		return &m.Title
	case "description":
		return &m.Description
	case "tags":
		return &m.Tags
	case "cate_id":
		return &m.CateID
	}
	return nil
}

// Upload is where a record's bytes go: the object CreateUploadMedia named, and the multipart
// upload under way. Its finished parts are kept apart (Store.Parts), its credentials in memory.
type Upload struct {
	Endpoint string `json:"endpoint"` // from UploadAddress
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	Region   string `json:"region,omitempty"` // from UploadAuth: what OSS V4 signatures name

	MultipartID string `json:"multipart_id,omitempty"`
	PartSize    int64  `json:"part_size,omitempty"`
}

// Part is one finished part of a multipart upload.
type Part struct {
	Number int    `json:"n"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
	// Sum is the CRC-32C of the bytes sent, in hex, when known: a stored part is checked by it
	// against the spool before the upload completes (at the speed of memory).
	Sum string `json:"sum,omitempty"`
	// CRC64 is the part's CRC-64 (ECMA) as OSS reported it, equal to the bytes sent [0: not
	// known, a part stored by an older imsfs]: the object's is made of its parts'.
	CRC64 uint64 `json:"crc64,omitempty"`
}

// Dir is what the store keeps for a folder a user made, or for a fixed folder once a user sets an attribute on it.
type Dir struct {
	Path   string    `json:"path"`
	Mode   uint32    `json:"mode"`
	Mtime  time.Time `json:"mtime"`
	Atime  time.Time `json:"atime,omitzero"`   // as set (touch -a); zero: its mtime
	Xattrs Xattrs    `json:"xattrs,omitempty"` // user.* attributes set on it (xattr.go)
}

// newGeneration marks the record's content as changed: whatever upload was made or under way
// describes older bytes, so its result is void (a run of the old generation can no longer
// commit) and the new content will get its own asset. What becomes of the old asset is the
// disposal the store commits with the change.
func (r *Record) newGeneration() {
	r.Gen++
	r.MediaID, r.MediaURL, r.FileURL, r.Upload = "", "", "", nil
	r.Due, r.Attempts, r.Retries, r.Error = time.Time{}, 0, 0, ""
	r.MetaPending, r.Asked, r.Damaged, r.Uploaded, r.Early = false, time.Time{}, false, time.Time{}, false
	r.MetaDone, r.AssetFields = time.Time{}, nil
}

// metaChanged asks for the asset to follow a change of the file's name, place or Meta.
func (r *Record) metaChanged() {
	r.MetaPending = true
	r.MetaSeq++
}

// unfinished reports whether the record belongs in the index of files that are not ready:
// what the uploader resumes and `imsfs status` lists.
func (r *Record) unfinished() bool { return r.State != Ready || r.MetaPending }
