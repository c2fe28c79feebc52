package uploader

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/fake"
)

// writer writes a file's spool as the file system's writer would, telling the queue how far
// it got, and closes it.
type writer struct {
	r    *rig
	rec  cache.Record
	f    *os.File
	data []byte
}

func (r *rig) open(path string) *writer {
	r.t.Helper()
	rec, err := r.store.Create(path, func(rec *cache.Record) { rec.Type, rec.BusinessType = "video", "general" })
	if err != nil {
		r.t.Fatal(err)
	}
	f, err := os.OpenFile(r.store.SpoolPath(rec.ID), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { f.Close() })
	return &writer{r: r, rec: rec, f: f}
}

// write appends b and says so, as a writer going in order does.
func (w *writer) write(b []byte) {
	w.r.t.Helper()
	if _, err := w.f.WriteAt(b, int64(len(w.data))); err != nil {
		w.r.t.Fatal(err)
	}
	w.data = append(w.data, b...)
	w.r.queue.Growing(w.rec.ID, int64(len(w.data)))
}

// rewrite writes b at off, within what was written: no longer a writer in order.
func (w *writer) rewrite(off int, b []byte) {
	w.r.t.Helper()
	if _, err := w.f.WriteAt(b, int64(off)); err != nil {
		w.r.t.Fatal(err)
	}
	copy(w.data[off:], b)
}

func (w *writer) close(damage string) cache.Record {
	w.r.t.Helper()
	rec, err := w.r.queue.Apply(w.rec.ID, cache.Event{Kind: cache.Closed, Size: int64(len(w.data)), Damage: damage, Due: time.Now().Add(time.Hour)})
	if err != nil {
		w.r.t.Fatal(err)
	}
	return rec
}

// waitStored waits until n parts of the file are sent and stored.
func (w *writer) waitStored(n int) cache.Record {
	w.r.t.Helper()
	return w.r.waitUntil(w.rec.ID, func(rec cache.Record) bool {
		parts, _ := w.r.store.Parts(rec.ID, rec.Gen)
		return len(parts) == n
	}, fmt.Sprintf("%d parts stored", n))
}

// TestAFileWrittenInOrderIsUploadedWhileWritten: its asset is made and its full parts sent
// before the close; the close sends the last one and completes, without the settle delay.
func TestAFileWrittenInOrderIsUploadedWhileWritten(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize, EarlyAfter: time.Millisecond})
	w := r.open("video/growing.mp4")
	w.write(randomBytes(t, minPartSize/2))
	time.Sleep(50 * time.Millisecond)
	if n := len(cloud.Assets()); n != 0 {
		t.Fatalf("%d assets for a file of less than two parts", n)
	}
	for range 5 {
		w.write(randomBytes(t, minPartSize))
	}
	before := w.waitStored(5)
	if before.State != cache.Writing || before.MediaID == "" || len(cloud.Assets()) != 1 {
		t.Fatalf("while written: %s, asset %q, %d assets", before.State, before.MediaID, len(cloud.Assets()))
	}
	w.close("") // due in an hour: a file uploaded while written does not wait
	got := r.waitFor(w.rec.ID, cache.Ready)
	if data, _ := cloud.Object(got.MediaID); !bytes.Equal(data, w.data) || got.MediaID != before.MediaID {
		t.Errorf("the object holds %d bytes of %s, want the %d written to %s", len(data), got.MediaID, len(w.data), before.MediaID)
	}
	if n := cloud.Calls("oss.part"); n != 6 {
		t.Errorf("%d parts sent, want 6 (five while written, the last at the close)", n)
	}
	if n := cloud.Calls("ims.create"); n != 1 {
		t.Errorf("%d assets made, want 1", n)
	}
}

// TestAPartWrittenAgainAfterItWasSentIsSentAgain: the writer went back over a range it had
// written; the part sent before holds older bytes and goes again at the close.
func TestAPartWrittenAgainAfterItWasSentIsSentAgain(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize, EarlyAfter: time.Millisecond})
	w := r.open("video/patched.mp4")
	for range 4 {
		w.write(randomBytes(t, minPartSize))
	}
	w.waitStored(4)
	w.rewrite(minPartSize+10, []byte("a header written last"))
	w.close("")
	got := r.waitFor(w.rec.ID, cache.Ready)
	if data, _ := cloud.Object(got.MediaID); !bytes.Equal(data, w.data) {
		t.Errorf("the object differs from the bytes written (%d bytes, want %d)", len(data), len(w.data))
	}
	if n := cloud.Calls("oss.part"); n != 5 {
		t.Errorf("%d parts sent, want 5 (four while written, the second again)", n)
	}
}

// TestAnAssetMadeWhileWrittenGoesWithARenameOrAFailedWrite: the asset made while a file was
// written has its first name; renamed before its close, it is deleted and the file uploaded
// under its new name. A file whose write failed is not uploaded, and its asset goes.
func TestAnAssetMadeWhileWrittenGoesWithARenameOrAFailedWrite(t *testing.T) {
	t.Run("renamed", func(t *testing.T) {
		cloud := fake.New()
		r := newRig(t, cloud, Config{PartSize: minPartSize, EarlyAfter: time.Millisecond})
		w := r.open("video/.partial.mp4.tmp")
		for range 3 {
			w.write(randomBytes(t, minPartSize))
		}
		w2 := r.open("video/draft.mp4")
		for range 3 {
			w2.write(randomBytes(t, minPartSize))
		}
		first := w2.waitStored(3)
		if first.MediaID == "" {
			t.Fatal("no asset while written")
		}
		if a, _ := r.store.GetID(w.rec.ID); a.MediaID != "" {
			t.Errorf("a temporary name got an asset while written: %s", a.MediaID)
		}
		if _, err := r.queue.Rename("video/draft.mp4", "video/final.mp4", func(cache.Record) cache.Event {
			return cache.Event{Kind: cache.Renamed, Type: "video", BusinessType: "general"}
		}); err != nil {
			t.Fatal(err)
		}
		rec, _ := r.queue.Apply(w2.rec.ID, cache.Event{Kind: cache.Closed, Size: int64(len(w2.data))})
		got := r.waitFor(rec.ID, cache.Ready)
		if got.MediaID == first.MediaID || r.asset(got.MediaID).Title != "final" {
			t.Errorf("after the rename: asset %s titled %q (the first was %s)", got.MediaID, r.asset(got.MediaID).Title, first.MediaID)
		}
		if data, _ := cloud.Object(got.MediaID); !bytes.Equal(data, w2.data) {
			t.Error("the object differs from the bytes written")
		}
		r.waitUntilAsset(first.MediaID, func(a fake.Asset) bool { return a.Deleted }, "deleted")
	})
	t.Run("a write failed", func(t *testing.T) {
		cloud := fake.New()
		r := newRig(t, cloud, Config{PartSize: minPartSize, EarlyAfter: time.Millisecond})
		w := r.open("video/short.mp4")
		for range 3 {
			w.write(randomBytes(t, minPartSize))
		}
		first := w.waitStored(3)
		rec := w.close("no space left on device")
		if rec.State != cache.Failed || rec.MediaID != "" {
			t.Errorf("closed after a failed write: %s, asset %q", rec.State, rec.MediaID)
		}
		r.waitUntilAsset(first.MediaID, func(a fake.Asset) bool { return a.Deleted }, "deleted")
	})
}

// TestTheLastPartsOfAFileWrittenInOrderGoAtItsClose: the parts left at the close (the last
// one, short) are sent by the upload while writing at once, while every worker of the queue is
// busy with another file.
func TestTheLastPartsOfAFileWrittenInOrderGoAtItsClose(t *testing.T) {
	cloud := fake.New()
	held := make(chan struct{})
	cloud.Block["oss.put"] = held // the small file's single PUT holds the only worker
	r := newRig(t, cloud, Config{PartSize: minPartSize, EarlyAfter: time.Millisecond, Workers: 1, SmallWorkers: 1})
	busy := r.open("video/busy.mp4")
	busy.write(randomBytes(t, 1000))
	r.queue.Apply(busy.rec.ID, cache.Event{Kind: cache.Closed, Size: 1000, Due: time.Now()})
	r.waitFor(busy.rec.ID, cache.Uploading)

	w := r.open("video/growing.mp4")
	for range 3 {
		w.write(randomBytes(t, minPartSize))
	}
	w.write(randomBytes(t, minPartSize/3))
	w.waitStored(3)
	w.close("")
	w.waitStored(4)
	if rec, _ := r.store.GetID(busy.rec.ID); rec.State != cache.Uploading {
		t.Fatalf("the worker's file is %s, want still uploading", rec.State)
	}
	close(held)
	got := r.waitFor(w.rec.ID, cache.Ready)
	if data, _ := cloud.Object(got.MediaID); !bytes.Equal(data, w.data) {
		t.Errorf("the object differs from the bytes written (%d bytes, want %d)", len(data), len(w.data))
	}
	if n := cloud.Calls("oss.part"); n != 4 {
		t.Errorf("%d parts sent, want 4", n)
	}
	r.waitFor(busy.rec.ID, cache.Ready)
}

// TestAFileWrittenQuicklyIsUploadedAfterItsClose: a writer done before EarlyAfter (cp at disk
// speed) gets no asset while it writes; its upload runs after the close, once.
func TestAFileWrittenQuicklyIsUploadedAfterItsClose(t *testing.T) {
	cloud := fake.New()
	r := newRig(t, cloud, Config{PartSize: minPartSize, EarlyAfter: time.Hour})
	w := r.open("video/quick.mp4")
	for range 5 {
		w.write(randomBytes(t, minPartSize))
	}
	time.Sleep(50 * time.Millisecond)
	if n := cloud.Calls("ims.create"); n != 0 {
		t.Fatalf("%d assets made while a quick writer wrote", n)
	}
	rec, err := r.queue.Apply(w.rec.ID, cache.Event{Kind: cache.Closed, Size: int64(len(w.data)), Due: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	got := r.waitFor(rec.ID, cache.Ready)
	if data, _ := cloud.Object(got.MediaID); !bytes.Equal(data, w.data) {
		t.Error("the object differs from the bytes written")
	}
	if c, p := cloud.Calls("ims.create"), cloud.Calls("oss.part"); c != 1 || p != 5 {
		t.Errorf("%d assets made and %d parts sent, want 1 and 5", c, p)
	}
}
