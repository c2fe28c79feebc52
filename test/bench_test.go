package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

// TestBench is `make bench`: the mount side by side with local disk and with a direct upload
// through the SDKs, in one run, printed as ratios. It measures and asserts nothing; it runs
// only when IMSFS_BENCH is set.
func TestBench(t *testing.T) {
	if os.Getenv("IMSFS_BENCH") == "" {
		t.Skip("set IMSFS_BENCH=1 (make bench) to measure")
	}
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	local := t.TempDir()
	big := randomFile(t, "big.mp4", 200<<20)
	var rows [][3]string
	row := func(what string, mount, base time.Duration, baseName string) {
		rows = append(rows, [3]string{what, fmt.Sprintf("%v vs %v (%s)", mount.Round(time.Millisecond), base.Round(time.Millisecond), baseName),
			fmt.Sprintf("%.2f×", float64(mount)/float64(base))})
	}

	// Saving 200 MiB: cp into the mount (each close fsyncs) against cp + sync on local disk.
	start := time.Now()
	run(t, "cp", big, filepath.Join(local, "big.mp4"))
	run(t, "sync", filepath.Join(local, "big.mp4"))
	localSave := time.Since(start)
	dst := filepath.Join(m.Dir, "video", "big.mp4")
	start = time.Now()
	run(t, "cp", big, dst)
	mountSave := time.Since(start)
	row("save 200 MiB (cp)", mountSave, localSave, "local cp+sync")

	// Saved to uploaded: from the start of cp to ready, against a direct upload of the same
	// file with the SDKs (CreateUploadMedia, then a multipart upload), after a local save.
	waitStatus(t, dst, "ready", 300*time.Second)
	mountReady := time.Since(start)
	start = time.Now()
	directUpload(t, emu, big)
	direct := time.Since(start)
	row("saved → uploaded, 200 MiB", mountReady, localSave+direct, "local save + SDK upload")

	// Reading it back (from the spool).
	start = time.Now()
	os.ReadFile(filepath.Join(local, "big.mp4"))
	localRead := time.Since(start)
	start = time.Now()
	os.ReadFile(dst)
	row("read 200 MiB", time.Since(start), localRead, "local read")

	// Many small files: 500 × 4 KiB, each written and closed, against local disk with an
	// fsync per file (what the mount does for each close).
	small := bytes.Repeat([]byte("s"), 4<<10)
	start = time.Now()
	for i := range 500 {
		f, _ := os.Create(filepath.Join(local, fmt.Sprintf("s%03d.mp4", i)))
		f.Write(small)
		f.Sync()
		f.Close()
	}
	localSmall := time.Since(start)
	os.Mkdir(filepath.Join(m.Dir, "video", "small"), 0o755)
	start = time.Now()
	for i := range 500 {
		os.WriteFile(filepath.Join(m.Dir, "video", "small", fmt.Sprintf("s%03d.mp4", i)), small, 0o644)
	}
	row("save 500 × 4 KiB", time.Since(start), localSmall, "local write+fsync")

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-28s %-58s %s\n", "", "imsfs vs baseline", "ratio")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-28s %-58s %s\n", r[0], r[1], r[2])
	}
	fmt.Print(b.String())
}

// directUpload uploads a file the way a program using the SDKs directly would.
func directUpload(t *testing.T, emu *emulatorProc, path string) {
	t.Helper()
	c, err := openapi.NewClient(&openapi.Config{AccessKeyId: dara.String("emulator"), AccessKeySecret: dara.String("emulator-secret"),
		Endpoint: dara.String(strings.TrimPrefix(emu.URL, "http://")), Protocol: dara.String("http")})
	if err != nil {
		t.Fatal(err)
	}
	params := &openapi.Params{Action: dara.String("CreateUploadMedia"), Version: dara.String("2020-11-09"), Protocol: dara.String("HTTP"),
		Pathname: dara.String("/"), Method: dara.String("POST"), AuthType: dara.String("AK"), Style: dara.String("RPC"),
		ReqBodyType: dara.String("formData"), BodyType: dara.String("json")}
	q := map[string]*string{"FileInfo": dara.String(`{"Type":"video","Name":"direct","Ext":"mp4"}`),
		"MediaMetaData": dara.String(`{"Title":"direct","BusinessType":"general"}`)}
	res, err := c.CallApi(params, &openapi.OpenApiRequest{Query: q}, &dara.RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body := res["body"].(map[string]any)
	var addr struct{ Endpoint, Bucket, FileName string }
	var auth struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
	a, _ := base64.StdEncoding.DecodeString(body["UploadAddress"].(string))
	u, _ := base64.StdEncoding.DecodeString(body["UploadAuth"].(string))
	json.Unmarshal(a, &addr)
	json.Unmarshal(u, &auth)
	client, err := oss.New(addr.Endpoint, auth.AccessKeyId, auth.AccessKeySecret, oss.SecurityToken(auth.SecurityToken))
	if err != nil {
		t.Fatal(err)
	}
	bucket, _ := client.Bucket(addr.Bucket)
	// The SDK's own parallel multipart upload, with the part size and parallelism imsfs uses.
	if err := bucket.UploadFile(addr.FileName, path, 8<<20, oss.Routines(4)); err != nil {
		t.Fatal(err)
	}
}
