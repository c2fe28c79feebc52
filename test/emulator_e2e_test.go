package test

import (
	"encoding/json"
	"net/http"
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

// TestMountUploadsThroughInjectedFaults: errors, throttling and cut connections on a share of
// requests, with a fixed seed; every file still arrives whole.
func TestMountUploadsThroughInjectedFaults(t *testing.T) {
	emu := startEmulator(t, "--fault-seed", "7", "--faults",
		"oss.part=0.2:500,oss.put=0.2:reset,ims.create=0.2:Throttling,oss.complete=0.2:503,ims.get=0.2:ServiceUnavailable")
	m := startMount(t, emu, "")
	srcs := []string{randomFile(t, "big.mp4", 40<<20), randomFile(t, "a.mp4", 1<<20), randomFile(t, "b.mp4", 2<<20), randomFile(t, "c.mp4", 300<<10)}
	for _, src := range srcs {
		run(t, "cp", src, filepath.Join(m.Dir, "video")+"/")
	}
	for _, src := range srcs {
		p := filepath.Join(m.Dir, "video", filepath.Base(src))
		waitStatus(t, p, "ready", 120*time.Second)
		id, _ := xattr(p, "user.ims.media_id")
		for _, a := range emu.assets(t) {
			if a.MediaId == id && a.MD5 != md5File(t, src) {
				t.Errorf("%s: asset MD5 %s, want %s", p, a.MD5, md5File(t, src))
			}
		}
	}
	st := emu.stats(t)
	if st.Faults["oss.part"]+st.Faults["oss.put"]+st.Faults["ims.create"] == 0 {
		t.Errorf("no fault was injected: %+v", st)
	}
	t.Logf("faults injected: %v", st.Faults)
}

// TestUploadOutlivesItsCredentials: upload credentials that expire after 2 s, and parts slow
// enough that a 40 MiB upload takes longer; OSS refuses the stale token and the mount must
// refresh it (RefreshUploadMedia) and go on.
func TestUploadOutlivesItsCredentials(t *testing.T) {
	emu := startEmulator(t, "--sts-ttl", "2s", "--faults", "oss.part=0:latency=1500ms")
	m := startMount(t, emu, "", "--transfers", "1")
	src := randomFile(t, "long.mp4", 40<<20)
	run(t, "cp", src, filepath.Join(m.Dir, "video")+"/")
	p := filepath.Join(m.Dir, "video", "long.mp4")
	waitStatus(t, p, "ready", 120*time.Second)
	if st := emu.stats(t); st.Requests["ims.refresh"] == 0 {
		t.Errorf("the upload outlived its 2 s credentials without a RefreshUploadMedia: %v", st.Requests)
	}
	id, _ := xattr(p, "user.ims.media_id")
	for _, a := range emu.assets(t) {
		if a.MediaId == id && a.MD5 != md5File(t, src) {
			t.Errorf("asset MD5 %s, want %s", a.MD5, md5File(t, src))
		}
	}
}
