package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBwlimitCapsUploads: --bwlimit is taken in rclone's syntax, from the command line and from
// the configuration file; a bad value stops the mount with exit 2 naming the flag (or the file's
// line); under a limit, files still go up, and imsfs status and the metrics say what the limit
// is now. (How fast the limit lets bytes through is make bench's to measure, not a test's.)
func TestBwlimitCapsUploads(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	for _, bad := range [][]string{{"--bwlimit", "fast"}, {"--bwlimit", "25:00,1M"}} {
		mnt := t.TempDir()
		cmd := exec.Command(imsfsBin, append([]string{"mount", "--endpoint", emu.URL, "--cache-dir", t.TempDir()}, append(bad, mnt)...)...)
		cmd.Env = append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET="+accountSecret)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "--bwlimit") {
			t.Errorf("imsfs mount %s: exit %d:\n%s", strings.Join(bad, " "), code, out)
		}
		if isMounted(mnt) {
			t.Errorf("imsfs mount %s mounted", strings.Join(bad, " "))
		}
	}
	conf := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(conf, []byte("bwlimit: 8Q\n"), 0o644)
	cmd := exec.Command(imsfsBin, "mount", "--config", conf, "--endpoint", emu.URL, "--cache-dir", t.TempDir(), t.TempDir())
	cmd.Env = append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET="+accountSecret)
	if out, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), conf+":1: bwlimit") {
		t.Errorf("bwlimit: 8Q in the file: exit %d:\n%s", cmd.ProcessState.ExitCode(), out)
	}

	// Every slot of the week at 2 MiB/s: a timetable that is one rate.
	os.WriteFile(conf, []byte("bwlimit: \"00:00,2M 12:00,2M\"\n"), 0o644)
	m := startMount(t, emu, "", "--config", conf, "--metrics-addr", "127.0.0.1:0", "--upload-delay", "0s")
	p := filepath.Join(m.Dir, "video", "limited.mp4")
	data := randomBytes(t, 3<<20)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p, "ready", 60*time.Second)
	out, err := exec.Command(imsfsBin, "status", m.Dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "uploads are limited (--bwlimit):") || !strings.Contains(string(out), "--bwlimit 00:00,2M 12:00,2M") || !strings.Contains(string(out), "at most 2.0 MiB/s now") {
		t.Errorf("imsfs status under --bwlimit: %v\n%s", err, out)
	}
	match := metricsURL.FindStringSubmatch(m.output())
	if match == nil {
		t.Fatalf("the mount does not say where its metrics are:\n%s", m.output())
	}
	if v := scrape(t, match[1])["imsfs_upload_bwlimit_bytes_per_second"]; v != 2<<20 {
		t.Errorf("imsfs_upload_bwlimit_bytes_per_second = %v, want %d", v, 2<<20)
	}
}
