package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMountWithTemporaryKeys mounts with STS-style credentials (key, secret and token in the
// environment, as the default credential chain reads them): IMS must take the token.
func TestMountWithTemporaryKeys(t *testing.T) {
	emu := startEmulator(t)
	resp, err := http.Post(emu.URL+"/_emulator/sts?ttl=1h", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
	err = json.NewDecoder(resp.Body).Decode(&k)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := startMountEnv(t, emu, "", []string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + k.AccessKeyId, "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + k.AccessKeySecret,
		"ALIBABA_CLOUD_SECURITY_TOKEN=" + k.SecurityToken,
	})
	src := randomFile(t, "sts.mp4", 1<<20)
	run(t, "cp", src, filepath.Join(m.Dir, "video")+"/")
	waitStatus(t, filepath.Join(m.Dir, "video", "sts.mp4"), "ready", 60*time.Second)
}

// TestUploadFinishesAcrossAnEmulatorRestart kills the cloud (-9) while a multipart upload is
// under way and starts it again on the same address and data: the mount retries, resumes and
// finishes, and the asset holds exactly the file.
func TestUploadFinishesAcrossAnEmulatorRestart(t *testing.T) {
	data := t.TempDir()
	// Slow parts down so that the kill lands in the middle of the upload.
	emu := startEmulatorOn(t, data, "127.0.0.1:0", "--faults", "oss.part=0:latency=500ms")
	m := startMount(t, emu, "")
	src := randomFile(t, "restart.mp4", 40<<20)
	run(t, "cp", src, filepath.Join(m.Dir, "video")+"/")
	deadline := time.Now().Add(30 * time.Second)
	for emu.stats(t).Requests["oss.part"] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no part was sent within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	emu.cmd.Process.Signal(syscall.SIGKILL)
	<-emu.done

	again := startEmulatorOn(t, data, strings.TrimPrefix(emu.URL, "http://"))
	p := filepath.Join(m.Dir, "video", "restart.mp4")
	waitStatus(t, p, "ready", 90*time.Second)
	id, _ := xattr(p, "user.ims.media_id")
	var found bool
	for _, a := range again.assets(t) {
		if a.MediaId == id {
			found = true
			if a.MD5 != md5File(t, src) || a.Status != "Normal" {
				t.Fatalf("after the restart the asset is %+v, want Normal with MD5 %s", a, md5File(t, src))
			}
		}
	}
	if !found {
		t.Fatalf("the restarted emulator does not hold %s", id)
	}
}

// TestMountUploadsThroughInjectedFaults: 200 MiB across files, a fifth of every IMS and OSS
// call failing (errors, throttling, connections cut mid-body), and upload credentials that
// live three seconds. Every file must still arrive whole; the figures are printed.
func TestMountUploadsThroughInjectedFaults(t *testing.T) {
	// Every kind of call fails a fifth of the time: parts and PUTs by a cut connection, the
	// others by an error answer. (One rule per kind: two matching rules would each draw.)
	spec := "oss.part=0.2:reset,oss.put=0.2:reset,ims.create=0.2:Throttling"
	for _, p := range []string{"oss.initiate", "oss.complete", "oss.abort", "oss.listparts", "oss.listuploads", "oss.get", "oss.head", "oss.delete"} {
		spec += "," + p + "=0.2:500"
	}
	for _, p := range []string{"ims.refresh", "ims.get", "ims.update", "ims.delete", "ims.list"} {
		spec += "," + p + "=0.2:ServiceUnavailable"
	}
	// Starting a multipart upload takes 2.5 s: its first parts find the credentials of 3 s in
	// their last second, when they are renewed, however fast the machine.
	spec = strings.Replace(spec, "oss.initiate=0.2:500", "oss.initiate=0.2:500:latency=2500ms", 1)
	emu := startEmulator(t, "--sts-ttl", "3s", "--fault-seed", "7", "--faults", spec)
	m := startMount(t, emu, "")
	var srcs []string
	for i, size := range []int{64 << 20, 48 << 20, 32 << 20, 24 << 20, 16 << 20, 8 << 20, 4 << 20, 2 << 20, 1 << 20, 1 << 20} {
		srcs = append(srcs, randomFile(t, fmt.Sprintf("f%02d.mp4", i), size))
	}
	start := time.Now()
	for _, src := range srcs {
		run(t, "cp", src, filepath.Join(m.Dir, "video")+"/")
	}
	for _, src := range srcs {
		p := filepath.Join(m.Dir, "video", filepath.Base(src))
		waitStatus(t, p, "ready", 300*time.Second)
		id, _ := xattr(p, "user.ims.media_id")
		a, ok := emu.asset(t, id)
		if !ok || a.MD5 != md5File(t, src) || a.Status != "Normal" {
			t.Errorf("%s: asset %+v, want Normal with MD5 %s", p, a, md5File(t, src))
		}
	}
	st := emu.stats(t)
	var faults int64
	for _, n := range st.Faults {
		faults += n
	}
	figure(t, "%d files, 200 MiB, ready in %v; faults injected %d (%v), so as many tries again; "+
		"credential refreshes %d; requests %v", len(srcs), time.Since(start).Round(time.Second), faults, st.Faults,
		st.Requests["ims.refresh"], st.Requests)
	if faults == 0 || st.Requests["ims.refresh"] == 0 {
		t.Errorf("the test did not test: %d faults, %d refreshes", faults, st.Requests["ims.refresh"])
	}
}

// TestUploadOutlivesItsCredentials: upload credentials that live two seconds, and parts slowed
// to a second each, so that the third wave of parts cannot start before they expire: they are
// renewed between parts (RefreshUploadMedia) and the same upload goes on.
func TestUploadOutlivesItsCredentials(t *testing.T) {
	emu := startEmulator(t, "--sts-ttl", "2s", "--faults", "oss.part=0:latency=1s")
	m := startMount(t, emu, "", "--transfers", "1")
	src := randomFile(t, "long.mp4", 80<<20) // 10 parts, 4 at a time: 3 waves of at least 1 s
	run(t, "cp", src, filepath.Join(m.Dir, "video")+"/")
	p := filepath.Join(m.Dir, "video", "long.mp4")
	waitStatus(t, p, "ready", 120*time.Second)
	st := emu.stats(t)
	if st.Requests["ims.refresh"] == 0 {
		t.Errorf("an upload that outlived its credentials made no RefreshUploadMedia call: %v", st.Requests)
	}
	if st.Requests["oss.initiate"] != 1 || st.Requests["ims.create"] != 1 {
		t.Errorf("the upload did not go on as one: %v", st.Requests)
	}
	figure(t, "80 MiB with credentials of 2 s: %d credential refreshes", st.Requests["ims.refresh"])
	id, _ := xattr(p, "user.ims.media_id")
	if a, _ := emu.asset(t, id); a.MD5 != md5File(t, src) {
		t.Errorf("asset MD5 %s, want %s", a.MD5, md5File(t, src))
	}
}

// TestLostCreationAnswersLeaveNoOrphans cuts half of the CreateUploadMedia answers after the
// asset was made: the mount must find those assets by their tag and use them, so that the
// emulator ends with exactly one asset per file.
func TestLostCreationAnswersLeaveNoOrphans(t *testing.T) {
	emu := startEmulator(t, "--fault-seed", "3", "--faults", "ims.create=0.5:reset")
	m := startMount(t, emu, "")
	want := map[string][]byte{}
	for i := range 8 {
		src := randomFile(t, fmt.Sprintf("c%d.mp4", i), 100<<10)
		data, _ := os.ReadFile(src)
		p := fmt.Sprintf("video/c%d.mp4", i)
		if err := os.WriteFile(filepath.Join(m.Dir, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
		want[p] = data
	}
	settled(t, emu, m, want)
	st := emu.stats(t)
	if st.Faults["ims.create"] == 0 {
		t.Fatal("no creation answer was cut")
	}
	figure(t, "%d of %d creation answers cut; %d assets held for 8 files", st.Faults["ims.create"], st.Requests["ims.create"], len(emu.assets(t)))
	for p := range want {
		if u, _ := xattr(filepath.Join(m.Dir, p), "user.ims.file_url"); u == "" {
			t.Errorf("%s has no file_url", p)
		}
	}
}
