package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTheMountChecksItsKeyAtStart: no credentials, or a key IMS refuses, stop the mount at
// start with what to do; an endpoint that does not answer does not (files wait in the queue).
func TestTheMountChecksItsKeyAtStart(t *testing.T) {
	requireFUSE(t)
	emu := startEmulator(t)
	home := t.TempDir() // no ~/.aliyun/config.json
	for _, tc := range []struct {
		name string
		env  []string
		says []string
	}{
		{"no credentials", []string{"HOME=" + home},
			[]string{"no Alibaba Cloud credentials", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "~/.aliyun/config.json", "--emulator"}},
		{"a wrong secret", []string{"HOME=" + home, "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=not-the-secret"},
			[]string{"refused the AccessKey emulat", "SignatureDoesNotMatch", "Check the key pair"}},
		{"an unknown key", []string{"HOME=" + home, "ALIBABA_CLOUD_ACCESS_KEY_ID=LTAInobody", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=x"},
			[]string{"InvalidAccessKeyId.NotFound"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := start(t, "mount", tc.env, "mount", "--endpoint", emu.URL, "--cache-dir", t.TempDir(), dir)
			if err := p.waitExit(t, 30*time.Second); err == nil {
				t.Fatal("the mount started")
			}
			out := p.output()
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("it says:\n%s\nwant %q in it", out, s)
				}
			}
			if strings.Contains(out, "not-the-secret") || strings.Contains(out, "169.254") {
				t.Errorf("it echoes the secret or an instance-metadata address:\n%s", out)
			}
			if isMounted(dir) {
				t.Error("it mounted")
			}
		})
	}
	t.Run("an endpoint that does not answer", func(t *testing.T) {
		m := startMountEnv(t, &emulatorProc{URL: "http://127.0.0.1:1"}, "", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret"})
		if !strings.Contains(m.output(), "IMS does not answer; mounting anyway") {
			t.Errorf("no warning:\n%s", m.output())
		}
		p := filepath.Join(m.Dir, "video", "waits.mp4")
		if err := os.WriteFile(p, []byte("waits in the queue"), 0o644); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			e, _ := xattr(p, "user.ims.error")
			if strings.Contains(e, "next at") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no retry said in user.ims.error: %q", e)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if s, _ := xattr(p, "user.ims.status"); s != "creating" {
			t.Errorf("status %s, want creating (waiting to try again)", s)
		}
	})
}

// TestARegionWithoutCreateUploadMediaIsRefused: without --endpoint, only the three regions
// that have CreateUploadMedia are taken; a bare host is taken as an HTTPS endpoint.
func TestARegionWithoutCreateUploadMediaIsRefused(t *testing.T) {
	p := start(t, "mount", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=b"},
		"mount", "--region", "cn-hangzhou", "--cache-dir", t.TempDir(), t.TempDir())
	if err := p.waitExit(t, 30*time.Second); err == nil {
		t.Fatal("a mount in cn-hangzhou started")
	}
	if out := p.output(); !strings.Contains(out, "cn-shanghai, cn-beijing and cn-shenzhen") {
		t.Errorf("it says:\n%s", out)
	}
}

// TestURLsOpenAsTheyAre: user.ims.file_url is a signed URL that opens as it is (with curl, a
// browser); the plain address is user.ims.input_url, which the private bucket refuses; `imsfs
// url` signs one for as long as asked. Every OSS request of the upload is signed V4, with the
// region UploadAuth names.
func TestURLsOpenAsTheyAre(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	src := randomFile(t, "clip.mp4", 3<<20)
	run(t, "cp", src, filepath.Join(m.Dir, "video"))
	p := filepath.Join(m.Dir, "video", "clip.mp4")
	waitStatus(t, p, "ready", 60*time.Second)
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, md5Bytes(data)
	}
	signed, _ := xattr(p, "user.ims.file_url")
	if code, sum := get(signed); code != 200 || sum != md5File(t, src) {
		t.Errorf("GET user.ims.file_url %q: %d, MD5 %s", signed, code, sum)
	}
	plain, _ := xattr(p, "user.ims.input_url")
	if code, _ := get(plain); plain == "" || code != 403 {
		t.Errorf("GET user.ims.input_url %q: %d, want 403", plain, code)
	}
	out, err := exec.Command(imsfsBin, "url", "--expires", "90s", p).Output()
	if err != nil {
		t.Fatalf("imsfs url: %v", err)
	}
	u := strings.TrimSpace(string(out))
	if code, sum := get(u); code != 200 || sum != md5File(t, src) {
		t.Errorf("GET of imsfs url: %d", code)
	}
	if exp, _ := strconv.ParseInt(regexp.MustCompile(`Expires=(\d+)`).FindStringSubmatch(u)[1], 10, 64); exp > time.Now().Add(2*time.Minute).Unix() {
		t.Errorf("imsfs url --expires 90s signed until %v", time.Unix(exp, 0))
	}
	os.WriteFile(filepath.Join(m.Dir, "video", "notes"), []byte("x"), 0o644)
	if out, err := exec.Command(imsfsBin, "url", filepath.Join(m.Dir, "video", "notes")).CombinedOutput(); err == nil || !strings.Contains(string(out), "once it is uploaded") {
		t.Errorf("imsfs url of a skipped file: %v %s", err, out)
	}
	st := emu.stats(t).Requests
	if st["oss.signed.v1"] != 0 || st["oss.signed.v4"] == 0 {
		t.Errorf("OSS requests signed V1 %d, V4 %d; want V4 only", st["oss.signed.v1"], st["oss.signed.v4"])
	}
}

// TestNoUploadSecretIsKeptOrShown: the upload credentials IMS hands out (and the emulator
// keeps) appear in no log line, no attribute, no sidecar, no status, and nowhere in the cache
// directory, even through failures that quote the services' answers.
func TestNoUploadSecretIsKeptOrShown(t *testing.T) {
	emu := startEmulator(t, "--faults", "oss.part=0.3:500,ims.create=0.2:reset,oss.put=0.2:InvalidArgument/400", "--fault-seed", "7")
	m := startMount(t, emu, "", "--part-size", "1MiB")
	for i, size := range []int{100 << 10, 3 << 20, 5 << 20} {
		src := randomFile(t, fmt.Sprintf("f%d.mp4", i), size)
		run(t, "cp", src, filepath.Join(m.Dir, "video"))
	}
	for i := range 3 {
		p := filepath.Join(m.Dir, "video", fmt.Sprintf("f%d.mp4", i))
		deadline := time.Now().Add(60 * time.Second)
		for s, _ := xattr(p, "user.ims.status"); s != "ready" && s != "failed"; s, _ = xattr(p, "user.ims.status") {
			if time.Now().After(deadline) {
				t.Fatalf("%s still %s", p, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The emulator journals the keys it hands out, one JSON line per key issued.
	raw, err := os.ReadFile(filepath.Join(emu.Data, "sts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]struct{ Secret, Token string }{}
	for _, line := range strings.Split(string(raw), "\n") {
		var e struct {
			ID  string
			Key *struct{ Secret, Token string }
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Key != nil {
			keys[e.ID] = *e.Key
		}
	}
	if len(keys) == 0 {
		t.Fatalf("the emulator handed out no keys (%d bytes of journal)", len(raw))
	}
	var shown strings.Builder
	shown.WriteString(m.output())
	status, _ := exec.Command(imsfsBin, "status", "--json", m.Dir).CombinedOutput()
	shown.Write(status)
	filepath.Walk(m.Dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			data, _ := os.ReadFile(p)
			if strings.HasSuffix(p, ".ims.json") {
				shown.Write(data)
			}
			out, _ := exec.Command("getfattr", "-d", "-m", "user.ims", p).CombinedOutput()
			shown.Write(out)
		}
		return nil
	})
	filepath.Walk(m.CacheDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.Contains(p, "/spool/") {
			data, _ := os.ReadFile(p)
			shown.Write(data)
		}
		return nil
	})
	for id, k := range keys {
		for what, v := range map[string]string{"secret": k.Secret, "token": k.Token} {
			if v != "" && strings.Contains(shown.String(), v) {
				t.Errorf("the %s of upload key %s is shown or kept", what, id)
			}
		}
	}
}

// TestTheControlSocketIsTheOwnersAlone: mode 0600 in a cache directory of mode 0700.
func TestTheControlSocketIsTheOwnersAlone(t *testing.T) {
	emu := startEmulator(t)
	cache := t.TempDir()
	os.Chmod(cache, 0o755)
	startMount(t, emu, cache)
	for p, want := range map[string]os.FileMode{cache: 0o700, filepath.Join(cache, "control.sock"): 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", p, st.Mode(), err, want)
		}
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err == nil {
			out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", imsfsBin, "status", "--json", filepath.Join(cache, "..")).CombinedOutput()
			if err == nil {
				t.Errorf("another user read the mount's status: %s", out)
			}
		}
	}
}

// TestARenameToALongCJKNameRetitlesTheAsset: a Title both CreateUploadMedia (128 characters)
// and UpdateMediaInfo (128 bytes) take.
func TestARenameToALongCJKNameRetitlesTheAsset(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	p := filepath.Join(m.Dir, "video", "a.mp4")
	os.WriteFile(p, []byte("bytes"), 0o644)
	waitStatus(t, p, "ready", 30*time.Second)
	long := strings.Repeat("長", 80)
	q := filepath.Join(m.Dir, "video", long+".mp4")
	if err := os.Rename(p, q); err != nil {
		t.Fatal(err)
	}
	id, _ := xattr(q, "user.ims.media_id")
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, a := range emu.assets(t) {
			if a.MediaId == id && a.Title == strings.Repeat("長", 42) {
				if e, _ := xattr(q, "user.ims.error"); e != "" {
					t.Errorf("user.ims.error %q", e)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			e, _ := xattr(q, "user.ims.error")
			t.Fatalf("the asset was not retitled to 42 characters (126 bytes); error %q", e)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestALostCreationAnswerIsFoundAmongManyAssets: 20,000 other assets in the library, some of
// this type made minutes ago; the creation answer is cut; the asset is found and used in at
// most 10 listing calls.
func TestALostCreationAnswerIsFoundAmongManyAssets(t *testing.T) {
	emu := startEmulator(t)
	for _, seed := range []string{"count=19000&type=video&spread=72h", "count=1000&type=video&spread=10m"} {
		resp, err := http.Post(emu.URL+"/_emulator/seed?"+seed, "", nil)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("seed: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	setFaults(t, emu, "ims.create=1:reset")
	m := startMount(t, emu, "", "--library=false") // its listing would list the 20,000 too
	p := filepath.Join(m.Dir, "video", "cut.mp4")
	os.WriteFile(p, []byte("its creation answer is cut"), 0o644)
	deadline := time.Now().Add(30 * time.Second)
	for emu.stats(t).Requests["ims.create"] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no CreateUploadMedia")
		}
		time.Sleep(20 * time.Millisecond)
	}
	setFaults(t, emu, "")
	waitStatus(t, p, "ready", 60*time.Second)
	st := emu.stats(t)
	figure(t, "a lost creation answer among 20,000 assets: %d listing calls, %d creations", st.Requests["ims.list"], st.Requests["ims.create"])
	if st.Requests["ims.list"] > 10 || st.Requests["ims.create"] != 1 {
		t.Errorf("%d listing calls and %d creations, want at most 10 and 1", st.Requests["ims.list"], st.Requests["ims.create"])
	}
	if n := len(emu.assets(t)); n != 20001 {
		t.Errorf("%d assets, want 20,001", n)
	}
}

func setFaults(t *testing.T, emu *emulatorProc, spec string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, emu.URL+"/_emulator/faults", strings.NewReader(spec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("set faults %q: %v", spec, err)
	}
	resp.Body.Close()
}

// TestWhatTheServiceRefusesIsNotSent: a format a folder's Type does not take is skipped, naming
// the formats it takes; an audio or video file over 5 GiB fails at once with the limit. Neither
// reaches IMS.
func TestWhatTheServiceRefusesIsNotSent(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	for _, f := range []struct{ path, says string }{
		{"video/notes.txt", "IMS does not take .txt files as video; this folder takes mp4, ts"},
		{"image/scan.bmp", "this folder takes gif, webp, png, jpg, jpeg, heic"},
		{"text/subtitles/font.ttf", "as subtitles; this folder takes srt, vtt, ass"},
	} {
		p := filepath.Join(m.Dir, f.path)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, p, "skipped", 10*time.Second)
		if e, _ := xattr(p, "user.ims.error"); !strings.Contains(e, f.says) {
			t.Errorf("%s: %q, want it to say %q", f.path, e, f.says)
		}
	}
	huge := filepath.Join(m.Dir, "video", "huge.mp4")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5<<30 + 1); err != nil { // sparse: nothing is written
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, huge, "failed", 10*time.Second)
	if e, _ := xattr(huge, "user.ims.error"); !strings.Contains(e, "at most 5 GiB") {
		t.Errorf("huge.mp4: %q", e)
	}
	if n := emu.stats(t).Requests["ims.create"]; n != 0 {
		t.Errorf("%d CreateUploadMedia calls for files the service refuses", n)
	}
}
