package test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var metricsURL = regexp.MustCompile(`msg="metrics served" url=(\S+)`)

// scrape reads the mount's /metrics into series → value ("name{labels}" as Prometheus prints it).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestMetricsCountWhatTheMountDoes: a scrape of --metrics-addr after two uploads, one of them
// tried again after a refused PUT, and a refused mkdir, counts each of them, and the requests
// the kernel made by operation and answer.
func TestMetricsCountWhatTheMountDoes(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "", "--metrics-addr", "127.0.0.1:0", "--upload-delay", "0s")
	match := metricsURL.FindStringSubmatch(m.output())
	if match == nil {
		t.Fatalf("the mount does not say where its metrics are:\n%s", m.output())
	}
	url := match[1]

	setFaults(t, emu, "oss.put=1:503")
	a := filepath.Join(m.Dir, "video", "a.mp4")
	if err := os.WriteFile(a, randomBytes(t, 300<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for e, _ := xattr(a, "user.ims.error"); !strings.Contains(e, "ServiceUnavailable"); e, _ = xattr(a, "user.ims.error") {
		if time.Now().After(deadline) {
			t.Fatalf("no refused try of a.mp4: %q", e)
		}
		time.Sleep(20 * time.Millisecond)
	}
	setFaults(t, emu, "")
	b := filepath.Join(m.Dir, "video", "b.mp4")
	if err := os.WriteFile(b, randomBytes(t, 200<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, "ready", 60*time.Second)
	waitStatus(t, b, "ready", 60*time.Second)
	if err := os.Mkdir(filepath.Join(m.Dir, "loose"), 0o755); err != syscall.EACCES && !os.IsPermission(err) {
		t.Fatalf("mkdir at the root: %v, want EACCES", err)
	}

	got := scrape(t, url)
	for series, want := range map[string]float64{
		`imsfs_files{status="ready"}`:                            2,
		`imsfs_files{status="queued"}`:                           0,
		`imsfs_upload_duration_seconds_count`:                    2,
		`imsfs_ready_duration_seconds_count`:                     2,
		`imsfs_upload_retries_total{code="ServiceUnavailable"}`:  1,
		`imsfs_fuse_refusals_total{errno="EACCES",op="mkdir"}`:   1,
		`imsfs_fuse_operations_total{errno="EACCES",op="mkdir"}`: 1,
		`imsfs_fuse_operations_total{errno="",op="create"}`:      2,
		`imsfs_queue_waiting_files`:                              0,
		`imsfs_queue_running_files`:                              0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (listed: %v), want %v", series, v, ok, want)
		}
	}
	if v := got["imsfs_upload_sent_bytes_total"]; v < 500<<10 {
		t.Errorf("imsfs_upload_sent_bytes_total = %v, want at least the 500 KiB of the two files", v)
	}
	// A write goes through imsfs only without passthrough; each file was looked up at least.
	if v := got[`imsfs_fuse_operations_total{errno="",op="lookup"}`]; v < 2 {
		t.Errorf("successful lookups counted: %v, want at least 2", v)
	}
	if v := got["imsfs_cache_bytes"]; v != 500<<10 {
		t.Errorf("imsfs_cache_bytes = %v, want %d", v, 500<<10)
	}
}
