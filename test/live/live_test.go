//go:build live

// Package live runs the end-to-end subset that makes sense against the real IMS and OSS: a
// small video, an image and a subtitle saved into a mount; a rename, an overwrite, a delete with
// --on-delete delete; each asset checked through GetMediaInfo and a download of its signed
// FileUrl. It deletes every asset it made. `make test-live` runs it; it is not part of `make test`.
//
// It reads ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and IMSFS_LIVE_REGION.
// IMSFS_LIVE_ENDPOINT, when set, points it elsewhere (an `imsfs emulator`, to try the test).
package live

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/uploader/ims"
)

// live is one run against the service: the mount, and the assets it made (deleted at the end).
type live struct {
	t        *testing.T
	bin      string
	mnt      string
	cache    string
	args     []string // the mount's flags besides the test's own
	client   *ims.Client
	mount    *exec.Cmd
	mu       sync.Mutex
	made     map[string]bool // MediaIds to delete at the end
	log      string
	endpoint string
	region   string
}

func setUp(t *testing.T, args ...string) *live {
	region := os.Getenv("IMSFS_LIVE_REGION")
	if os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID") == "" || os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET") == "" || region == "" {
		t.Skip("set ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and IMSFS_LIVE_REGION")
	}
	os.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	l := &live{t: t, made: map[string]bool{}, region: region, endpoint: os.Getenv("IMSFS_LIVE_ENDPOINT")}
	if l.endpoint == "" {
		l.endpoint = ims.DefaultEndpoint(region)
	}
	dir := t.TempDir()
	l.bin = filepath.Join(dir, "imsfs")
	build := exec.Command("go", "build", "-o", l.bin, "../../cmd/imsfs")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cred, err := credentials.NewCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.client, err = ims.New(l.endpoint, region, cred); err != nil {
		t.Fatal(err)
	}
	l.mnt = filepath.Join(dir, "mnt")
	os.Mkdir(l.mnt, 0o755)
	l.log = filepath.Join(dir, "mount.log")
	l.cache, l.args = filepath.Join(dir, "cache"), args
	l.start()
	t.Cleanup(l.tearDown)
	return l
}

// start mounts (again, after kill: on the same cache) and waits until the mount answers.
func (l *live) start() {
	l.t.Helper()
	logf, _ := os.OpenFile(l.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	args := append([]string{"mount", "--endpoint", l.endpoint, "--region", l.region, "--cache-dir", l.cache,
		"--upload-delay", "0", "--on-delete", "delete"}, l.args...)
	l.mount = exec.Command(l.bin, append(args, l.mnt)...)
	l.mount.Stdout, l.mount.Stderr = logf, logf
	if err := l.mount.Start(); err != nil {
		l.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(l.mnt, "video")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(l.log)
			l.t.Fatalf("the mount did not come up:\n%s", data)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill kills the mount as a crash would, and clears what it left.
func (l *live) kill() {
	l.mount.Process.Kill()
	l.mount.Wait()
	exec.Command("umount", "-l", l.mnt).Run()
}

// tearDown unmounts and deletes every asset the run made.
func (l *live) tearDown() {
	l.mount.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { l.mount.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		l.mount.Process.Kill()
		exec.Command("umount", "-l", l.mnt).Run()
	}
	var ids []string
	l.mu.Lock()
	for id := range l.made {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), 20)
		if err := l.client.DeleteMediaInfos(context.Background(), ids[:n]...); err != nil {
			l.t.Errorf("delete the assets the test made (%v): %v", ids[:n], err)
		}
		ids = ids[n:]
	}
	if l.t.Failed() {
		data, _ := os.ReadFile(l.log)
		l.t.Logf("--- mount log ---\n%s", data)
	}
}

func (l *live) xattr(p, name string) string {
	buf := make([]byte, 8192)
	n, err := unix.Getxattr(p, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// ready waits until p is ready and returns its MediaId, which is remembered for deletion.
func (l *live) ready(p string) string {
	l.t.Helper()
	deadline := time.Now().Add(15 * time.Minute) // real assets take a while to prepare
	for {
		if id := l.xattr(p, "user.ims.media_id"); id != "" {
			l.mu.Lock()
			l.made[id] = true
			l.mu.Unlock()
		}
		switch s := l.xattr(p, "user.ims.status"); s {
		case "ready":
			return l.xattr(p, "user.ims.media_id")
		case "failed", "skipped":
			l.t.Fatalf("%s: %s: %s", p, s, l.xattr(p, "user.ims.error"))
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: still %s after 15 minutes", p, l.xattr(p, "user.ims.status"))
		}
		time.Sleep(2 * time.Second)
	}
}

// check compares an asset, through GetMediaInfo and a download of its signed FileUrl, with the
// file it was made from.
func (l *live) check(id, src, typ, business, title string) {
	l.t.Helper()
	info, err := l.client.GetMediaInfo(context.Background(), id, 10*time.Minute)
	if err != nil {
		l.t.Fatalf("GetMediaInfo %s: %v", id, err)
	}
	b := info.MediaBasicInfo
	if !strings.EqualFold(b.MediaType, typ) || b.BusinessType != business || b.Title != title || b.Status != ims.MediaNormal {
		l.t.Errorf("asset %s: %+v; want %s/%s %q Normal", id, b, typ, business, title)
	}
	resp, err := http.Get(info.FileURL())
	if err != nil {
		l.t.Fatalf("GET FileUrl of %s: %v", id, err)
	}
	defer resp.Body.Close()
	h := md5.New()
	io.Copy(h, resp.Body)
	if resp.StatusCode != 200 || hex.EncodeToString(h.Sum(nil)) != md5Of(l.t, src) {
		l.t.Errorf("the object of %s: HTTP %d, MD5 %x; want 200 and the MD5 of %s", id, resp.StatusCode, h.Sum(nil), src)
	}
}

func md5Of(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := md5.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v %s", src, dst, err, out)
	}
}

// media makes real media files the service can process: ffmpeg's test pattern as a 2-second
// video and a still, and a subtitle.
func media(t *testing.T) (video, image, subtitles string) {
	dir := t.TempDir()
	video, image, subtitles = filepath.Join(dir, "clip.mp4"), filepath.Join(dir, "still.png"), filepath.Join(dir, "clip.srt")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25", "-pix_fmt", "yuv420p", video},
		{"-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1", image},
	} {
		if out, err := exec.Command("ffmpeg", append([]string{"-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v %s", args, err, out)
		}
	}
	os.WriteFile(subtitles, []byte("1\n00:00:00,000 --> 00:00:02,000\nimsfs live test\n"), 0o644)
	return
}

func TestLive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("FUSE on Linux")
	}
	l := setUp(t)
	video, image, subtitles := media(t)
	stamp := time.Now().UTC().Format("20060102-150405")
	vName, iName, sName := "imsfs-live-"+stamp+".mp4", "imsfs-live-"+stamp+".png", "imsfs-live-"+stamp+".srt"
	vPath := filepath.Join(l.mnt, "video", vName)
	iPath := filepath.Join(l.mnt, "image", iName)
	sPath := filepath.Join(l.mnt, "text", "subtitles", sName)
	copyFile(t, video, vPath)
	copyFile(t, image, iPath)
	copyFile(t, subtitles, sPath)
	vID, iID, sID := l.ready(vPath), l.ready(iPath), l.ready(sPath)
	l.check(vID, video, "video", "general", strings.TrimSuffix(vName, ".mp4"))
	l.check(iID, image, "image", "default", strings.TrimSuffix(iName, ".png"))
	l.check(sID, subtitles, "text", "subtitles", strings.TrimSuffix(sName, ".srt"))
	if u := l.xattr(vPath, "user.ims.file_url"); u == "" {
		t.Error("no user.ims.file_url")
	} else if resp, err := http.Get(u); err != nil || resp.StatusCode != 200 {
		t.Errorf("user.ims.file_url does not open: %v %v", resp, err)
	}

	// A rename keeps the asset and retitles it.
	renamed := filepath.Join(l.mnt, "video", "imsfs-live-"+stamp+"-renamed.mp4")
	if err := os.Rename(vPath, renamed); err != nil {
		t.Fatal(err)
	}
	if id := l.ready(renamed); id != vID {
		t.Errorf("the rename gave the file MediaId %s, it had %s", id, vID)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := l.client.GetMediaInfo(context.Background(), vID, 0)
		if err == nil && info.MediaBasicInfo.Title == "imsfs-live-"+stamp+"-renamed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the asset was not retitled: %+v %v", info, err)
		}
		time.Sleep(2 * time.Second)
	}

	// An overwrite (an editor's save: a temporary file renamed over) makes a new asset; the old
	// one stays (--on-overwrite keep).
	copyFile(t, image, iPath+".tmp")
	if err := os.Rename(iPath+".tmp", iPath); err != nil {
		t.Fatal(err)
	}
	if id := l.ready(iPath); id == iID {
		t.Errorf("an overwrite kept MediaId %s", id)
	}
	if _, err := l.client.GetMediaInfo(context.Background(), iID, 0); err != nil {
		t.Errorf("the overwritten asset is gone under --on-overwrite keep: %v", err)
	}

	// A delete under --on-delete delete deletes the asset.
	if err := os.Remove(sPath); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		info, err := l.client.GetMediaInfo(context.Background(), sID, 0)
		if err != nil || info.MediaBasicInfo.Status == "Deleted" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted file's asset is still there: %+v", info.MediaBasicInfo)
		}
		time.Sleep(2 * time.Second)
	}
	fmt.Println("live: video, image and subtitle uploaded and checked; rename, overwrite and delete behaved; every asset made is deleted")
}

// TestLiveFurther: what the service's own rules touch beyond the first pass: a multipart upload
// of three parts or more (--part-size 100KiB), an audio file, the asset's fields set by xattrs
// and read back through GetMediaInfo (UpdateMediaInfo), the rename of an image into cover/ (its
// BusinessType is one UpdateMediaInfo does not set), a restart mid-upload (the resume asks
// RefreshUploadMedia, or starts over with a new asset if that is refused), and the BusinessType
// general of video/ and audio/ (should CreateUploadMedia refuse it, the file's error names the
// configuration key to change).
func TestLiveFurther(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("FUSE on Linux")
	}
	l := setUp(t, "--part-size", "100KiB")
	dir := t.TempDir()
	stamp := time.Now().UTC().Format("20060102-150405")
	clip, tone, big := filepath.Join(dir, "clip.mp4"), filepath.Join(dir, "tone.wav"), filepath.Join(dir, "long.mp4")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=duration=6:size=640x480:rate=25", "-pix_fmt", "yuv420p", "-c:v", "mpeg4", "-q:v", "2", clip},
		{"-f", "lavfi", "-i", "sine=frequency=440:duration=3", tone},
		{"-f", "lavfi", "-i", "testsrc=duration=60:size=640x480:rate=25", "-pix_fmt", "yuv420p", "-c:v", "mpeg4", "-q:v", "2", big},
	} {
		if out, err := exec.Command("ffmpeg", append([]string{"-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v %s", args, err, out)
		}
	}
	if st, _ := os.Stat(clip); st.Size() < 300<<10 {
		t.Fatalf("the clip is %d bytes: under three parts of 100 KiB", st.Size())
	}

	// Multipart, and video/ with BusinessType general.
	vPath := filepath.Join(l.mnt, "video", "imsfs-live-"+stamp+"-parts.mp4")
	copyFile(t, clip, vPath)
	vID := l.ready(vPath)
	l.check(vID, clip, "video", "general", "imsfs-live-"+stamp+"-parts")

	// Audio, BusinessType general.
	aPath := filepath.Join(l.mnt, "audio", "imsfs-live-"+stamp+".wav")
	copyFile(t, tone, aPath)
	aID := l.ready(aPath)
	l.check(aID, tone, "audio", "general", "imsfs-live-"+stamp)

	// The asset's fields by xattrs, through UpdateMediaInfo, read back by GetMediaInfo.
	for name, value := range map[string]string{"user.ims.title": "imsfs live " + stamp, "user.ims.description": "set by the live test", "user.ims.tags": "imsfs,live"} {
		if err := unix.Setxattr(vPath, name, []byte(value), 0); err != nil {
			t.Fatalf("setxattr %s: %v", name, err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := l.client.GetMediaInfo(context.Background(), vID, 0)
		if err == nil && info.MediaBasicInfo.Title == "imsfs live "+stamp && info.MediaBasicInfo.Description == "set by the live test" && info.MediaBasicInfo.MediaTags == "imsfs,live" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the asset's fields were not set: %+v %v (user.ims.update %q, error %q)", info, err, l.xattr(vPath, "user.ims.update"), l.xattr(vPath, "user.ims.error"))
		}
		time.Sleep(2 * time.Second)
	}

	// The rename of an image into cover/: retitled, BusinessType as it was, nothing refused.
	_, image, _ := media(t)
	iPath := filepath.Join(l.mnt, "image", "imsfs-live-"+stamp+".png")
	copyFile(t, image, iPath)
	iID := l.ready(iPath)
	cover := filepath.Join(l.mnt, "image", "cover", "imsfs-live-"+stamp+"-cover.png")
	if err := os.Rename(iPath, cover); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		info, err := l.client.GetMediaInfo(context.Background(), iID, 0)
		if err == nil && info.MediaBasicInfo.Title == "imsfs-live-"+stamp+"-cover" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the image was not retitled: %+v %v (error %q)", info, err, l.xattr(cover, "user.ims.error"))
		}
		time.Sleep(2 * time.Second)
	}
	if e := l.xattr(cover, "user.ims.error"); e != "" {
		t.Errorf("the rename of an image: %s", e)
	}

	// A restart mid-upload resumes (or starts over, if the service will not refresh).
	bPath := filepath.Join(l.mnt, "video", "imsfs-live-"+stamp+"-resumed.mp4")
	copyFile(t, big, bPath)
	deadline = time.Now().Add(5 * time.Minute)
	for {
		var sent, total int64
		fmt.Sscanf(l.xattr(bPath, "user.ims.progress"), "%d/%d", &sent, &total)
		if id := l.xattr(bPath, "user.ims.media_id"); id != "" {
			l.mu.Lock()
			l.made[id] = true
			l.mu.Unlock()
		}
		if sent > 0 && sent < total {
			break
		}
		if l.xattr(bPath, "user.ims.status") == "ready" || time.Now().After(deadline) {
			t.Fatalf("no upload under way to interrupt: %s %s", l.xattr(bPath, "user.ims.status"), l.xattr(bPath, "user.ims.progress"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.kill()
	l.start()
	bID := l.ready(bPath)
	l.check(bID, big, "video", "general", "imsfs-live-"+stamp+"-resumed")
	fmt.Println("live: multipart, audio, fields by xattr, an image renamed into cover/, a resume after kill -9: checked; every asset made is deleted")
}
