package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stsKey asks the emulator for a temporary key of the account, as STS would hand one out.
func stsKey(t *testing.T, emu *emulatorProc) (id, secret, token string, expires time.Time) {
	t.Helper()
	resp, err := http.Post(emu.URL+"/_emulator/sts?ttl=1h", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var k struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil {
		t.Fatal(err)
	}
	return k.AccessKeyId, k.AccessKeySecret, k.SecurityToken, time.Now().Add(time.Hour).UTC()
}

// TestEveryKindOfCredentialsMounts: the credential chain's sources that can run on this machine
// each mount and upload, and imsfs doctor names the one used: the environment (a key, and a
// temporary key with its token), the Alibaba Cloud CLI's ~/.aliyun/config.json (its current
// profile, and one ALIBABA_CLOUD_PROFILE names, an AccessKey and an StsToken one, an External
// one that runs a command, and a RAM role to assume, whose STS AssumeRole call reaches the
// emulator through stsProxy), and ALIBABA_CLOUD_CREDENTIALS_URI. (An ECS instance role is read
// from the instance metadata address, which tests never reach; docs/credentials.md shows it.)
func TestEveryKindOfCredentialsMounts(t *testing.T) {
	emu := startEmulator(t)
	id, secret, token, expires := stsKey(t, emu)
	uri := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "AccessKeyId": id, "AccessKeySecret": secret,
			"SecurityToken": token, "Expiration": expires.Format("2006-01-02T15:04:05Z")})
	}))
	defer uri.Close()
	external := filepath.Join(t.TempDir(), "creds.sh")
	os.WriteFile(external, []byte(fmt.Sprintf("#!/bin/sh\necho '{\"mode\":\"StsToken\",\"access_key_id\":\"%s\",\"access_key_secret\":\"%s\",\"sts_token\":\"%s\"}'\n", id, secret, token)), 0o700)
	cliConfig := fmt.Sprintf(`{"current": "work", "profiles": [
  {"name": "work", "mode": "AK", "access_key_id": "emulator", "access_key_secret": %q, "region_id": "cn-shanghai"},
  {"name": "temp", "mode": "StsToken", "access_key_id": %q, "access_key_secret": %q, "sts_token": %q, "region_id": "cn-shanghai"},
  {"name": "tool", "mode": "External", "process_command": %q, "region_id": "cn-shanghai"},
  {"name": "role", "mode": "RamRoleArn", "access_key_id": "emulator", "access_key_secret": %q,
   "ram_role_arn": "acs:ram::1234567890123456:role/ims-ingest", "ram_session_name": "imsfs-test", "expired_seconds": 3600, "region_id": "cn-shanghai"}]}`,
		accountSecret, id, secret, token, external, accountSecret)
	proxyEnv, assumed := stsProxy(t, emu.URL)

	for _, c := range []struct {
		name  string
		env   []string
		cli   bool   // write ~/.aliyun/config.json
		says  string // what doctor says of them
		mount bool
	}{
		{"environment", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + accountSecret}, false,
			"a long-term AccessKey from the environment", false},
		{"environment STS", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=" + id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + secret, "ALIBABA_CLOUD_SECURITY_TOKEN=" + token}, false,
			"a temporary STS key from the environment", false},
		{"CLI profile", nil, true, "a long-term AccessKey from the Alibaba Cloud CLI's profile work in ~/.aliyun/config.json", true},
		{"CLI profile by name", []string{"ALIBABA_CLOUD_PROFILE=temp"}, true, "a temporary STS key from the Alibaba Cloud CLI's profile temp", true},
		{"CLI profile running a command", []string{"ALIBABA_CLOUD_PROFILE=tool"}, true, "a temporary STS key from the Alibaba Cloud CLI's profile tool", false},
		{"credentials URI", []string{"ALIBABA_CLOUD_CREDENTIALS_URI=" + uri.URL}, false, "a temporary STS key from ALIBABA_CLOUD_CREDENTIALS_URI", true},
		{"RAM role", append([]string{"ALIBABA_CLOUD_PROFILE=role"}, proxyEnv...), true, "a RAM role assumed (STS AssumeRole) with the Alibaba Cloud CLI's profile role", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			if c.cli {
				os.MkdirAll(filepath.Join(home, ".aliyun"), 0o700)
				os.WriteFile(filepath.Join(home, ".aliyun", "config.json"), []byte(cliConfig), 0o600)
			}
			env := append([]string{"HOME=" + home}, c.env...)
			cmd := exec.Command(imsfsBin, "doctor", "--endpoint", emu.URL, "--cache-dir", filepath.Join(t.TempDir(), "cache"))
			cmd.Env = append(testEnv(), env...)
			out, _ := cmd.CombinedOutput()
			audit.addLog(t.Name(), "doctor", out)
			if !strings.Contains(string(out), c.says) || !strings.Contains(string(out), ") answered a signed call") {
				t.Errorf("doctor does not say %q, or the key was not accepted:\n%s", c.says, out)
			}
			if !c.mount {
				return
			}
			m := startMountEnv(t, emu, "", env)
			p := filepath.Join(m.Dir, "video", "cred.mp4")
			if err := os.WriteFile(p, randomBytes(t, 64<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, p, "ready", 60*time.Second)
		})
	}
	if assumed.Load() == 0 {
		t.Error("no AssumeRole call went to STS: the RAM role was not what the mount used")
	}
}
