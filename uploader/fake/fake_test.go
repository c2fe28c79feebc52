package fake

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// TestTheFakeRefusesWhatTheServiceRefuses: the fake is only useful as far as it holds the
// uploader to the service's rules: credentials, part numbers and ETags, statuses.
func TestTheFakeRefusesWhatTheServiceRefuses(t *testing.T) {
	clock := clockwork.NewFakeClock()
	c := New()
	c.Clock, c.MaxParts, c.CredsTTL, c.ReadyAfter = clock, 2, time.Minute, time.Second
	ctx := context.Background()
	if _, err := c.CreateUploadMedia(ctx, ims.CreateUploadMediaRequest{}); err == nil {
		t.Error("an asset without Type, Ext or Title was made")
	}
	tk, err := c.CreateUploadMedia(ctx, ims.CreateUploadMediaRequest{FileInfo: ims.FileInfo{Type: "video", Ext: "mp4"},
		MediaMetaData: ims.MediaMetaData{Title: "a", BusinessType: "general"}, UserData: map[string]any{"Extend": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	addr, auth, err := tk.Decode(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	target := transfer.Target{Endpoint: addr.Endpoint, Bucket: addr.Bucket, Key: addr.Key}
	good := func() transfer.Credentials {
		return transfer.Credentials{AccessKeyID: auth.AccessKeyID, AccessKeySecret: auth.AccessKeySecret, SecurityToken: auth.SecurityToken}
	}
	wrong := func() transfer.Credentials {
		return transfer.Credentials{AccessKeyID: auth.AccessKeyID, AccessKeySecret: "x"}
	}
	unknown := func() transfer.Credentials { return transfer.Credentials{AccessKeyID: "nobody"} }
	if _, err := c.Put(ctx, target, wrong, strings.NewReader("x"), 1, nil); !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("a wrong secret: %v", err)
	}
	if _, err := c.Put(ctx, target, unknown, strings.NewReader("x"), 1, nil); !transfer.Expired(err) {
		t.Errorf("an unknown key: %v", err)
	}
	if _, err := c.Put(ctx, transfer.Target{Bucket: "fake", Key: "other"}, good, strings.NewReader("x"), 1, nil); err == nil {
		t.Errorf("credentials for one object wrote another")
	}
	if _, err := c.Put(ctx, target, good, strings.NewReader("x"), 2, nil); err == nil {
		t.Errorf("a short body was taken")
	}
	id, err := c.Initiate(ctx, target, good)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := c.UploadPart(ctx, target, good, id, 1, strings.NewReader("ab"), 2, nil)
	p2, _ := c.UploadPart(ctx, target, good, id, 2, strings.NewReader("cd"), 2, nil)
	e1, e2 := p1.ETag, p2.ETag
	if _, err := c.UploadPart(ctx, target, good, id, 3, strings.NewReader("ef"), 2, nil); err == nil {
		t.Errorf("a part past MaxParts was taken")
	}
	if _, err := c.UploadPart(ctx, target, good, "nope", 1, strings.NewReader("ef"), 2, nil); !transfer.Gone(err) {
		t.Errorf("a part of an unknown upload: %v", err)
	}
	if parts, err := c.ListParts(ctx, target, good, id); err != nil || len(parts) != 2 || parts[1].Size != 2 {
		t.Errorf("ListParts: %+v %v", parts, err)
	}
	if _, err := c.Complete(ctx, target, good, id, []transfer.Part{{Number: 1, ETag: e2}}); !transfer.Gone(err) {
		t.Errorf("a part with another's ETag: %v", err)
	}
	if _, err := c.Complete(ctx, target, good, id, []transfer.Part{{Number: 2, ETag: e2}, {Number: 1, ETag: e1}}); err == nil {
		t.Errorf("parts out of order were taken")
	}
	if m := c.Assets()[0]; m.Status != ims.MediaPreparing {
		t.Errorf("an asset whose object is being written is %s", m.Status)
	}
	crc, err := c.Complete(ctx, target, good, id, []transfer.Part{{Number: 1, ETag: e1}, {Number: 2, ETag: e2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := transfer.CombineCRC(p1.CRC64, p2.CRC64, 2); crc != want {
		t.Errorf("Complete: CRC-64 %d, the parts make %d", crc, want)
	}
	if o, err := c.Head(ctx, target, good); err != nil || o.Size != 4 || !strings.HasSuffix(o.ETag, "-2") || o.CRC64 != crc {
		t.Errorf("Head: %+v %v", o, err)
	}
	if data, ok := c.Object(tk.MediaID); !ok || string(data) != "abcd" {
		t.Errorf("Object: %q", data)
	}
	batch, _ := c.BatchGetMediaInfos(ctx, []string{tk.MediaID, "nope"}, false)
	if len(batch.MediaInfos) != 1 || batch.MediaInfos[0].MediaBasicInfo.Status != ims.MediaPreparing || len(batch.Ignored) != 1 || batch.Ignored[0] != "nope" {
		t.Errorf("before ReadyAfter: %+v", batch)
	}
	clock.Advance(time.Second)
	if info, _ := c.GetMediaInfo(ctx, tk.MediaID, 0); info.MediaBasicInfo.Status != ims.MediaNormal || info.FileURL() == "" {
		t.Errorf("after ReadyAfter: %+v", info)
	}
	clock.Advance(time.Minute)
	if _, err := c.Initiate(ctx, target, good); !transfer.Expired(err) {
		t.Errorf("expired credentials: %v", err)
	}
	if _, err := c.RefreshUploadMedia(ctx, tk.MediaID); err != nil {
		t.Errorf("refresh: %v", err)
	}
	c.ExpireCredentials()
	if err := c.Abort(ctx, target, good, "x"); !transfer.Expired(err) {
		t.Errorf("expired by ExpireCredentials: %v", err)
	}
	if err := c.UpdateMediaInfo(ctx, ims.Update{MediaID: tk.MediaID, Title: "b", BusinessType: "opening"}); err != nil || c.Assets()[0].Title != "b" {
		t.Errorf("update: %v %+v", err, c.Assets()[0])
	}
	page, _ := c.ListMediaBasicInfos(ctx, ims.ListRequest{MediaType: "video", SortBy: "desc", MaxResults: 1})
	if len(page.Media) != 1 || page.NextToken != "" {
		t.Errorf("list: %+v", page)
	}
	if page, _ := c.ListMediaBasicInfos(ctx, ims.ListRequest{MediaType: "image"}); len(page.Media) != 0 {
		t.Errorf("list of another type: %+v", page)
	}
	if err := c.DeleteMediaInfos(ctx, tk.MediaID, "nope"); err != nil || !c.Assets()[0].Deleted {
		t.Errorf("delete: %v", err)
	}
	for _, err := range []error{
		func() error { _, err := c.GetMediaInfo(ctx, tk.MediaID, 0); return err }(),
		func() error { _, err := c.RefreshUploadMedia(ctx, tk.MediaID); return err }(),
		c.UpdateMediaInfo(ctx, ims.Update{MediaID: tk.MediaID}),
	} {
		if err == nil {
			t.Errorf("a call on a deleted asset succeeded")
		}
	}
	c.Fail = func(op string) error { return errors.New(op + " failed") }
	if err := c.DeleteMediaInfos(ctx, "x"); err == nil || c.Calls("ims.delete") != 2 {
		t.Errorf("Fail: %v, %d calls", err, c.Calls("ims.delete"))
	}
	c.Fail = nil
	c.Add(Asset{Type: "image"})
	c.SetStatus(c.Assets()[1].MediaID, ims.MediaPrepareFail)
	c.SetReadyAfter(0)
	c.Drop(id)
	if len(c.Batches()) != 1 || c.Uploads() != 0 || c.Assets()[1].Status != ims.MediaPrepareFail {
		t.Errorf("batches %v uploads %d", c.Batches(), c.Uploads())
	}
}
