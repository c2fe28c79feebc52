package fs

import (
	"testing"
	"time"

	"github.com/imsfs/imsfs/cache"
)

func TestRequeueAfterRename(t *testing.T) {
	due := time.Unix(100, 0)
	tests := []struct {
		state         cache.State
		newName       string
		want          cache.State
		cancel, queue bool
		newGen        bool
	}{
		{cache.Writing, "a.mp4", cache.Writing, false, false, false}, // its last close decides
		{cache.Ready, "a.mp4", cache.Ready, false, false, false},     // the asset stays
		{cache.Queued, "a.mp4", cache.Queued, true, true, false},     // re-armed, same content
		{cache.Skipped, "a.mp4", cache.Queued, true, true, false},    // a real name at last
		{cache.Uploading, "a.mp4", cache.Queued, true, true, true},   // voided, starts again
		{cache.Uploaded, "a.mp4", cache.Queued, true, true, true},
		{cache.Failed, "a.mp4", cache.Queued, true, true, true},
		{cache.Queued, "README", cache.Skipped, false, false, false},
		{cache.Creating, "README", cache.Skipped, true, false, true},
	}
	for _, tt := range tests {
		r := cache.Record{Path: "video/" + tt.newName, State: tt.state, Gen: 7, MediaID: "m"}
		cancel, queue := requeueAfterRename(&r, due)
		if r.State != tt.want || cancel != tt.cancel || queue != tt.queue || (r.Gen != 7) != tt.newGen {
			t.Errorf("%s → %s: state %s cancel %v queue %v gen %d; want %s %v %v new gen %v",
				tt.state, tt.newName, r.State, cancel, queue, r.Gen, tt.want, tt.cancel, tt.queue, tt.newGen)
		}
		if tt.state != r.State {
			if err := cache.Transition(tt.state, r.State); err != nil {
				t.Errorf("%s → %s: the state table refuses it: %v", tt.state, r.State, err)
			}
		}
		if tt.newGen && r.MediaID != "" {
			t.Errorf("%s: a voided upload keeps media_id %q", tt.state, r.MediaID)
		}
	}
}
