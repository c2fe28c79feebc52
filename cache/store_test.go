package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func mustOpen(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Admission: testAdmission{}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustApply applies events to record id in order and returns the record after the last.
func mustApply(t testing.TB, s *Store, id uint64, evs ...Event) (Record, Effects) {
	t.Helper()
	var rec Record
	var fx Effects
	for _, ev := range evs {
		var err error
		if rec, fx, err = s.Apply(id, ev); err != nil {
			t.Fatalf("Apply %s: %v", ev.Kind, err)
		}
	}
	return rec, fx
}

// mustCreate makes a record at path and takes it to state by the events a file meets on the way.
func mustCreate(t testing.TB, s *Store, path string, state State) Record {
	t.Helper()
	rec, err := s.Create(path, func(r *Record) { r.Type, r.BusinessType = "video", "general" })
	if err != nil {
		t.Fatalf("Create %s: %v", path, err)
	}
	asset := &Asset{MediaID: "m-" + path, Upload: Upload{Endpoint: "http://oss", Bucket: "b", Key: "k-" + path}}
	way := map[State][]Event{
		Queued:    {{Kind: Closed}},
		Creating:  {{Kind: Closed}, {Kind: Dispatched}},
		Uploading: {{Kind: Closed}, {Kind: Dispatched}, {Kind: AssetCreated, Asset: asset}, {Kind: MultipartStarted, Multipart: "U-" + path, PartSize: 1 << 20}},
		Uploaded:  {{Kind: Closed}, {Kind: Dispatched}, {Kind: AssetCreated, Asset: asset}, {Kind: ObjectCompleted}},
		Ready:     {{Kind: Closed}, {Kind: Dispatched}, {Kind: AssetCreated, Asset: asset}, {Kind: ObjectCompleted}, {Kind: AssetReady}},
		Failed:    {{Kind: Closed}, {Kind: Dispatched}, {Kind: UploadFailed, Reason: "refused"}},
	}
	if state == Writing {
		return rec
	}
	rec, _ = mustApply(t, s, rec.ID, way[state]...)
	if rec.State != state {
		t.Fatalf("%s is %s, want %s", path, rec.State, state)
	}
	return rec
}

func TestRecordRoundTripSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	mtime := time.Date(2026, 11, 27, 1, 2, 3, 4, time.UTC)
	rec, err := s.Create("video/clip.mp4", func(r *Record) {
		r.Type, r.BusinessType, r.Mode, r.Mtime = "video", "general", 0o644, mtime
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if rec.State != Writing || rec.Gen != 1 {
		t.Fatalf("a new record is %s at generation %d", rec.State, rec.Gen)
	}
	want, _ := mustApply(t, s, rec.ID,
		Event{Kind: Closed, Size: 3 << 20, Mode: 0o644, Mtime: mtime},
		Event{Kind: Dispatched},
		Event{Kind: AssetCreated, Asset: &Asset{MediaID: "m-1", Upload: Upload{Endpoint: "http://oss", Bucket: "b", Key: "k", Region: "cn-shanghai"}}},
	)
	s.Close()

	s2 := mustOpen(t, dir)
	got, err := s2.GetID(rec.ID)
	if err != nil {
		t.Fatalf("GetID after reopen: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen got %+v, want %+v", got, want)
	}
	byPath, err := s2.Get("video/clip.mp4")
	if err != nil || byPath.ID != rec.ID {
		t.Fatalf("Get by path: %+v, %v", byPath, err)
	}
	if err := s2.SetAttr(rec.ID, 0o600, mtime.Add(time.Hour), mtime.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.GetID(rec.ID); got.Mode != 0o600 || !got.Mtime.Equal(mtime.Add(time.Hour)) || !got.Atime.Equal(mtime.Add(2*time.Hour)) || got.State != Uploading {
		t.Errorf("SetAttr: %+v", got)
	}
}

func TestARefusedEventChangesNothing(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	rec := mustCreate(t, s, "video/a.mp4", Writing)
	if _, _, err := s.Apply(rec.ID, Event{Kind: ObjectCompleted}); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("writing → uploaded: got %v, want ErrBadTransition", err)
	}
	if got, _ := s.GetID(rec.ID); !reflect.DeepEqual(got, rec) {
		t.Errorf("a refused event changed the record: %+v, was %+v", got, rec)
	}
	if _, _, err := s.Apply(12345, Event{Kind: Closed}); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown record: %v", err)
	}
}

func TestAnAssetMadeForOlderBytesIsDisposedOf(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	rec := mustCreate(t, s, "video/a.mp4", Creating)
	mustApply(t, s, rec.ID, Event{Kind: Wrote})
	_, _, err := s.Apply(rec.ID, Event{Kind: AssetCreated, Gen: rec.Gen, Asset: &Asset{MediaID: "late", Upload: Upload{Key: "k"}}})
	if !errors.Is(err, ErrSuperseded) {
		t.Fatalf("got %v, want ErrSuperseded", err)
	}
	ds, _ := s.Disposals()
	if len(ds) != 2 || ds[0].Lost == nil || ds[0].Lost.Record != rec.ID || ds[0].Lost.Gen != rec.Gen || ds[1].MediaID != "late" || ds[1].Why != Voided {
		t.Errorf("disposals %+v, want the asset asked for looked for by its tag, then the late asset voided", ds)
	}
	// And for a file that is gone.
	mustApply(t, s, rec.ID, Event{Kind: Unlinked})
	_, fx, err := s.Apply(rec.ID, Event{Kind: AssetCreated, Gen: rec.Gen, Asset: &Asset{MediaID: "later", Upload: Upload{Key: "k"}}})
	if !errors.Is(err, ErrNotFound) || fx.Disposal == 0 {
		t.Fatalf("got %v %+v, want ErrNotFound and a disposal", err, fx)
	}
	if d, err := s.GetDisposal(fx.Disposal); err != nil || d.MediaID != "later" {
		t.Errorf("the disposal of an asset for a file that is gone: %+v %v", d, err)
	}
}

// TestANameThatIsNotUTF8ComesBackByteForByte: a file name may be any bytes; JSON would change
// them, so the path is the key's.
func TestANameThatIsNotUTF8ComesBackByteForByte(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	bad := "video/bad\xff\xfename.mp4"
	if err := s.PutDir(Dir{Path: "video/\xfe"}); err != nil {
		t.Fatal(err)
	}
	rec := mustCreate(t, s, bad, Queued)
	s.Close()
	s = mustOpen(t, dir)
	if got, err := s.GetID(rec.ID); err != nil || got.Path != bad {
		t.Errorf("GetID: %q %v", got.Path, err)
	}
	if got, err := s.Get(bad); err != nil || got.ID != rec.ID {
		t.Errorf("Get: %+v %v", got, err)
	}
	files, _ := s.Files()
	unfinished, _ := s.Unfinished()
	dirs, _ := s.Dirs()
	if len(files) != 1 || files[0].Path != bad || len(unfinished) != 1 || unfinished[0].Path != bad || len(dirs) != 1 || dirs[0].Path != "video/\xfe" {
		t.Errorf("files %q, unfinished %q, dirs %q", files[0].Path, unfinished[0].Path, dirs[0].Path)
	}
}

func TestCreateRefusesAPathInUse(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	if _, err := s.Create("video/a.mp4", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("video/a.mp4", nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
}

func TestRenameMovesAFolderWithEverythingBelowAndReplacesTheTarget(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	for _, p := range []string{"video/a", "video/a/b"} {
		if err := s.PutDir(Dir{Path: p, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	x := mustCreate(t, s, "video/a/x.mp4", Writing)
	y := mustCreate(t, s, "video/a/b/y.mp4", Ready)
	keep := mustCreate(t, s, "video/ab.mp4", Queued) // shares the prefix "video/a", not the folder
	res, err := s.Rename("video/a", "video/c", func(r Record) Event {
		return Event{Kind: Renamed, Type: "video", BusinessType: "opening", Due: t1}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced != nil || len(res.Moved) != 2 {
		t.Fatalf("rename: %+v", res)
	}
	for _, id := range []uint64{x.ID, y.ID} {
		r, err := s.GetID(id)
		if err != nil || r.BusinessType != "opening" || r.Path[:8] != "video/c/" {
			t.Errorf("moved record %d: %+v %v", id, r, err)
		}
	}
	if r, _ := s.GetID(y.ID); !r.MetaPending || r.MediaID != y.MediaID {
		t.Errorf("a ready file keeps its asset and is retitled: %+v", r)
	}
	if r, _ := s.GetID(keep.ID); r.Path != "video/ab.mp4" {
		t.Errorf("video/ab.mp4 moved: %+v", r)
	}
	dirs, _ := s.Dirs()
	if len(dirs) != 2 || dirs[0].Path != "video/c" || dirs[1].Path != "video/c/b" {
		t.Errorf("dirs after rename: %+v", dirs)
	}
	// A file renamed over another replaces it; the replaced asset waits for its successor.
	res, err = s.Rename("video/c/x.mp4", "video/ab.mp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced == nil || res.Replaced.Record.ID != keep.ID || !res.Replaced.Effects.Removed || len(res.Moved) != 1 {
		t.Fatalf("rename over a file: %+v", res)
	}
	if _, err := s.GetID(keep.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the replaced record is still there: %v", err)
	}
	if r, err := s.Get("video/ab.mp4"); err != nil || r.ID != x.ID {
		t.Errorf("video/ab.mp4 is %+v, %v; want record %d", r, err, x.ID)
	}
}

func TestTheCacheDirectoryIsTheOwnersAlone(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir)
	for _, d := range []string{dir, s.SpoolDir()} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want mode 0700", d, st.Mode(), err)
		}
	}
}

func TestASecondOpenIsRefusedNotBlocked(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
}

func TestChangesLeaveDisposals(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	uploading := mustCreate(t, s, "video/a.mp4", Uploading)
	uploaded := mustCreate(t, s, "video/b.mp4", Uploaded)
	gone := mustCreate(t, s, "video/c.mp4", Ready)
	over := mustCreate(t, s, "video/d.mp4", Ready)
	src := mustCreate(t, s, "video/e.mp4", Queued)
	plain := mustCreate(t, s, "video/f.mp4", Queued)

	_, fx := mustApply(t, s, uploading.ID, Event{Kind: Wrote})
	if !fx.Cancel || fx.Disposal == 0 {
		t.Errorf("a new session on an upload under way: %+v", fx)
	}
	mustApply(t, s, uploaded.ID, Event{Kind: Wrote})
	mustApply(t, s, gone.ID, Event{Kind: Unlinked})
	if _, err := s.Rename(src.Path, over.Path, nil); err != nil {
		t.Fatal(err)
	}
	_, fx = mustApply(t, s, plain.ID, Event{Kind: Unlinked})
	if fx.Disposal != 0 || !fx.Removed {
		t.Errorf("unlinking a file with no asset: %+v", fx)
	}
	ds, err := s.Disposals()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		media     string
		why       Why
		after     uint64
		multipart string
	}{
		{uploading.MediaID, Voided, 0, "U-video/a.mp4"},
		{uploaded.MediaID, Overwritten, uploaded.ID, ""},
		{gone.MediaID, Deleted, 0, ""},
		{over.MediaID, Overwritten, src.ID, ""},
	}
	if len(ds) != len(want) {
		t.Fatalf("disposals %+v, want %d", ds, len(want))
	}
	for i, w := range want {
		d := ds[i]
		mp := ""
		if d.Upload != nil {
			mp = d.Upload.MultipartID
		}
		if d.MediaID != w.media || d.Why != w.why || d.After != w.after || mp != w.multipart {
			t.Errorf("disposal %d: %+v, want %+v", i, d, w)
		}
	}
	if _, err := s.ApplyDisposal(ds[0].Seq, DisposalEvent{Kind: Disposed}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.ApplyDisposal(ds[1].Seq, DisposalEvent{Kind: DisposeFailed, Reason: "503", Due: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := s.GetDisposal(ds[1].Seq); err != nil || d.Attempts != 2 || d.Error != "503" {
		t.Errorf("GetDisposal after two failures: %+v %v", d, err)
	}
	if after, _ := s.Disposals(); len(after) != 3 || after[0].Attempts != 2 {
		t.Errorf("after Done and Update: %+v", after)
	}
	if _, err := s.GetDisposal(ds[0].Seq); !errors.Is(err, ErrNotFound) {
		t.Errorf("a done disposal: %v", err)
	}
	if _, err := s.ApplyDisposal(ds[0].Seq, DisposalEvent{Kind: DisposeFailed}); !errors.Is(err, ErrNotFound) {
		t.Errorf("updating a done disposal: %v", err)
	}
	if _, err := s.AddDisposal(Disposal{Path: "video/x.mp4", Why: Voided, MediaID: "extra"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Disposals(); len(after) != 4 || after[3].MediaID != "extra" {
		t.Errorf("after AddDisposal: %+v", after)
	}
}

func TestPartsAreKeptApartAndDroppedWithTheirUpload(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	rec := mustCreate(t, s, "video/a.mp4", Uploading)
	for n := 3; n >= 1; n-- {
		mustApply(t, s, rec.ID, Event{Kind: PartStored, Gen: rec.Gen, Multipart: rec.Upload.MultipartID, Part: Part{Number: n, ETag: fmt.Sprint("e", n), Size: 10}})
	}
	if got, _ := s.GetID(rec.ID); !reflect.DeepEqual(got, rec) {
		t.Errorf("a part rewrote the record: %+v", got)
	}
	parts, err := s.Parts(rec.ID, rec.Gen)
	if err != nil || len(parts) != 3 || parts[0].Number != 1 || parts[2].ETag != "e3" {
		t.Fatalf("parts: %+v %v", parts, err)
	}
	if _, _, err := s.Apply(rec.ID, Event{Kind: PartStored, Multipart: "other", Part: Part{Number: 4}}); !errors.Is(err, ErrSuperseded) {
		t.Errorf("a part of another multipart upload: %v", err)
	}
	// A new multipart upload (the old one was found gone) starts without parts.
	mustApply(t, s, rec.ID, Event{Kind: MultipartStarted, Multipart: "U2", PartSize: 1 << 20})
	if parts, _ := s.Parts(rec.ID, rec.Gen); len(parts) != 0 {
		t.Errorf("parts of a multipart upload that is gone: %+v", parts)
	}
	mustApply(t, s, rec.ID, Event{Kind: PartStored, Multipart: "U2", Part: Part{Number: 1, ETag: "x", Size: 10}})
	mustApply(t, s, rec.ID, Event{Kind: ObjectCompleted, Size: 10})
	if parts, _ := s.Parts(rec.ID, rec.Gen); len(parts) != 0 {
		t.Errorf("parts after the object is complete: %+v", parts)
	}
}

func TestTheUnfinishedIndexFollowsTheState(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	ready := mustCreate(t, s, "video/ready.mp4", Ready)
	queued := mustCreate(t, s, "video/queued.mp4", Queued)
	skipped := mustCreate(t, s, "video/noext", Writing)
	mustApply(t, s, skipped.ID, Event{Kind: Closed})
	paths := func() []string {
		t.Helper()
		recs, err := s.Unfinished()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.Path)
		}
		return out
	}
	if got := paths(); !reflect.DeepEqual(got, []string{"video/queued.mp4", "video/noext"}) {
		t.Errorf("unfinished: %v", got)
	}
	// A retitle makes a ready file unfinished until it is done.
	if _, err := s.Rename(ready.Path, "video/ready2.mp4", nil); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, queued.ID, Event{Kind: Unlinked})
	if got := paths(); !reflect.DeepEqual(got, []string{"video/ready2.mp4", "video/noext"}) {
		t.Errorf("unfinished after a retitle and an unlink: %v", got)
	}
	mustApply(t, s, ready.ID, Event{Kind: MetaUpdated})
	if got := paths(); !reflect.DeepEqual(got, []string{"video/noext"}) {
		t.Errorf("unfinished after the retitle: %v", got)
	}
}

// TestALayout1StoreIsMovedOn opens a store written by the first layout (parts and upload
// credentials inside each record) and finds its parts moved out and its credentials gone.
func TestALayout1StoreIsMovedOn(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "spool"), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "imsfs.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := `{"id":1,"path":"video/a.mp4","state":"uploading","gen":2,"size":20,"type":"video","media_id":"m1",` +
		`"upload":{"endpoint":"http://oss","bucket":"b","key":"k","access_key_id":"STS.id","access_key_secret":"SECRET-1",` +
		`"security_token":"TOKEN-1","multipart_id":"U","part_size":10,"parts":[{"n":1,"etag":"e1","size":10}]}}`
	disposal := `{"seq":1,"path":"video/b.mp4","why":"voided","media_id":"m0","upload":{"bucket":"b","key":"k0","access_key_secret":"SECRET-2","multipart_id":"U0"}}`
	err = db.Update(func(tx *bolt.Tx) error {
		f, _ := tx.CreateBucket(bucketFiles)
		ids, _ := tx.CreateBucket(bucketIDs)
		ds, _ := tx.CreateBucket(bucketDisposals)
		f.Put([]byte("video/a.mp4"), []byte(old))
		ids.Put(idKey(1), []byte("video/a.mp4"))
		return ds.Put(seqKey(1), []byte(disposal))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir)
	parts, err := s.Parts(1, 2)
	if err != nil || len(parts) != 1 || parts[0].ETag != "e1" {
		t.Errorf("parts moved: %+v %v", parts, err)
	}
	recs, err := s.Unfinished()
	if err != nil || len(recs) != 1 || recs[0].Upload.MultipartID != "U" {
		t.Errorf("the index: %+v %v", recs, err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFiles, bucketDisposals} {
			if err := tx.Bucket(b).ForEach(func(k, v []byte) error {
				if bytes.Contains(v, []byte("SECRET")) || bytes.Contains(v, []byte("TOKEN")) || bytes.Contains(v, []byte("parts")) {
					return fmt.Errorf("%s %s still holds %s", b, k, v)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if v, _ := s.Meta("schema"); v != schemaVersion {
		t.Errorf("schema %q", v)
	}
}

func TestUpdateDisposalsAndMeta(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	if err := s.SetMeta("config", "abc"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Meta("config"); err != nil || v != "abc" {
		t.Errorf("meta: %q %v", v, err)
	}
	if s.Instance() == "" || s.Dir() == "" || filepath.Dir(s.SpoolPath(1)) != s.SpoolDir() {
		t.Errorf("instance %q dir %q spool %q", s.Instance(), s.Dir(), s.SpoolPath(1))
	}
	if err := s.PutDir(Dir{Path: "video/x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDir("video/x"); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Dirs(); len(ds) != 0 {
		t.Errorf("dirs after delete: %+v", ds)
	}
	mustCreate(t, s, "video/a.mp4", Queued)
	files, err := s.Files()
	if err != nil || len(files) != 1 {
		t.Errorf("files: %+v %v", files, err)
	}
	raw, _ := json.Marshal(files[0])
	if bytes.Contains(raw, []byte("secret")) {
		t.Errorf("a record holds a secret: %s", raw)
	}
}

// BenchmarkPartCommit commits one part of a multipart upload that already has n parts: the cost
// must not grow with n (the record is not rewritten, and parts have a bucket of their own).
func BenchmarkPartCommit(b *testing.B) {
	for _, n := range []int{0, 1000, 9999} {
		b.Run(fmt.Sprintf("after_%d_parts", n), func(b *testing.B) {
			s := mustOpen(b, b.TempDir())
			rec := mustCreate(b, s, "video/big.mp4", Uploading)
			err := s.db.Update(func(tx *bolt.Tx) error {
				for i := 1; i <= n; i++ {
					if err := putPart(tx, rec.ID, rec.Gen, Part{Number: i, ETag: "0123456789ABCDEF0123456789ABCDEF", Size: 8 << 20}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := s.Apply(rec.ID, Event{Kind: PartStored, Gen: rec.Gen, Multipart: rec.Upload.MultipartID,
					Part: Part{Number: n + 1 + i%100, ETag: "0123456789ABCDEF0123456789ABCDEF", Size: 8 << 20}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSyncMakesBytesDurableBeforeTheirRecords: the spools written since the last Sync, then the
// spool folder when a spool is new, then the store; nothing twice; a failure is tried again.
func TestSyncMakesBytesDurableBeforeTheirRecords(t *testing.T) {
	var synced []string
	fail := false
	s, err := Open(t.TempDir(), Options{SyncEvery: time.Hour, SyncFile: func(name string) error {
		if fail {
			return errors.New("EIO")
		}
		if _, err := os.Stat(name); err != nil {
			return err
		}
		synced = append(synced, filepath.Base(name))
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := mustCreate(t, s, "video/a.mp4", Writing)
	os.WriteFile(s.SpoolPath(a.ID), []byte("a"), 0o600)
	s.Written(a.ID, true, 1)
	fail = true
	if err := s.Sync(); err == nil {
		t.Fatal("a failed fsync was not said")
	}
	fail = false
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Base(s.SpoolPath(a.ID)), "spool"}; !reflect.DeepEqual(synced, want) {
		t.Errorf("synced %v, want %v (tried again after the failure)", synced, want)
	}
	synced = nil
	s.Written(99, false, 1) // unlinked since: nothing to sync, no error
	if err := s.Sync(); err != nil || len(synced) != 0 {
		t.Errorf("a spool that is gone: %v, synced %v", err, synced)
	}
	s.NewName()
	s.Sync()
	if !reflect.DeepEqual(synced, []string{"spool"}) {
		t.Errorf("a new name synced %v", synced)
	}
}

// TestConcurrentSyncsShareARun: callers that come while a Sync runs are served by the one run
// that begins after them, not by a run each (each worker syncs before CreateUploadMedia).
func TestConcurrentSyncsShareARun(t *testing.T) {
	slow := make(chan struct{})
	var calls atomic.Int64
	s, err := Open(t.TempDir(), Options{SyncEvery: time.Hour, SyncFile: func(string) error {
		if calls.Add(1) == 1 {
			<-slow // the first run is held until every caller has come
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Written(1, false, 1)
	first := make(chan error)
	go func() { first <- s.Sync() }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		s.Written(uint64(i+2), false, 1) // written while the first run goes on
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Sync(); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // all eight wait for the first run
	close(slow)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if runs := s.dur.started; runs != 2 {
		t.Errorf("%d runs for 9 concurrent Syncs, want 2 (the first, and one for all that came during it)", runs)
	}
	if n := calls.Load(); n != 9 {
		t.Errorf("%d spools synced, want 9", n)
	}
}

// TestCommitsCountsTransactions: a commit each for calls of their own, one for the calls a
// Batch groups, none for a refusal (rolled back).
func TestCommitsCountsTransactions(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	base := s.Commits()
	rec := mustCreate(t, s, "video/a.mp4", Writing)
	if err := s.SetAttr(rec.ID, 0o644, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Apply(rec.ID, Event{Kind: AssetReady}); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("AssetReady on a file being written: %v, want ErrBadTransition", err)
	}
	if got := s.Commits() - base; got != 2 {
		t.Fatalf("after a create, a setattr and a refused event: %d commits, want 2", got)
	}

	// 100 callers at once: bbolt's Batch puts them in fewer transactions than calls.
	base = s.Commits()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(fmt.Appendf(nil, "k%d", i), []byte("v")) })
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := s.Commits() - base; got < 1 || got >= 100 {
		t.Fatalf("100 grouped calls: %d commits, want between 1 and 99", got)
	}
}

// TestApplyEachCommitsTogetherAndRefusesAlone: what one answer of IMS says of several files
// is one commit; an event refused for one file (it changed since, or is gone) leaves the others
// applied, and itself changes nothing.
func TestApplyEachCommitsTogetherAndRefusesAlone(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	a := mustCreate(t, s, "video/a.mp4", Uploaded)
	b := mustCreate(t, s, "video/b.mp4", Uploaded)
	c := mustCreate(t, s, "video/c.mp4", Uploaded)
	w := mustCreate(t, s, "video/w.mp4", Writing)
	base := s.Commits()
	got, err := s.ApplyEach([]Report{
		{a.ID, Event{Kind: AssetReady, Gen: a.Gen}},
		{b.ID, Event{Kind: AssetReady, Gen: b.Gen + 1}}, // for older bytes
		{w.ID, Event{Kind: AssetReady}},                 // not uploaded
		{9999, Event{Kind: AssetReady}},                 // gone
		{c.ID, Event{Kind: UploadFailed, Gen: c.Gen, Reason: "PrepareFail"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Commits() - base; n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
	for i, want := range []error{nil, ErrSuperseded, ErrBadTransition, ErrNotFound, nil} {
		if !errors.Is(got[i].Err, want) || want == nil && got[i].Err != nil {
			t.Errorf("report %d: %v, want %v", i, got[i].Err, want)
		}
	}
	if got[0].Record.State != Ready || got[4].Record.State != Failed {
		t.Errorf("returned records: %s and %s, want ready and failed", got[0].Record.State, got[4].Record.State)
	}
	s.Close()
	s = mustOpen(t, dir)
	for path, want := range map[string]State{"video/a.mp4": Ready, "video/b.mp4": Uploaded, "video/w.mp4": Writing, "video/c.mp4": Failed} {
		if r, err := s.Get(path); err != nil || r.State != want {
			t.Errorf("%s after a reopen: %s %v, want %s", path, r.State, err, want)
		}
	}
}
