package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// library/ (issue 20): every asset in IMS, read-only, read on demand.

// seed asks the emulator for assets other users made (see the emulator's /_emulator/seed).
func seed(t *testing.T, emu *emulatorProc, query string) {
	t.Helper()
	resp, err := http.Post(emu.URL+"/_emulator/seed?"+query, "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("seed %s: %v %v", query, resp, err)
	}
	resp.Body.Close()
}

// eventually waits for ok, failing with what after within (a deadline against hangs only).
func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, within)
		}
	}
}

// libraryNames maps each file of library/ (its path under it) to its MediaId.
func libraryNames(t *testing.T, lib string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(lib, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".ims.json") {
			id, _ := xattr(p, "user.ims.media_id")
			rel, _ := filepath.Rel(lib, p)
			out[rel] = id
		}
		return nil
	})
	return out
}

// TestTheLibraryShowsWhatIMSHolds: assets made through the API (not the mount) show in their
// folders with their sizes, read on demand byte for byte (whole, at an offset, by ffprobe and a
// seeking ffmpeg); names are made valid and told apart; library/ refuses every change with
// EROFS; a copy out of it into an upload folder is a new asset; a deletion in the service
// leaves the folder; a restart keeps every name.
func TestTheLibraryShowsWhatIMSHolds(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	emu := startEmulator(t)
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	run(t, "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=10:size=320x240:rate=25",
		"-c:v", "mpeg4", "-threads", "1", "-y", clip)
	big := randomFile(t, "big.mov", 20<<20+12345) // three chunks of 8 MiB, the last short
	subs := filepath.Join(t.TempDir(), "subs.srt")
	os.WriteFile(subs, []byte("1\n00:00:01,000 --> 00:00:02,000\nhello\n"), 0o644)
	clipID := apiUpload(t, emu, clip, `{"Type":"video","Name":"clip","Ext":"mp4"}`, `{"Title":"clip","BusinessType":"general"}`)
	bigID := apiUpload(t, emu, big, `{"Type":"video","Name":"big","Ext":"mov"}`, `{"Title":"big","BusinessType":"opening"}`)
	subsID := apiUpload(t, emu, subs, `{"Type":"text","Name":"subs","Ext":"srt"}`, `{"Title":"subs","BusinessType":"subtitles"}`)
	seed(t, emu, "count=1&size=10&type=image&business_type=cover&name=&title="+url.QueryEscape("poster/final"))
	longName := strings.Repeat("n", 300) + ".mp3"
	seed(t, emu, "count=1&size=10&type=audio&business_type=general&name="+url.QueryEscape(longName))
	seed(t, emu, "count=3&size=10&type=image&business_type=default&spread=1h&name=same.png")
	seed(t, emu, "count=1&type=video&business_type=general&name=never-uploaded.mp4") // no bytes: not shown

	cacheDir := t.TempDir()
	m := startMount(t, emu, cacheDir, "--library-refresh", "1s")
	lib := filepath.Join(m.Dir, "library")
	for _, p := range []string{"video/clip.mp4", "video/opening/big.mov", "text/subtitles/subs.srt", "image/same.png", "image/cover/poster_final"} {
		eventually(t, 60*time.Second, "library/"+p, func() bool { return exists(filepath.Join(lib, p)) })
	}
	eventually(t, 60*time.Second, "the library listed whole", func() bool { s, _ := xattr(lib, "user.ims.status"); return s == "current" })

	// Sizes, without reading the bytes.
	for p, src := range map[string]string{"video/clip.mp4": clip, "video/opening/big.mov": big, "text/subtitles/subs.srt": subs} {
		st, err := os.Stat(filepath.Join(lib, p))
		want, _ := os.Stat(src)
		if err != nil || st.Size() != want.Size() || st.Mode().Perm() != 0o444 {
			t.Errorf("library/%s: %v %v, want %d bytes, read-only", p, st, err, want.Size())
		}
	}
	if exists(filepath.Join(lib, "video", "never-uploaded.mp4")) {
		t.Errorf("an asset whose upload never came is shown")
	}

	// Bytes: whole, at an offset, by media tools.
	run(t, "cmp", clip, filepath.Join(lib, "video", "clip.mp4"))
	run(t, "cmp", big, filepath.Join(lib, "video", "opening", "big.mov"))
	f, err := os.Open(filepath.Join(lib, "video", "opening", "big.mov"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(big)
	for _, off := range []int64{0, 8<<20 - 3, 16<<20 + 1, int64(len(want)) - 100} {
		got := make([]byte, 1<<20)
		n, err := f.ReadAt(got, off)
		if err != nil && !errors.Is(err, io.EOF) || !bytes.Equal(got[:n], want[off:min(int64(len(want)), off+1<<20)]) {
			t.Errorf("big.mov at %d: %d bytes, %v, not the file's", off, n, err)
		}
	}
	f.Close()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", filepath.Join(lib, "video", "clip.mp4")).CombinedOutput()
	if d, perr := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err != nil || perr != nil || d < 9 || d > 11 {
		t.Errorf("ffprobe of a library video: %v %s", err, out)
	}
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-ss", "7", "-i", filepath.Join(lib, "video", "clip.mp4"), "-frames:v", "1", "-f", "null", "-").CombinedOutput(); err != nil {
		t.Errorf("ffmpeg -ss 7 of a library video: %v %s", err, out)
	}

	// The surfaces of a saved file.
	p := filepath.Join(lib, "video", "clip.mp4")
	for name, want := range map[string]string{"user.ims.media_id": clipID, "user.ims.status": "ready", "user.ims.type": "video", "user.ims.business_type": "general", "user.ims.title": "clip"} {
		if v, err := xattr(p, name); v != want {
			t.Errorf("%s of library/video/clip.mp4: %q %v, want %q", name, v, err, want)
		}
	}
	if u, _ := xattr(p, "user.ims.file_url"); !strings.Contains(u, "Signature=") {
		t.Errorf("user.ims.file_url: %q, want a signed URL", u)
	}
	var side map[string]string
	data, err := os.ReadFile(p + ".ims.json")
	if json.Unmarshal(data, &side); err != nil || side["media_id"] != clipID || side["path"] != "library/video/clip.mp4" {
		t.Errorf("the sidecar: %s %v", data, err)
	}
	if v, _ := xattr(filepath.Join(lib, "video", "opening", "big.mov"), "user.ims.media_id"); v != bigID {
		t.Errorf("big.mov is %s, want %s", v, bigID)
	}

	// Names: a title with a slash, a name past 255 bytes, three assets of one name.
	if !exists(filepath.Join(lib, "image", "cover", "poster_final")) {
		t.Errorf("a title with a slash: %v", ls(t, filepath.Join(lib, "image", "cover")))
	}
	audio := ls(t, filepath.Join(lib, "audio"))
	if len(audio) != 1 || len(audio[0]) != 255 || !strings.HasSuffix(audio[0], ".mp3") {
		t.Errorf("a name of 304 bytes shows as %v", audio)
	}
	var same []string
	for _, a := range emu.assets(t) { // in creation order
		if a.FileName == "same.png" {
			same = append(same, a.MediaId)
		}
	}
	images := ls(t, filepath.Join(lib, "image"))
	wantImages := []string{"same [" + same[1][:8] + "].png", "same [" + same[2][:8] + "].png", "same.png"}
	sort.Strings(wantImages)
	if strings.Join(images, "|") != strings.Join(wantImages, "|") {
		t.Errorf("three assets of one name: %v, want %v", images, wantImages)
	}
	if v, _ := xattr(filepath.Join(lib, "image", "same.png"), "user.ims.media_id"); v != same[0] {
		t.Errorf("same.png is %s, want the oldest, %s", v, same[0])
	}

	// Read-only: each change refused with EROFS, and one log line naming the path.
	refusals := []struct {
		what string
		err  error
	}{
		{"create", os.WriteFile(filepath.Join(lib, "video", "new.mp4"), []byte("x"), 0o644)},
		{"write", func() error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				f.Close()
			}
			return err
		}()},
		{"truncate", os.Truncate(p, 0)},
		{"remove", os.Remove(p)},
		{"rename", os.Rename(p, filepath.Join(lib, "video", "moved.mp4"))},
		{"rename in", os.Rename(filepath.Join(m.Dir, "video"), filepath.Join(lib, "video", "in"))},
		{"mkdir", os.Mkdir(filepath.Join(lib, "video", "d"), 0o755)},
		{"rename of library/", os.Rename(lib, filepath.Join(m.Dir, "video", "library"))},
		{"rmdir of library/", syscall.Rmdir(lib)},
		{"setxattr", unix.Setxattr(p, "user.ims.title", []byte("x"), 0)},
		{"chmod", os.Chmod(p, 0o644)},
	}
	for _, r := range refusals {
		if !isErrno(r.err, syscall.EROFS) {
			t.Errorf("%s in library/: %v, want EROFS", r.what, r.err)
		}
	}
	if n := strings.Count(m.output(), "errno=EROFS"); n != len(refusals) || !strings.Contains(m.output(), `path=library/video/clip.mp4 errno=EROFS`) {
		t.Errorf("%d log lines of EROFS for %d refusals:\n%s", n, len(refusals), m.output())
	}

	// A copy into an upload folder makes a new asset, which shows in library/ too.
	run(t, "cp", p, filepath.Join(m.Dir, "video", "copy.mp4"))
	copied := filepath.Join(m.Dir, "video", "copy.mp4")
	waitStatus(t, copied, "ready", 60*time.Second)
	if id := mediaIDOf(t, copied); id == clipID || id == "" {
		t.Errorf("the copy's asset is %q", id)
	}
	eventually(t, 60*time.Second, "the copy in library/video", func() bool { return exists(filepath.Join(lib, "video", "copy.mp4")) })
	run(t, "cmp", clip, filepath.Join(lib, "video", "copy.mp4"))

	// A deletion in the service leaves the folder, though the kernel was told the entry for long.
	gone := filepath.Join(lib, "text", "subtitles", "subs.srt")
	if _, err := os.Stat(gone); err != nil {
		t.Fatal(err)
	}
	imsCall(t, emu, "DeleteMediaInfos", map[string]string{"MediaIds": subsID})
	eventually(t, 60*time.Second, "the deleted asset gone from library/text/subtitles", func() bool { return !exists(gone) })

	// A restart shows the same names at once, then lists again.
	before := libraryNames(t, lib)
	run(t, "umount", m.Dir)
	m.waitExit(t, 60*time.Second)
	m2 := startMount(t, emu, cacheDir, "--library-refresh", "1s")
	after := libraryNames(t, filepath.Join(m2.Dir, "library"))
	if len(before) != len(after) || len(before) < 8 {
		t.Errorf("%d names before the restart, %d after", len(before), len(after))
	}
	for p, id := range before {
		if after[p] != id {
			t.Errorf("library/%s was %s, is %q after a restart", p, id, after[p])
		}
	}
}

// TestTwoMountsSeeEachOthersSaves: two workstations on one account, no coordination but the
// service: what one saves shows in the other's library/, byte for byte, and in its own.
func TestTwoMountsSeeEachOthersSaves(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	a := startMount(t, emu, "", "--library-refresh", "1s")
	b := startMount(t, emu, "", "--library-refresh", "1s")
	fromA := randomFile(t, "from-a.mp4", 9<<20)
	fromB := randomFile(t, "from-b.png", 100<<10)
	run(t, "cp", fromA, filepath.Join(a.Dir, "video")+"/")
	run(t, "cp", fromB, filepath.Join(b.Dir, "image", "cover")+"/")
	for _, c := range []struct {
		m    *mountProc
		p    string
		want string
	}{
		{b, "library/video/from-a.mp4", fromA},
		{a, "library/image/cover/from-b.png", fromB},
		{a, "library/video/from-a.mp4", fromA},
	} {
		p := filepath.Join(c.m.Dir, c.p)
		eventually(t, 90*time.Second, c.p, func() bool { return exists(p) })
		run(t, "cmp", c.want, p)
	}
}

// TestTheLibraryOffline: while IMS does not answer (connections that hang), library/ shows what
// was last listed and says it is stale, on the folder and in imsfs status; lookups and listings
// answer from what was listed; it is current again once IMS answers.
func TestTheLibraryOffline(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	seed(t, emu, "count=50&size=100&spread=1h")
	proxy := newSwitchProxy(t, strings.TrimPrefix(emu.URL, "http://"))
	m := startMount(t, &emulatorProc{proc: emu.proc, URL: proxy.URL, Data: emu.Data}, "", "--library-refresh", "1s", "--metrics-addr", "127.0.0.1:0")
	lib := filepath.Join(m.Dir, "library")
	video := filepath.Join(lib, "video")
	eventually(t, 60*time.Second, "50 assets in library/video", func() bool { return len(ls(t, video)) == 50 })
	metrics := func() map[string]float64 {
		match := metricsURL.FindStringSubmatch(m.output())
		if match == nil {
			t.Fatalf("no metrics address:\n%s", m.output())
		}
		return scrape(t, match[1])
	}
	if got := metrics(); got["imsfs_library_assets"] != 50 || got["imsfs_library_stale"] != 0 {
		t.Errorf("metrics while current: assets %v, stale %v", got["imsfs_library_assets"], got["imsfs_library_stale"])
	}

	proxy.setHang(true)
	eventually(t, 120*time.Second, "library/ says it is stale", func() bool {
		s, _ := xattr(lib, "user.ims.status")
		return s == "stale"
	})
	if e, _ := xattr(lib, "user.ims.error"); !strings.Contains(e, "IMS cannot be reached since") {
		t.Errorf("user.ims.error of a stale library/: %q", e)
	}
	if got := metrics(); got["imsfs_library_stale"] != 1 {
		t.Errorf("imsfs_library_stale while IMS hangs: %v", got["imsfs_library_stale"])
	}
	out, _ := exec.Command(imsfsBin, "status", m.Dir).CombinedOutput()
	if !strings.Contains(string(out), "the library is stale") || !strings.Contains(string(out), "library/") {
		t.Errorf("imsfs status while IMS hangs:\n%s", out)
	}
	// Answered from what was listed, though every call to IMS hangs (the deadline is against a
	// hang, no timing).
	done := make(chan []string)
	go func() {
		out, _ := exec.Command("ls", "-l", video).CombinedOutput()
		done <- strings.Split(strings.TrimSpace(string(out)), "\n")
	}()
	select {
	case lines := <-done:
		if len(lines) != 1+50*2+2 { // total, 50 files and their sidecars, opening/ and ending/
			t.Errorf("ls -l while IMS hangs: %d lines", len(lines))
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("ls -l of library/video waits on IMS")
	}

	proxy.setHang(false)
	eventually(t, 120*time.Second, "library/ current again", func() bool {
		s, _ := xattr(lib, "user.ims.status")
		return s == "current"
	})
}

// ls returns the names in dir but sidecars and folders, sorted.
func ls(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && !strings.HasSuffix(e.Name(), ".ims.json") {
			out = append(out, e.Name())
		}
	}
	return out
}

// switchProxy passes TCP connections to target, or, set to hang, takes them and answers
// nothing: a network that has gone quiet.
type switchProxy struct {
	URL    string
	target string
	ln     net.Listener

	mu    sync.Mutex
	hang  bool
	conns map[net.Conn]bool
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{URL: "http://" + ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns[c] = true
			hang := p.hang
			p.mu.Unlock()
			if hang {
				continue // held open, never answered
			}
			go p.pass(c)
		}
	}()
	return p
}

func (p *switchProxy) pass(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// setHang switches the proxy; the connections it had are cut, so that none goes on as before.
func (p *switchProxy) setHang(hang bool) {
	p.mu.Lock()
	p.hang = hang
	p.mu.Unlock()
	p.closeAll()
}

func (p *switchProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// TestTheLibraryCanBeHidden: library: false in the configuration file hides library/; a
// configuration that maps a folder named library, with the library shown, stops the mount before
// it mounts, saying why and what to change.
func TestTheLibraryCanBeHidden(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	conf := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(conf, []byte("library: false\n"), 0o644)
	m := startMount(t, emu, "", "--config", conf)
	if _, err := os.Stat(filepath.Join(m.Dir, "library")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("library/ with library: false: %v", err)
	}
	os.WriteFile(conf, []byte("folders:\n  library/raw:\n    type: video\n    business-type: general\n"), 0o644)
	mnt := t.TempDir()
	cmd := exec.Command(imsfsBin, "mount", "--config", conf, "--endpoint", emu.URL, "--cache-dir", t.TempDir(), mnt)
	cmd.Env = append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "library/, which is the library's") || !strings.Contains(string(out), "library: false") {
		t.Errorf("a folder named library beside library/: exit %d:\n%s", code, out)
	}
	if isMounted(mnt) {
		t.Error("it mounted anyway")
	}
}
