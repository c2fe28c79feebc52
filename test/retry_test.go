package test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRetryCommand: a file whose upload IMS refused ends failed; once the cause is gone,
// `imsfs retry PATH` uploads it.
func TestRetryCommand(t *testing.T) {
	emu := startEmulator(t, "--faults", "ims.create=1:InvalidParameter")
	m := startMount(t, emu, "")
	p := filepath.Join(m.Dir, "video", "refused.mp4")
	os.WriteFile(p, []byte("refused at first"), 0o644)
	waitStatus(t, p, "failed", 30*time.Second)
	if e, _ := xattr(p, "user.ims.error"); !strings.Contains(e, "InvalidParameter") {
		t.Fatalf("user.ims.error %q does not give the server's code", e)
	}
	req, _ := http.NewRequest(http.MethodDelete, emu.URL+"/_emulator/faults", nil)
	if _, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(imsfsBin, "retry", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "queued") {
		t.Fatalf("imsfs retry: %v %s", err, out)
	}
	waitStatus(t, p, "ready", 30*time.Second)
	out, err = exec.Command(imsfsBin, "retry", p).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nothing to retry") {
		t.Fatalf("imsfs retry of a ready file: %v %s, want exit 1 and nothing to retry", err, out)
	}
	out, err = exec.Command(imsfsBin, "retry", os.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not in an imsfs mount") {
		t.Fatalf("imsfs retry outside a mount: %v %s", err, out)
	}
}

// TestFailedUploadsRetryWhenTheConfigChanges: a temporary key that expires while the mount runs
// makes its uploads fail (IMS refuses the key); the next mount, with another key, tries them
// again by itself.
func TestFailedUploadsRetryWhenTheConfigChanges(t *testing.T) {
	emu := startEmulator(t)
	cache := t.TempDir()
	resp, err := http.Post(emu.URL+"/_emulator/sts?ttl=3s", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
	err = json.NewDecoder(resp.Body).Decode(&k)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := startMountEnv(t, emu, cache, []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=" + k.AccessKeyId,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + k.AccessKeySecret, "ALIBABA_CLOUD_SECURITY_TOKEN=" + k.SecurityToken})
	time.Sleep(4 * time.Second) // the key expires
	p := filepath.Join(m.Dir, "video", "expired-key.mp4")
	os.WriteFile(p, []byte("first with a key that expired"), 0o644)
	waitStatus(t, p, "failed", 30*time.Second)
	if e, _ := xattr(p, "user.ims.error"); !strings.Contains(e, "InvalidSecurityToken.Expired") {
		t.Errorf("the error does not name the refusal: %q", e)
	}
	run(t, "umount", m.Dir)
	if err := m.waitExit(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	m2 := startMount(t, emu, cache)
	waitStatus(t, filepath.Join(m2.Dir, "video", "expired-key.mp4"), "ready", 30*time.Second)
	if !strings.Contains(m2.output(), "the configuration changed: trying a failed upload again") {
		t.Error("the mount does not say why it tried the failed upload again")
	}
}

// TestASecondMountOnTheSameCacheIsRefused: the store lock keeps two mounts from sharing (and
// corrupting) one cache directory.
func TestASecondMountOnTheSameCacheIsRefused(t *testing.T) {
	emu := startEmulator(t)
	cache := t.TempDir()
	startMount(t, emu, cache)
	dir := t.TempDir()
	cmd := exec.Command(imsfsBin, "mount", "--endpoint", emu.URL, "--cache-dir", cache, dir)
	cmd.Env = append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another imsfs process") {
		t.Fatalf("a second mount on the same cache: %v\n%s", err, out)
	}
	if isMounted(dir) {
		t.Fatal("the second mount mounted")
	}
}

// TestUnmountWithUploadsPendingAndRemount: uploads that do not finish within --drain-timeout
// are left, counted in the log, and finished by the next mount.
func TestUnmountWithUploadsPendingAndRemount(t *testing.T) {
	emu := startEmulator(t, "--faults", "oss.part=0:latency=1s")
	cache := t.TempDir()
	m := startMount(t, emu, cache, "--drain-timeout", "500ms")
	var srcs []string
	for _, name := range []string{"p1.mp4", "p2.mp4", "p3.mp4"} {
		src := randomFile(t, name, 40<<20)
		run(t, "cp", src, filepath.Join(m.Dir, "video", name))
		srcs = append(srcs, src)
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	if err := m.waitExit(t, 60*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	if !strings.Contains(m.output(), "uploads left for the next mount") {
		t.Fatalf("the mount does not say how many uploads it left:\n%s", m.output())
	}
	m2 := startMount(t, emu, cache)
	for _, src := range srcs {
		p := filepath.Join(m2.Dir, "video", filepath.Base(src))
		waitStatus(t, p, "ready", 120*time.Second)
		if a, _ := emu.asset(t, mediaIDOf(t, p)); a.MD5 != md5File(t, src) {
			t.Errorf("%s: asset MD5 %s, want %s", p, a.MD5, md5File(t, src))
		}
	}
}

// TestStatusAndWait: `imsfs status` lists what is not ready, with progress; `imsfs wait`
// blocks until files are ready (0), or says why not (1: failed or skipped; 2: --timeout).
func TestStatusAndWait(t *testing.T) {
	emu := startEmulator(t, "--faults", "oss.part=0:latency=500ms")
	m := startMount(t, emu, "")
	p := filepath.Join(m.Dir, "video", "slow.mp4")
	run(t, "cp", randomFile(t, "slow.mp4", 40<<20), p)
	out, err := exec.Command(imsfsBin, "status", "--json", m.Dir).CombinedOutput()
	if err != nil {
		t.Fatalf("imsfs status: %v %s", err, out)
	}
	var list []struct {
		Path, Status string
		Total        int64
	}
	if err := json.Unmarshal(out, &list); err != nil || len(list) != 1 || list[0].Path != "video/slow.mp4" || list[0].Total != 40<<20 {
		t.Fatalf("imsfs status --json while uploading: %s (%v)", out, err)
	}
	if out, err := exec.Command(imsfsBin, "wait", "--timeout", "100ms", p).CombinedOutput(); exitCode(err) != 3 {
		t.Fatalf("imsfs wait --timeout 100ms on an upload of seconds: %v %s, want exit 3", err, out)
	}
	out, err = exec.Command(imsfsBin, "wait", "--timeout", "120s", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ready") {
		t.Fatalf("imsfs wait: %v %s", err, out)
	}
	if out, err := exec.Command(imsfsBin, "status", filepath.Join(m.Dir, "video")).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("imsfs status with everything ready: %v %q, want nothing", err, out)
	}
	skipped := filepath.Join(m.Dir, "video", "notes")
	os.WriteFile(skipped, []byte("no extension"), 0o644)
	if out, err := exec.Command(imsfsBin, "wait", skipped).CombinedOutput(); exitCode(err) != 1 || !strings.Contains(string(out), "extension") {
		t.Fatalf("imsfs wait on a skipped file: %v %s, want exit 1 and the reason", err, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
