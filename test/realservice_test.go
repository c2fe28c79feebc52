package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real service's weather and rules, as the emulator answers them (issue 18).

// TestThrottlingIsWeather: with a third of every IMS call answered with flow control
// (RequestsTooFrequent, HTTP 403), every file ends ready; the mount says it is being
// throttled, in imsfs status and its metrics.
func TestThrottlingIsWeather(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--faults", "ims.*=0.33:RequestsTooFrequent/403", "--fault-seed", "7")
	m := startMount(t, emu, "", "--metrics-addr", "127.0.0.1:0")
	want := map[string][]byte{}
	for i := range 20 {
		p := fmt.Sprintf("video/t%02d.mp4", i)
		want[p] = randomBytes(t, 20<<10+i)
		if err := os.WriteFile(filepath.Join(m.Dir, p), want[p], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	var status []byte
	for !strings.Contains(string(status), "IMS is throttling") {
		if time.Now().After(deadline) {
			t.Fatalf("imsfs status does not say IMS is throttling:\n%s", status)
		}
		time.Sleep(100 * time.Millisecond)
		status, _ = exec.Command(imsfsBin, "status", m.Dir).CombinedOutput()
	}
	if !strings.Contains(string(status), "RequestsTooFrequent") {
		t.Errorf("imsfs status does not name the answer:\n%s", status)
	}
	settled(t, emu, m, want)
	match := metricsURL.FindStringSubmatch(m.output())
	if match == nil {
		t.Fatalf("no metrics address:\n%s", m.output())
	}
	series := scrape(t, match[1])
	throttled := 0.0
	for name, v := range series {
		if strings.HasPrefix(name, "imsfs_ims_throttled_total{") {
			throttled += v
		}
	}
	if throttled == 0 || throttled != float64(emu.stats(t).Faults["ims.create"]+emu.stats(t).Faults["ims.batchget"]+emu.stats(t).Faults["ims.list"]+emu.stats(t).Faults["ims.refresh"]+emu.stats(t).Faults["ims.update"]+emu.stats(t).Faults["ims.get"]+emu.stats(t).Faults["ims.delete"]) {
		t.Errorf("imsfs_ims_throttled_total sums to %v; the emulator throttled %v", throttled, emu.stats(t).Faults)
	}
	figure(t, "20 files with a third of IMS calls throttled: all ready; %v throttled answers", throttled)
}

// TestTheClientPacesItself: an emulator that takes 4 CreateUploadMedia a second answers the
// rest as the service's flow control does (Throttling.Api); a copy of 40 files slows to that
// pace and ends ready, every file, without the calls it would make unpaced.
func TestTheClientPacesItself(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--qps", "CreateUploadMedia=4")
	m := startMount(t, emu, "", "--metrics-addr", "127.0.0.1:0")
	want := map[string][]byte{}
	for i := range 40 {
		p := fmt.Sprintf("video/p%02d.mp4", i)
		want[p] = randomBytes(t, 1<<10+i)
		if err := os.WriteFile(filepath.Join(m.Dir, p), want[p], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	settled(t, emu, m, want)
	st := emu.stats(t)
	throttled, calls := st.Requests["throttled.CreateUploadMedia"], st.Requests["ims.create"]
	if throttled == 0 {
		t.Fatalf("the emulator throttled nothing (%d calls): the test shows nothing", calls)
	}
	// Unpaced, each throttled file tries again a second later: over 150 throttled answers
	// here. Paced, the client keeps near the service's rate.
	if throttled > 40 {
		t.Errorf("%d of %d calls throttled: the client does not slow down to the service's pace", throttled, calls)
	}
	series := scrape(t, metricsURL.FindStringSubmatch(m.output())[1])
	if series[`imsfs_ims_throttled_total{action="CreateUploadMedia"}`] != float64(throttled) {
		t.Errorf("imsfs_ims_throttled_total says %v, the emulator throttled %d", series[`imsfs_ims_throttled_total{action="CreateUploadMedia"}`], throttled)
	}
	figure(t, "40 files against CreateUploadMedia at 4 calls/s: all ready; %d calls, %d of them throttled", calls, throttled)
}

// TestUpdateMediaInfosOwnRules: the limits UpdateMediaInfo's reference gives in bytes are
// checked at setfattr once the asset is made (before, CreateUploadMedia's, in characters);
// a tag is at most 32 bytes; an update sends only what changed; and an image moved to cover/
// keeps its BusinessType (UpdateMediaInfo takes only subtitles, watermark, opening, ending or
// general) and gets its new title, with nothing refused.
func TestUpdateMediaInfosOwnRules(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	ready := filepath.Join(m.Dir, "video", "ready.mp4")
	os.WriteFile(ready, []byte("ready bytes"), 0o644)
	waitStatus(t, ready, "ready", 30*time.Second)
	long := strings.Repeat("é", 513) // 513 characters, 1,026 bytes
	setfattr := func(p, name, value string) string {
		out, _ := exec.Command("setfattr", "-n", name, "-v", value, p).CombinedOutput()
		return string(out)
	}
	if out := setfattr(ready, "user.ims.description", long); !strings.Contains(out, "Argument list too long") {
		t.Errorf("a description of 1,026 bytes on a made asset: %q, want E2BIG", out)
	}
	if out := setfattr(ready, "user.ims.tags", "short,"+strings.Repeat("t", 33)); !strings.Contains(out, "Argument list too long") {
		t.Errorf("a 33-byte tag: %q, want E2BIG", out)
	}
	if !strings.Contains(m.output(), "1026 bytes, UpdateMediaInfo takes at most 1024") || !strings.Contains(m.output(), "is 33 bytes, UpdateMediaInfo takes at most 32") {
		t.Errorf("the log does not say why:\n%s", m.output())
	}
	if out := setfattr(ready, "user.ims.description", "about it"); out != "" {
		t.Fatalf("a description: %s", out)
	}
	id := mediaIDOf(t, ready)
	deadline := time.Now().Add(30 * time.Second)
	for a, _ := emu.asset(t, id); a.Description != "about it"; a, _ = emu.asset(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("the asset's description: %q", a.Description)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !m.logged(`msg="asset updated" path=video/ready.mp4 id=1 media_id=`+id+` fields="description (8 bytes)"`, 10*time.Second) {
		t.Errorf("the update sent more than the description:\n%s", m.output())
	}

	// Before its asset is asked for, a field goes with CreateUploadMedia, which counts characters.
	m2 := startMount(t, emu, "", "--upload-delay", "1h")
	waiting := filepath.Join(m2.Dir, "video", "waiting.mp4")
	os.WriteFile(waiting, []byte("waiting"), 0o644)
	if out := setfattr(waiting, "user.ims.description", long); out != "" {
		t.Errorf("a description of 513 characters before the asset is made: %s", out)
	}

	img := filepath.Join(m.Dir, "image", "still.png")
	os.WriteFile(img, []byte("png bytes"), 0o644)
	waitStatus(t, img, "ready", 30*time.Second)
	imgID := mediaIDOf(t, img)
	cover := filepath.Join(m.Dir, "image", "cover", "poster.png")
	if err := os.Rename(img, cover); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for a, _ := emu.asset(t, imgID); a.Title != "poster"; a, _ = emu.asset(t, imgID) {
		if time.Now().After(deadline) {
			t.Fatalf("the image's asset after the rename: %+v", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a, _ := emu.asset(t, imgID); a.BusinessType != "default" {
		t.Errorf("the image's asset has BusinessType %q", a.BusinessType)
	}
	if e, _ := xattr(cover, "user.ims.error"); e != "" || strings.Contains(m.output(), "asset not updated") {
		t.Errorf("the rename of an image was refused: %q\n%s", e, m.output())
	}
}

// TestNoPathLeavesAnAssetWithoutBytes: CreateUploadMedia makes each asset but its answer is cut;
// then one file is removed, one rewritten and one renamed before the next try. Every asset that
// no file stands for is found by its tag and deleted: the emulator ends holding exactly the
// final files' assets.
func TestNoPathLeavesAnAssetWithoutBytes(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--faults", "ims.create=1:reset")
	m := startMount(t, emu, "")
	paths := []string{"video/removed.mp4", "video/rewritten.mp4", "video/renamed.mp4"}
	for _, p := range paths {
		if err := os.WriteFile(filepath.Join(m.Dir, p), []byte("first bytes of "+p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for emu.stats(t).Faults["ims.create"] < 3 || len(emu.assets(t)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the creations were not made and cut: %v, %d assets", emu.stats(t).Faults, len(emu.assets(t)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range paths {
		if s, _ := xattr(filepath.Join(m.Dir, p), "user.ims.status"); s != "creating" {
			t.Fatalf("%s after its creation answer was cut: %s", p, s)
		}
	}
	if err := os.Remove(filepath.Join(m.Dir, paths[0])); err != nil {
		t.Fatal(err)
	}
	rewritten := []byte("the bytes written again")
	if err := os.WriteFile(filepath.Join(m.Dir, paths[1]), rewritten, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(m.Dir, paths[2]), filepath.Join(m.Dir, "video/opening/moved.mp4")); err != nil {
		t.Fatal(err)
	}
	setFaults(t, emu, "")
	settled(t, emu, m, map[string][]byte{paths[1]: rewritten, "video/opening/moved.mp4": []byte("first bytes of " + paths[2])})
	if n := strings.Count(m.output(), "an asset found by its tag is deleted"); n != 3 {
		t.Errorf("%d assets found by their tag and deleted, want 3:\n%s", n, m.output())
	}
}

// TestARefusedRefreshOnResumeEndsReady: a mount killed mid-upload of an image resumes it; IMS
// refuses RefreshUploadMedia (as VOD documents for images): the upload starts over with a new
// asset for the same bytes, the first one is deleted, and the file ends ready with one asset.
func TestARefusedRefreshOnResumeEndsReady(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--faults", "oss.part=0:latency=300ms")
	cache := t.TempDir()
	m := startMount(t, emu, cache, "--part-size", "100KiB")
	p := filepath.Join(m.Dir, "image", "big.png")
	data := randomBytes(t, 2<<20)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for emu.stats(t).Requests["oss.part"] < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no parts sent: %v", emu.stats(t).Requests)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	exec.Command("umount", "-l", m.Dir).Run()
	setFaults(t, emu, "ims.refresh=1:InvalidParameter")
	m2 := startMount(t, emu, cache, "--part-size", "100KiB")
	settled(t, emu, m2, map[string][]byte{"image/big.png": data})
	if !strings.Contains(m2.output(), "RefreshUploadMedia refused new upload credentials") {
		t.Errorf("the resume did not meet a refused refresh:\n%s", m2.output())
	}
}
