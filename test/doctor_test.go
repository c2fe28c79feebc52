package test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorSaysWhatToFix: imsfs doctor against the emulator, with the right key, a wrong
// secret and no credentials at all: each line ok or FIX, exit 0 only when all are ok.
func TestDoctorSaysWhatToFix(t *testing.T) {
	emu := startEmulator(t)
	home := t.TempDir() // no ~/.aliyun/config.json
	doctor := func(env ...string) (int, string) {
		t.Helper()
		endpoint := emu.URL
		for _, kv := range env {
			if e, ok := strings.CutPrefix(kv, "ENDPOINT="); ok {
				endpoint = e
			}
		}
		cmd := exec.Command(imsfsBin, "doctor", "--endpoint", endpoint, "--cache-dir", filepath.Join(t.TempDir(), "cache"))
		cmd.Env = append(testEnv(), append([]string{"HOME=" + home}, env...)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, tt := range []struct {
		name string
		env  []string
		code int
		want []string
	}{
		{"the emulator's key", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret"}, 0,
			[]string{"ok   /dev/fuse opens", "ok   credentials from default/env (AccessKeyId emulat…)", "ok   IMS at " + emu.URL + " (region cn-shanghai) answered a signed call", "ok   clock: within", "not made yet (the mount makes it, mode 0700)"}},
		{"a wrong secret", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=wrong"}, 1,
			[]string{"FIX  IMS at " + emu.URL + " refused the AccessKey emulat…: SignatureDoesNotMatch", "doctor: 1 of 7 checks want a fix"}},
		{"no credentials", nil, 1,
			[]string{"FIX  credentials: none found: looked in the environment (no ALIBABA_CLOUD_ACCESS_KEY_ID), ~/.aliyun/config.json (none)", "--emulator",
				"--   IMS at " + emu.URL + " (region cn-shanghai): not asked: no credentials", "--   clock: not compared", "doctor: 1 of 7 checks want a fix (2 not checked)"}},
		{"an endpoint that does not answer", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret", "ENDPOINT=http://127.0.0.1:1"}, 1,
			[]string{"FIX  IMS at http://127.0.0.1:1 does not answer", "doctor: 1 of 7 checks want a fix (1 not checked)"}},
	} {
		code, out := doctor(tt.env...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d\n%s", tt.name, code, tt.code, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the output lacks %q:\n%s", tt.name, w, out)
			}
		}
		if strings.Contains(out, "emulator-secret") {
			t.Errorf("%s: the output shows the secret", tt.name)
		}
		// One line per check, each ok, FIX or -- (not checked), in words of imsfs's own; no line
		// that says ok of the endpoint before asking it.
		lines := strings.Split(strings.TrimSpace(out), "\n")
		checks := 0
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, "ok   "), strings.HasPrefix(l, "FIX  "), strings.HasPrefix(l, "--   "):
				checks++
			case strings.HasPrefix(l, "imsfs: doctor: "):
			default:
				t.Errorf("%s: a line that is no check: %q", tt.name, l)
			}
			if strings.HasPrefix(l, "ok   endpoint") || strings.Contains(l, "enviroment") || strings.Contains(l, "fileopen") {
				t.Errorf("%s: %q", tt.name, l)
			}
		}
		if checks != 7 {
			t.Errorf("%s: %d checks, want the same 7 every time:\n%s", tt.name, checks, out)
		}
	}
}
