package cache

// State is where a file stands on its way to becoming an IMS asset. The words are a contract:
// they are what user.ims.status shows and what scripts compare against, so never rename one.
//
// A record changes state only through Store.Apply, by the table in lifecycle.go.
type State string

// The states, in the order a file normally passes through them.
const (
	Writing   State = "writing"   // open for writing, or closed but not yet handed to the queue
	Queued    State = "queued"    // closed; waits for the settle delay or a retry's backoff
	Creating  State = "creating"  // CreateUploadMedia is being called
	Uploading State = "uploading" // bytes are being sent to OSS
	Uploaded  State = "uploaded"  // the object is complete; waiting for the asset to be Normal
	Ready     State = "ready"     // the asset is Normal in the media library
	Failed    State = "failed"    // a permanent error; user.ims.error says which
	Skipped   State = "skipped"   // never uploaded (a temporary name, or no extension)
	Local     State = "local"     // kept in the mount, never uploaded: a name desktops and systems leave (.DS_Store, Thumbs.db…)
)

// States returns every state, in order; for documentation and tests.
func States() []State {
	return []State{Writing, Queued, Creating, Uploading, Uploaded, Ready, Failed, Skipped, Local}
}

// Pending reports whether a record in this state still has work for the uploader: after a
// restart, every pending record is handed to the queue again.
func (s State) Pending() bool {
	switch s {
	case Writing, Queued, Creating, Uploading, Uploaded:
		return true
	}
	return false
}

// Kept reports whether a file in this state stays in the mount and is not uploaded, for its
// name (skipped, local): a rename to another name may make it an asset's.
func (s State) Kept() bool { return s == Skipped || s == Local }

// Finished reports whether the file's bytes are in the cloud: every policy (unlink, rename,
// overwrite) treats an uploaded file as it treats a ready one, since only IMS's own processing
// is left.
func (s State) Finished() bool { return s == Uploaded || s == Ready }
