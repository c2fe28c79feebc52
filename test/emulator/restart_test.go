package emulator_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"hash/crc64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/imsfs/imsfs/test/emulator"
)

// TestRestartMidMultipart stops the emulator with a multipart upload half done and starts it
// again on the same --data: the asset, the parts and the upload credentials are still there,
// and the upload finishes.
func TestRestartMidMultipart(t *testing.T) {
	opts := emulator.Options{DataDir: t.TempDir()}
	first := startEmulator(t, opts)
	u := ticket(t, first, nil)
	part := func(b byte) []byte { return bytes.Repeat([]byte{b}, 200<<10) }
	imur, err := u.Bucket.InitiateMultipartUpload(u.Key)
	if err != nil {
		t.Fatal(err)
	}
	var parts []oss.UploadPart
	for i, b := range []byte{'a', 'b'} {
		p, err := u.Bucket.UploadPart(imur, bytes.NewReader(part(b)), 200<<10, i+1)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := startOn(t, opts, strings.TrimPrefix(first.URL(), "http://"))
	if got := second.Assets(); len(got) != 1 || got[0].MediaId != u.MediaID || got[0].Status != "Preparing" {
		t.Fatalf("after the restart the assets are %+v, want %s Preparing", got, u.MediaID)
	}
	lp, err := u.Bucket.ListUploadedParts(imur)
	if err != nil {
		t.Fatalf("ListParts after the restart, with the same credentials: %v", err)
	}
	if len(lp.UploadedParts) != 2 || lp.UploadedParts[1].ETag != parts[1].ETag {
		t.Fatalf("after the restart the upload has parts %+v", lp.UploadedParts)
	}
	p3, err := u.Bucket.UploadPart(imur, bytes.NewReader([]byte("end")), 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Bucket.CompleteMultipartUpload(imur, append(parts, p3)); err != nil {
		t.Fatal(err)
	}
	whole := append(append(part('a'), part('b')...), "end"...)
	sum := md5.Sum(whole)
	a := second.Assets()[0]
	if a.Status != "Normal" || a.MD5 != hex.EncodeToString(sum[:]) || a.Size != int64(len(whole)) {
		t.Fatalf("the finished asset is %+v, want Normal with the MD5 of all three parts", a)
	}
	if st := second.Stats(); st.Multipart != 0 || st.BytesStored != int64(len(whole)) {
		t.Errorf("after completion: %d unfinished uploads, %d bytes stored", st.Multipart, st.BytesStored)
	}
}

// TestAnAnsweredCompleteIsFinishedAfterARestart: a Complete answers before its object is put
// together; an emulator stopped in between (its upload's folder holds the parts and the
// answer given) assembles the object when it starts again, and the upload is over.
func TestAnAnsweredCompleteIsFinishedAfterARestart(t *testing.T) {
	opts := emulator.Options{DataDir: t.TempDir()}
	first := startEmulator(t, opts)
	u := ticket(t, first, nil)
	imur, err := u.Bucket.InitiateMultipartUpload(u.Key)
	if err != nil {
		t.Fatal(err)
	}
	var whole []byte
	etags := md5.New()
	for i, b := range []byte{'a', 'b'} {
		data := bytes.Repeat([]byte{b}, 200<<10)
		p, err := u.Bucket.UploadPart(imur, bytes.NewReader(data), int64(len(data)), i+1)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := hex.DecodeString(strings.Trim(p.ETag, `"`))
		etags.Write(raw)
		whole = append(whole, data...)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// What a Complete leaves before the object is assembled (assemble.go's completion).
	answered := map[string]any{"Bucket": u.Bucket.BucketName, "Key": u.Key, "Parts": []int{1, 2}, "Size": len(whole),
		"CRC64": crc64.Checksum(whole, crc64.MakeTable(crc64.ECMA)), "ETag": `"` + strings.ToUpper(hex.EncodeToString(etags.Sum(nil))) + `-2"`}
	data, _ := json.Marshal(answered)
	if err := os.WriteFile(filepath.Join(opts.DataDir, "multipart", imur.UploadID, "complete.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	second := startOn(t, opts, strings.TrimPrefix(first.URL(), "http://"))
	if got := read(t, u.Bucket, u.Key); !bytes.Equal(got, whole) {
		t.Fatalf("the object after the restart is %d bytes, want the %d of both parts", len(got), len(whole))
	}
	if _, err := u.Bucket.ListUploadedParts(imur); err == nil || !strings.Contains(err.Error(), "NoSuchUpload") {
		t.Errorf("ListParts of the completed upload after the restart: %v, want NoSuchUpload", err)
	}
	if st := second.Stats(); st.Multipart != 0 || st.BytesStored != int64(len(whole)) {
		t.Errorf("after the restart: %d unfinished uploads, %d bytes stored", st.Multipart, st.BytesStored)
	}
}

// TestAnOldAssetListIsKept: a data dir from before assets were one file each keeps them.
func TestAnOldAssetListIsKept(t *testing.T) {
	dir := t.TempDir()
	old := `[{"MediaId":"0123456789abcdef0123456789abcdef","Status":"Normal","Title":"old","Type":"video","MediaType":"video",
		"BusinessType":"general","AppId":"app-1000000","FileName":"old.mp4","Bucket":"outin-emulator","Key":"sv/old.mp4"}]`
	if err := os.WriteFile(filepath.Join(dir, "assets.json"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startEmulator(t, emulator.Options{DataDir: dir})
	if got := s.Assets(); len(got) != 1 || got[0].Title != "old" {
		t.Fatalf("assets after the migration: %+v", got)
	}
}
