package test

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/test/emulator"
	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/imsrules"
	"github.com/imsfs/imsfs/uploader/transfer"
)

type queueRig struct {
	store *cache.Store
	emu   *emulator.Server
	queue *uploader.Queue
}

// newRig starts an emulator on loopback and a queue that talks to it through the real clients,
// signing with the emulator's key pair, or with clientSecret if it is set.
func newQueueRig(t *testing.T, emuOpts emulator.Options, cfg uploader.Config, clientSecret string) *queueRig {
	t.Helper()
	emuOpts.DataDir = t.TempDir()
	emu, err := emulator.New(emuOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	id, secret := emu.AccessKey()
	if clientSecret != "" {
		secret = clientSecret
	}
	typ := "access_key"
	cred, err := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ims.New(emu.URL(), "cn-shanghai", cred)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := imsrules.NewAdmitter(imsrules.DefaultTempNames)
	store, err := cache.Open(t.TempDir(), cache.Options{Admission: names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg.Store, cfg.IMS, cfg.Objects, cfg.Names = store, client, transfer.New(time.Minute), names
	if testing.Verbose() {
		cfg.Log = slog.Default()
	} else {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	q := uploader.New(cfg)
	if err := q.Recover(); err != nil {
		t.Fatal(err)
	}
	q.Run()
	t.Cleanup(func() { q.Close(t.Context()) })
	return &queueRig{store: store, emu: emu, queue: q}
}

// add spools data under path as a closed file and queues it, as the file system does.
func (r *queueRig) add(t *testing.T, path, typ, biz string, data []byte) cache.Record {
	t.Helper()
	rec, err := r.store.Create(path, func(rec *cache.Record) { rec.Type, rec.BusinessType = typ, biz })
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.store.SpoolPath(rec.ID), data, 0o600); err != nil {
		t.Fatal(err)
	}
	rec, err = r.queue.Apply(rec.ID, cache.Event{Kind: cache.Closed, Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (r *queueRig) waitFor(t *testing.T, id uint64, want cache.State) cache.Record {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rec, err := r.store.GetID(id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.State == want {
			return rec
		}
		if rec.State == cache.Failed && want != cache.Failed || time.Now().After(deadline) {
			t.Fatalf("%s: state %s (error %q), want %s", rec.Path, rec.State, rec.Error, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUploadSinglePutAndMultipartReachReady(t *testing.T) {
	r := newQueueRig(t, emulator.Options{}, uploader.Config{PartSize: 1 << 20}, "")
	files := map[string][]byte{
		"video/small.mp4":       randomBytes(t, 300<<10),     // one PUT
		"image/cover/big.png":   randomBytes(t, 5<<20+12345), // six parts, the last short
		"video/exact-parts.mov": randomBytes(t, 2<<20),       // two full parts
		"other/one-byte.bin":    {7},                         // the least an asset holds
	}
	recs := map[string]cache.Record{}
	for p, data := range files {
		typ, biz := "video", "general"
		switch {
		case strings.HasPrefix(p, "image"):
			typ, biz = "image", "cover"
		case strings.HasPrefix(p, "other"):
			typ = "other"
		}
		recs[p] = r.add(t, p, typ, biz, data)
	}
	assets := map[string]emulator.Asset{}
	for p := range files {
		rec := r.waitFor(t, recs[p].ID, cache.Ready)
		if rec.MediaID == "" || rec.FileURL == "" {
			t.Errorf("%s: ready without MediaId or FileURL: %+v", p, rec)
		}
		recs[p] = rec
	}
	for _, a := range r.emu.Assets() {
		assets[a.MediaId] = a
	}
	if len(assets) != len(files) {
		t.Fatalf("emulator holds %d assets, want %d", len(assets), len(files))
	}
	for p, data := range files {
		a := assets[recs[p].MediaID]
		sum := md5.Sum(data)
		if a.MD5 != hex.EncodeToString(sum[:]) || a.Size != int64(len(data)) || a.Status != "Normal" {
			t.Errorf("%s: asset %+v, want MD5 %x size %d Normal", p, a, sum, len(data))
		}
		if a.Type != recs[p].Type || a.BusinessType != recs[p].BusinessType {
			t.Errorf("%s: asset type %s/%s, want %s/%s", p, a.Type, a.BusinessType, recs[p].Type, recs[p].BusinessType)
		}
	}
}

func TestARefusedParameterEndsFailedWithTheServersWords(t *testing.T) {
	r := newQueueRig(t, emulator.Options{}, uploader.Config{}, "")
	// "cover" is an image business type: IMS refuses it for a video.
	rec := r.add(t, "video/clip.mp4", "video", "cover", []byte("x"))
	r.waitFor(t, rec.ID, cache.Failed)
	got, _ := r.store.GetID(rec.ID)
	if !strings.Contains(got.Error, "InvalidParameter") || !strings.Contains(got.Error, "BusinessType") {
		t.Fatalf("error %q does not carry the server's code and message", got.Error)
	}
}

func TestAWrongSecretIsRefusedAndSaidSo(t *testing.T) {
	// The emulator accepts one key pair; the mount's key is refused, and the file says why.
	r := newQueueRig(t, emulator.Options{}, uploader.Config{}, "not-the-emulators-secret")
	rec := r.add(t, "video/clip.mp4", "video", "general", []byte("x"))
	got := r.waitFor(t, rec.ID, cache.Failed)
	if !strings.Contains(got.Error, "SignatureDoesNotMatch") {
		t.Fatalf("error %q does not say the signature was refused", got.Error)
	}
	if n := len(r.emu.Assets()); n != 0 {
		t.Fatalf("a request signed with the wrong secret created %d assets", n)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
