package main

import (
	"encoding/json"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/imsfs/imsfs/uploader"
)

func TestResolveEndpoint(t *testing.T) {
	for _, tt := range []struct {
		endpoint, region, want, err string
	}{
		{"", "cn-shanghai", "https://ice.cn-shanghai.aliyuncs.com", ""},
		{"", "cn-beijing", "https://ice.cn-beijing.aliyuncs.com", ""},
		{"", "cn-shenzhen", "https://ice.cn-shenzhen.aliyuncs.com", ""},
		{"", "cn-hangzhou", "", "only in cn-shanghai, cn-beijing and cn-shenzhen"},
		{"", "ap-southeast-1", "", "only in cn-shanghai, cn-beijing and cn-shenzhen"},
		{"ice.cn-beijing.aliyuncs.com", "cn-hangzhou", "https://ice.cn-beijing.aliyuncs.com", ""},
		{"http://127.0.0.1:9000", "cn-shanghai", "http://127.0.0.1:9000", ""},
	} {
		got, err := resolveEndpoint(tt.endpoint, tt.region)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("resolveEndpoint(%q, %q) = %q, %v; want %q, %q", tt.endpoint, tt.region, got, err, tt.want, tt.err)
		}
	}
	if maskKey("LTAI5tAbCdEfGh") != "LTAI5t…" || maskKey("abc") != "abc" {
		t.Errorf("maskKey: %s", maskKey("LTAI5tAbCdEfGh"))
	}
}

// runCLI runs imsfs with args and returns its exit status and what it wrote.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(t.Context(), append([]string{"imsfs"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTheCommandLine(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		code     int
		out, err string // what the output must hold
		notErr   string // what the error output must not hold
	}{
		{[]string{"help"}, 0, "COMMANDS:", "", ""},
		{[]string{"help", "mount"}, 0, "--cache-dir", "", ""},
		{[]string{"mount", "--help"}, 0, "--transfers", "", ""},
		{[]string{"--version"}, 0, "imsfs version", "", ""},
		{[]string{"frobnicate"}, 2, "", `no command "frobnicate"; ` + "`imsfs help` lists them", ""},
		{[]string{"mount", "--transfers", "x", "/mnt"}, 2, "", "imsfs mount: invalid value \"x\" for flag -transfers", "USAGE:"},
		{[]string{"mount", "--bogus", "/mnt"}, 2, "", "flag provided but not defined: -bogus", "USAGE:"},
		{[]string{"mount", "--transfers", "-1", t.TempDir()}, 2, "", "--transfers -1: want 1 or more", ""},
		{[]string{"mount", "--upload-delay", "-1s", t.TempDir()}, 2, "", "durations of 0 or more", ""},
		{[]string{"mount"}, 2, "", "imsfs mount takes one MOUNTPOINT, got 0 arguments", ""},
		{[]string{"mount", "--log-level", "loud", t.TempDir()}, 2, "", `--log-level "loud": use debug, info, warn or error`, ""},
		{[]string{"mount", "--log-format", "xml", t.TempDir()}, 2, "", `--log-format "xml": use text or json`, ""},
		{[]string{"retry"}, 2, "", "imsfs retry takes one or more PATHs", ""},
		{[]string{"wait"}, 2, "", "imsfs wait takes one or more PATHs", ""},
		{[]string{"url"}, 2, "", "imsfs url takes one PATH", ""},
		{[]string{"doctor", "now"}, 2, "", "imsfs doctor takes no arguments", ""},
		{[]string{"help", "doctor"}, 0, "ok, or FIX with what to do", "", ""},
		{[]string{"url", "--expires", "48h", "x"}, 2, "", "--expires 48h0m0s: want 1s to 24h", ""},
		{[]string{"wait", os.TempDir()}, 1, "", "not in an imsfs mount", "no data available"},
		{[]string{"retry", os.TempDir()}, 1, "", "not in an imsfs mount", ""},
		{[]string{"status", os.TempDir()}, 1, "", "not in an imsfs mount", ""},
		{[]string{"mount", "--region", "cn-hangzhou", t.TempDir()}, 1, "", "only in cn-shanghai, cn-beijing and cn-shenzhen", ""},
		{[]string{"samba-conf", "/srv/ims"}, 0, "vfs objects = catia fruit streams_xattr", "", ""},
		{[]string{"samba-conf", "--name", "media", "/srv/ims"}, 0, "[media]\n   path = /srv/ims", "", ""},
		{[]string{"samba-conf"}, 2, "", "imsfs samba-conf takes one MOUNTPOINT", ""},
	} {
		code, out, errOut := runCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) || tt.notErr != "" && strings.Contains(errOut, tt.notErr) {
			t.Errorf("imsfs %s: exit %d, out %q, err %q; want exit %d, out with %q, err with %q and without %q",
				strings.Join(tt.args, " "), code, out, errOut, tt.code, tt.out, tt.err, tt.notErr)
		}
	}
	_, out, _ := runCLI(t, "wait", "--help")
	if n := strings.Count(out, "default:"); n != 1 || !strings.Contains(out, "(default: wait for ever)") {
		t.Errorf("wait --help shows %d defaults:\n%s", n, out)
	}
	_, out, _ = runCLI(t, "emulator", "--help")
	if strings.Contains(out, "syntax below") {
		t.Errorf("emulator --help points below for its syntax, which is above:\n%s", out)
	}
}

func TestStatusRows(t *testing.T) {
	list := []uploader.FileStatus{
		{Path: "video/a.mp4", Status: "writing", Total: 3 << 20},
		{Path: "video/long name.mp4", Status: "uploading", Sent: 1 << 30, Total: 1 << 30},
		{Path: "image/b.png", Status: "failed", Error: "InvalidParameter:\nline two"},
		{Path: "mine", Status: "refused", Error: "mkdir EACCES: folders can be made only inside a mapped folder"},
	}
	var b strings.Builder
	printStatus(&b, list, false)
	out := b.String()
	for _, want := range []string{"3.0 MiB written", "1.0 GiB/1.0 GiB, completing", "InvalidParameter: line two", "recently refused:", "mkdir EACCES"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	if i, j := strings.Index(lines[0], "video/"), strings.Index(lines[1], "video/"); i != j || i < 0 {
		t.Errorf("the paths are not aligned:\n%s", out)
	}
	if got := notReady(list[:1]); got != "1 file not ready" {
		t.Errorf("notReady: %q", got)
	}
	if got := notReady(list); got != "3 files not ready" {
		t.Errorf("notReady: %q", got)
	}
}

// TestLogger: --log-format json writes one object a line; --log-level drops what is below it.
func TestLogger(t *testing.T) {
	var out strings.Builder
	log, err := logger(&out, "warn", "json", false)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("asset ready", "path", "video/a.mp4")
	log.Warn("upload try failed", "path", "video/b.mp4")
	var line struct{ Level, Msg, Path string }
	if err := json.Unmarshal([]byte(out.String()), &line); err != nil || line.Level != "WARN" || line.Path != "video/b.mp4" {
		t.Errorf("json log at warn: %q (%v)", out.String(), err)
	}
	out.Reset()
	log, _ = logger(&out, "", "text", true)
	log.Debug("CreateUploadMedia", "type", "video")
	if !strings.Contains(out.String(), "level=DEBUG msg=CreateUploadMedia type=video") {
		t.Errorf("text log with --debug: %q", out.String())
	}
}

// TestVersionNamesWhatWasBuilt: what make build stamps; else the module's version; else the
// revision and its date; "(devel)" only when nothing is known.
func TestVersionNamesWhatWasBuilt(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "0af7cf9aabbccddeeff"}, {Key: "vcs.time", Value: "2026-12-02T01:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		stamped string
		info    *debug.BuildInfo
		want    string
	}{
		{"v0.3.0-12-g0af7cf9", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "v0.3.0-12-g0af7cf9"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: rev}, "devel-0af7cf9aabbc-dirty (2026-12-02T01:00:00Z)"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{"", nil, "(devel)"},
	} {
		if got := versionOf(tc.stamped, tc.info); got != tc.want {
			t.Errorf("versionOf(%q, %+v) = %q, want %q", tc.stamped, tc.info, got, tc.want)
		}
	}
}
