package fs

import (
	"path"
	"testing"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader"
)

func TestRequeueAfterRename(t *testing.T) {
	due := time.Unix(100, 0)
	tests := []struct {
		state         cache.State
		newPath       string
		want          cache.State
		cancel, queue bool
		newGen, meta  bool
	}{
		{cache.Writing, "video/a.mp4", cache.Writing, false, false, false, false},  // its last close decides
		{cache.Ready, "video/a.mp4", cache.Ready, false, true, false, true},        // the asset stays, retitled
		{cache.Ready, "video/.a.mp4.swp", cache.Ready, false, false, false, false}, // moved aside: nothing changes
		{cache.Ready, "video/a", cache.Ready, false, false, false, false},          // no title to give
		{cache.Ready, "image/a.mp4", cache.Queued, true, true, true, false},        // another Type: a new asset
		{cache.Queued, "video/a.mp4", cache.Queued, true, true, false, false},      // re-armed, same content
		{cache.Skipped, "video/a.mp4", cache.Queued, true, true, false, false},     // a real name at last
		{cache.Uploading, "video/a.mp4", cache.Queued, true, true, true, false},    // voided, starts again
		{cache.Uploaded, "video/a.mp4", cache.Queued, true, true, true, false},
		{cache.Failed, "video/a.mp4", cache.Queued, true, true, true, false},
		{cache.Queued, "video/README", cache.Skipped, false, false, false, false},
		{cache.Creating, "video/README", cache.Skipped, true, false, true, false},
		{cache.Queued, "video/a.mp4~", cache.Skipped, false, false, false, false},
	}
	for _, tt := range tests {
		r := cache.Record{Path: tt.newPath, State: tt.state, Gen: 7, MediaID: "m", Type: "video", BusinessType: "general"}
		names, _ := uploader.NewAdmitter(uploader.DefaultTempNames)
		rule, _ := DefaultMapping().RuleFor(path.Dir(tt.newPath))
		cancel, queue := requeueAfterRename(&r, rule, due, names)
		if r.State != tt.want || cancel != tt.cancel || queue != tt.queue || (r.Gen != 7) != tt.newGen || r.MetaPending != tt.meta {
			t.Errorf("%s → %s: state %s cancel %v queue %v gen %d meta %v; want %s %v %v new gen %v meta %v",
				tt.state, tt.newPath, r.State, cancel, queue, r.Gen, r.MetaPending, tt.want, tt.cancel, tt.queue, tt.newGen, tt.meta)
		}
		if r.Type != rule.Type {
			t.Errorf("%s → %s: type %s, want the new folder's %s", tt.state, tt.newPath, r.Type, rule.Type)
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
