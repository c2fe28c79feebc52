package uploader

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/fake"
	"github.com/imsfs/imsfs/uploader/ims"
)

func testPlace(mediaType, businessType string) string {
	if businessType == "opening" {
		return mediaType + "/opening"
	}
	return mediaType
}

type changeLog struct {
	mu   sync.Mutex
	list []LibraryChange
}

func (c *changeLog) add(ch []LibraryChange) {
	c.mu.Lock()
	c.list = append(c.list, ch...)
	c.mu.Unlock()
}

func (c *changeLog) take() []LibraryChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.list
	c.list = nil
	return l
}

func newTestLibrary(t *testing.T, cloud *fake.Cloud, dir string) (*Library, *changeLog) {
	t.Helper()
	store, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l, err := NewLibrary(LibraryConfig{Store: store, IMS: cloud, Place: testPlace, Folders: []string{"video", "video/opening", "image"}, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ch := &changeLog{}
	l.OnChange(ch.add)
	return l, ch
}

func short(id string) string { return id[:min(8, len(id))] }

func names(l *Library, dir string) []string {
	var out []string
	for _, e := range l.List(dir) {
		out = append(out, e.Name)
	}
	return out
}

// TestTheLibraryIsListedWhole: 450 assets, 90 a second (past the cap of 100 in any window wider),
// go in their folders with their names and sizes; two of one name are told apart by MediaId;
// an asset whose upload has not come is not shown until it has.
func TestTheLibraryIsListedWhole(t *testing.T) {
	cloud := fake.New()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 450 {
		cloud.Add(fake.Asset{Type: "video", BusinessType: "general", Status: ims.MediaNormal, Created: base.Add(time.Duration(i/90) * time.Second),
			Key: fmt.Sprintf("sv/%03d.mp4", i), Data: []byte(strings.Repeat("v", i))})
	}
	older := cloud.Add(fake.Asset{Type: "video", BusinessType: "opening", Status: ims.MediaNormal, Created: base.Add(-time.Minute), Key: "sv/same.mp4", Data: []byte("first")})
	newer := cloud.Add(fake.Asset{Type: "video", BusinessType: "opening", Status: ims.MediaNormal, Created: base.Add(time.Minute), Key: "sv/same.mp4", Data: []byte("second")})
	cloud.Add(fake.Asset{Type: "image", BusinessType: "default", Status: ims.MediaInit, Created: base})
	l, ch := newTestLibrary(t, cloud, t.TempDir())
	l.refresh(context.Background())

	st := l.State()
	if st.Assets != 452 || st.Listed.IsZero() || st.Stale != nil {
		t.Errorf("state after the first listing: %+v", st)
	}
	if got := names(l, "video"); len(got) != 450 || got[0] != "000.mp4" {
		t.Errorf("video: %d names, first %v", len(got), got[:1])
	}
	if e, ok := l.Lookup("video", "123.mp4"); !ok || e.Size != 123 {
		t.Errorf("video/123.mp4: %+v %v", e, ok)
	}
	if got := names(l, "video/opening"); len(got) != 2 || got[1] != "same.mp4" || got[0] != "same ["+short(newer)+"].mp4" {
		t.Errorf("two of one name: %v", got)
	}
	if e, _ := l.Lookup("video/opening", "same.mp4"); e.MediaID != older {
		t.Errorf("the older asset does not keep the name: %s", e.MediaID)
	}
	if len(names(l, "image")) != 0 {
		t.Errorf("an asset without a file is shown: %v", names(l, "image"))
	}
	if n := len(ch.take()); n != 452 {
		t.Errorf("%d changes told", n)
	}
	// Not more than twice the calls the cap asks for (452 assets, 100 a call).
	if n := cloud.Calls("ims.list"); n > 20 {
		t.Errorf("%d listing calls", n)
	}
}

// TestTheLibraryFollowsTheService: a new asset comes, one is deleted, one gets its file; a
// restart shows the library at once, with the same names; a service that cannot be reached
// leaves what was listed, and says it is stale.
func TestTheLibraryFollowsTheService(t *testing.T) {
	cloud := fake.New()
	dir := t.TempDir()
	now := time.Now().Truncate(time.Second)
	keep := cloud.Add(fake.Asset{Type: "video", BusinessType: "general", Status: ims.MediaNormal, Created: now.Add(-time.Hour), Key: "sv/a/keep.mp4", Data: []byte("keep")})
	gone := cloud.Add(fake.Asset{Type: "video", BusinessType: "general", Status: ims.MediaNormal, Created: now.Add(-2 * time.Hour), Key: "sv/gone.mp4", Data: []byte("gone")})
	l, ch := newTestLibrary(t, cloud, dir)
	ctx := context.Background()
	l.refresh(ctx)
	ch.take()

	cloud.DeleteMediaInfos(ctx, gone)
	fresh := cloud.Add(fake.Asset{Type: "video", BusinessType: "general", Status: ims.MediaNormal, Created: now.Add(-3 * time.Second), Key: "sv/b/keep.mp4", Data: []byte("a new one")})
	l.refresh(ctx)
	if got := names(l, "video"); len(got) != 3 {
		t.Errorf("a deleted asset goes at the second listing that misses it, not the first: %v", got)
	}
	l.refresh(ctx)
	got := names(l, "video")
	if want := []string{"keep [" + short(fresh) + "].mp4", "keep.mp4"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("after a deletion and a new asset: %v, want %v", got, want)
	}
	told := map[string]bool{}
	for _, c := range ch.take() {
		told[fmt.Sprintf("%s %v", c.Name, c.Gone)] = true
	}
	if !told["gone.mp4 true"] || !told["keep ["+short(fresh)+"].mp4 false"] {
		t.Errorf("changes told: %v", told)
	}

	// A restart shows it at once.
	l.cfg.Store.Close()
	l2, _ := newTestLibrary(t, cloud, dir)
	if got2 := names(l2, "video"); strings.Join(got2, "|") != strings.Join(got, "|") {
		t.Errorf("after a restart: %v, want %v", got2, got)
	}
	if e, ok := l2.Entry(keep); !ok || e.Name != "keep.mp4" || e.Size != 4 {
		t.Errorf("the kept asset after a restart: %+v", e)
	}

	// Offline.
	cloud.Fail = func(op string) error {
		if strings.HasPrefix(op, "ims.") {
			return errors.New("dial tcp: connection refused")
		}
		return nil
	}
	l2.refresh(ctx)
	if st := l2.State(); st.Stale == nil || st.Since.IsZero() || st.Assets != 2 {
		t.Errorf("offline: %+v", st)
	}
	cloud.Fail = nil
	l2.refresh(ctx)
	if st := l2.State(); st.Stale != nil {
		t.Errorf("back online: %+v", st)
	}
}

// TestAnUploadThatComesLaterIsShown: an asset listed before its file is asked after until it
// has one, then shown.
func TestAnUploadThatComesLaterIsShown(t *testing.T) {
	cloud := fake.New()
	// Made a minute ago: the listing leaves the last seconds to the next refresh.
	cloud.Clock = clockwork.NewFakeClockAt(time.Now().Add(-time.Minute))
	l, _ := newTestLibrary(t, cloud, t.TempDir())
	ctx := context.Background()
	l.refresh(ctx)
	ticket, err := cloud.CreateUploadMedia(ctx, ims.CreateUploadMediaRequest{FileInfo: ims.FileInfo{Type: "video", Name: "late", Ext: "mp4"},
		MediaMetaData: ims.MediaMetaData{Title: "late", BusinessType: "general"}})
	if err != nil {
		t.Fatal(err)
	}
	l.refresh(ctx)
	if len(names(l, "video")) != 0 {
		t.Fatalf("an asset without its file is shown")
	}
	if err := cloud.Upload(ticket.MediaID, []byte("late bytes")); err != nil {
		t.Fatal(err)
	}
	l.refresh(ctx)
	if got := names(l, "video"); len(got) != 1 {
		t.Errorf("after its upload: %v", got)
	}
}

// TestTheOldestKeepsItsNameThoughItsUploadComesLater: an asset whose upload is under way holds
// its name; a newer one of the same name is told apart; the older shows under the name once its
// bytes come; a mount started later names them alike.
func TestTheOldestKeepsItsNameThoughItsUploadComesLater(t *testing.T) {
	cloud := fake.New()
	now := time.Now().Truncate(time.Second)
	older := cloud.Add(fake.Asset{Type: "video", BusinessType: "general", Status: ims.MediaInit, Created: now.Add(-time.Hour), Title: "x", Key: "sv/a/x.mp4"})
	newer := cloud.Add(fake.Asset{Type: "video", BusinessType: "general", Status: ims.MediaNormal, Created: now.Add(-time.Minute), Key: "sv/b/x.mp4", Data: []byte("newer")})
	l, _ := newTestLibrary(t, cloud, t.TempDir())
	ctx := context.Background()
	l.refresh(ctx)
	if got := names(l, "video"); strings.Join(got, "|") != "x ["+short(newer)+"].mp4" {
		t.Errorf("while the older uploads: %v", got)
	}
	cloud.Upload(older, []byte("older"))
	l.refresh(ctx)
	want := "x [" + short(newer) + "].mp4|x.mp4"
	if got := names(l, "video"); strings.Join(got, "|") != want {
		t.Errorf("once the older is uploaded: %v, want %s", got, want)
	}
	if e, _ := l.Lookup("video", "x.mp4"); e.MediaID != older {
		t.Errorf("x.mp4 is %s, want the older %s", e.MediaID, older)
	}
	l2, _ := newTestLibrary(t, cloud, t.TempDir())
	l2.refresh(ctx)
	if got := names(l2, "video"); strings.Join(got, "|") != want {
		t.Errorf("another mount names them %v, want %s", got, want)
	}
}

// TestAnAssetOfAnotherBusinessTypeMoves: UpdateMediaInfo gives an asset another BusinessType;
// it moves to that folder under its name, and both folders are told.
func TestAnAssetOfAnotherBusinessTypeMoves(t *testing.T) {
	cloud := fake.New()
	id := cloud.Add(fake.Asset{Type: "video", BusinessType: "general", Status: ims.MediaNormal, Created: time.Now().Add(-time.Hour), Key: "sv/m.mp4", Data: []byte("m")})
	l, ch := newTestLibrary(t, cloud, t.TempDir())
	ctx := context.Background()
	l.refresh(ctx)
	ch.take()
	if err := cloud.UpdateMediaInfo(ctx, ims.Update{MediaID: id, BusinessType: "opening"}); err != nil {
		t.Fatal(err)
	}
	l.refresh(ctx)
	if len(names(l, "video")) != 0 || strings.Join(names(l, "video/opening"), "|") != "m.mp4" {
		t.Errorf("after its BusinessType changed: video %v, video/opening %v", names(l, "video"), names(l, "video/opening"))
	}
	told := ch.take()
	if len(told) != 2 || !told[0].Gone || told[0].Dir != "video" || !told[1].Came || told[1].Dir != "video/opening" {
		t.Errorf("changes told: %+v", told)
	}
}
