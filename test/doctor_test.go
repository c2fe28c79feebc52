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
		cmd := exec.Command(imsfsBin, "doctor", "--endpoint", emu.URL, "--cache-dir", filepath.Join(t.TempDir(), "cache"))
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
			[]string{"ok   /dev/fuse opens", "ok   credentials from default/env (AccessKeyId emulat…)", "ok   IMS answered a signed call", "ok   clock: within", "not made yet (the mount makes it, mode 0700)"}},
		{"a wrong secret", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=wrong"}, 1,
			[]string{"FIX  IMS refused the AccessKey emulat…: SignatureDoesNotMatch", "doctor: 1 of 8 checks want a fix"}},
		{"no credentials", nil, 1,
			[]string{"FIX  credentials: none found: set ALIBABA_CLOUD_ACCESS_KEY_ID", "--emulator"}},
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
	}
}
