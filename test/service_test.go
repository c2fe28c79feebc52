package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTheMountChecksItsKeyAtStart: no credentials, or a key IMS refuses, stop the mount at
// start with what to do; an endpoint that does not answer does not (files wait in the queue).
func TestTheMountChecksItsKeyAtStart(t *testing.T) {
	requireFUSE(t)
	emu := startEmulator(t)
	home := t.TempDir() // no ~/.aliyun/config.json
	for _, tc := range []struct {
		name string
		env  []string
		says []string
	}{
		{"no credentials", []string{"HOME=" + home},
			[]string{"no Alibaba Cloud credentials", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "~/.aliyun/config.json", "--emulator"}},
		{"a wrong secret", []string{"HOME=" + home, "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=not-the-secret"},
			[]string{"refused the AccessKey emulat", "SignatureDoesNotMatch", "Check the key pair"}},
		{"an unknown key", []string{"HOME=" + home, "ALIBABA_CLOUD_ACCESS_KEY_ID=LTAInobody", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=x"},
			[]string{"InvalidAccessKeyId.NotFound"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := start(t, "mount", tc.env, "mount", "--endpoint", emu.URL, "--cache-dir", t.TempDir(), dir)
			if err := p.waitExit(t, 30*time.Second); err == nil {
				t.Fatal("the mount started")
			}
			out := p.output()
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("it says:\n%s\nwant %q in it", out, s)
				}
			}
			if strings.Contains(out, "not-the-secret") || strings.Contains(out, "169.254") {
				t.Errorf("it echoes the secret or an instance-metadata address:\n%s", out)
			}
			if isMounted(dir) {
				t.Error("it mounted")
			}
		})
	}
	t.Run("an endpoint that does not answer", func(t *testing.T) {
		m := startMountEnv(t, &emulatorProc{URL: "http://127.0.0.1:1"}, "", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret"})
		if !strings.Contains(m.output(), "IMS does not answer; mounting anyway") {
			t.Errorf("no warning:\n%s", m.output())
		}
		p := filepath.Join(m.Dir, "video", "waits.mp4")
		if err := os.WriteFile(p, []byte("waits in the queue"), 0o644); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			e, _ := xattr(p, "user.ims.error")
			if strings.Contains(e, "next at") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no retry said in user.ims.error: %q", e)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if s, _ := xattr(p, "user.ims.status"); s != "creating" {
			t.Errorf("status %s, want creating (waiting to try again)", s)
		}
	})
}

// TestARegionWithoutCreateUploadMediaIsRefused: without --endpoint, only the three regions
// that have CreateUploadMedia are taken; a bare host is taken as an HTTPS endpoint.
func TestARegionWithoutCreateUploadMediaIsRefused(t *testing.T) {
	p := start(t, "mount", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=b"},
		"mount", "--region", "cn-hangzhou", "--cache-dir", t.TempDir(), t.TempDir())
	if err := p.waitExit(t, 30*time.Second); err == nil {
		t.Fatal("a mount in cn-hangzhou started")
	}
	if out := p.output(); !strings.Contains(out, "cn-shanghai, cn-beijing and cn-shenzhen") {
		t.Errorf("it says:\n%s", out)
	}
}
