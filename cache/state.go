package cache

import (
	"errors"
	"fmt"
)

// State is where a file stands on its way to becoming an IMS asset. The words are a contract:
// they are what user.ims.status shows and what scripts compare against, so never rename one.
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
)

// transitions lists, for each state, the states it may move to. It is the one place that says
// how an upload progresses; the store enforces it for every change of a record.
//
// Any state may go back to Writing, because a file can be reopened for writing at any time. A
// failed try that may pass (network, throttling) does not change the state: the record keeps
// the step it was on, with Due set to the next try and Error saying what went wrong. A rename
// sends an unfinished upload back to Queued (or to Skipped, for a name that cannot be an asset),
// so that the asset gets the file's final name and folder; so does moving a ready file to a folder
// of another Type, which needs a new asset. A write session in which a write failed (a full
// cache disk) ends Failed: the spool is not what the writer meant to save, so it is not uploaded.
var transitions = map[State][]State{
	Writing:   {Queued, Skipped, Failed},
	Queued:    {Writing, Creating, Skipped},
	Creating:  {Writing, Queued, Uploading, Failed, Skipped},
	Uploading: {Writing, Queued, Uploaded, Failed, Skipped},
	Uploaded:  {Writing, Queued, Ready, Failed, Skipped},
	Ready:     {Writing, Queued},
	Failed:    {Writing, Queued, Skipped},
	Skipped:   {Writing, Queued},
}

// ErrBadTransition is returned when a record is asked to move to a state its current state
// does not lead to.
var ErrBadTransition = errors.New("state transition not allowed")

// Transition reports whether a record in state from may move to state to.
func Transition(from, to State) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("%s → %s: %w", from, to, ErrBadTransition)
}

// Valid reports whether s is one of the states above.
func (s State) Valid() bool {
	_, ok := transitions[s]
	return ok
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

// States returns every state, in order; for documentation and tests.
func States() []State {
	return []State{Writing, Queued, Creating, Uploading, Uploaded, Ready, Failed, Skipped}
}
