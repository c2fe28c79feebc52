package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEachFileEndsInOneLogLine: with --log-format json, each file's outcome is one line with
// its path, MediaId, size, durations and tries: "asset ready" for one that took a second try,
// "upload failed" for one IMS could not prepare.
func TestEachFileEndsInOneLogLine(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "", "--log-format", "json")
	setFaults(t, emu, "oss.put=1:503")
	a := filepath.Join(m.Dir, "video", "a.mp4")
	if err := os.WriteFile(a, randomBytes(t, 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	waitXattrContains(t, a, "user.ims.error", "ServiceUnavailable", 30*time.Second)
	setFaults(t, emu, "")
	waitStatus(t, a, "ready", 60*time.Second)
	setFaults(t, emu, "media.ready=1:fail")
	b := filepath.Join(m.Dir, "video", "b.mp4")
	if err := os.WriteFile(b, randomBytes(t, 50<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, b, "failed", 60*time.Second)

	outcomes := map[string][]map[string]any{}
	for _, line := range strings.Split(m.output(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		if msg := l["msg"]; (msg == "asset ready" || msg == "upload failed") && l["path"] != nil {
			p := l["path"].(string)
			outcomes[p] = append(outcomes[p], l)
		}
	}
	check := func(p, msg string, size float64, minTries float64, more ...string) {
		t.Helper()
		ls := outcomes[p]
		if len(ls) != 1 {
			t.Fatalf("%s ends in %d outcome lines, want 1: %v", p, len(ls), ls)
		}
		l := ls[0]
		if l["msg"] != msg || l["media_id"] == "" || l["media_id"] == nil || l["size"] != size || l["tries"] == nil || l["tries"].(float64) < minTries {
			t.Errorf("%s: %v, want %q with media_id, size %v and at least %v tries", p, l, msg, size, minTries)
		}
		for _, k := range more {
			if l[k] == nil {
				t.Errorf("%s: %v lacks %s", p, l, k)
			}
		}
	}
	check("video/a.mp4", "asset ready", 100<<10, 2, "upload_took", "ready_took")
	check("video/b.mp4", "upload failed", 50<<10, 1, "err")
}

// waitXattrContains waits until attribute name of path holds want.
func waitXattrContains(t *testing.T, path, name, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for v, _ := xattr(path, name); !strings.Contains(v, want); v, _ = xattr(path, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s is %q after %v, want it to hold %q", name, path, v, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
