package test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// secretAudit is the grep over a whole test run that no secret reaches a log: every imsfs
// process a test starts (but the emulator, which is the service) leaves its output here, every
// emulator the keys it handed out, and TestMain fails the run if any of those keys, or the
// account secret the mounts are given, shows in any output.
type secretAudit struct {
	mu      sync.Mutex
	logs    *os.File          // every process's output, each after a "=== test: process" line
	secrets map[string]string // secret → what it is, for the failure message
	bytes   int64
	procs   int
}

// audit is the run's: tests add to it from their cleanups, TestMain checks it.
var audit secretAudit

// accountSecret is the AccessKeySecret the tests give the mounts (see startMount).
const accountSecret = "emulator-secret"

func (a *secretAudit) open(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	a.logs, a.secrets = f, map[string]string{accountSecret: "the account's AccessKeySecret"}
	return nil
}

// addLog keeps the output of process name, run by test.
func (a *secretAudit) addLog(test, name string, data []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.logs == nil {
		return
	}
	fmt.Fprintf(a.logs, "\n=== %s: %s\n", test, name)
	a.logs.Write(data)
	a.bytes += int64(len(data))
	a.procs++
}

// addKeys reads the temporary keys an emulator handed out from its journal in dataDir.
func (a *secretAudit) addKeys(dataDir string) {
	f, err := os.Open(filepath.Join(dataDir, "sts.jsonl"))
	if err != nil {
		return // it handed out none
	}
	defer f.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.secrets == nil {
		return
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			ID  string
			Key *struct{ Secret, Token string }
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Key == nil {
			continue
		}
		if e.Key.Secret != "" {
			a.secrets[e.Key.Secret] = "the AccessKeySecret of upload key " + e.ID
		}
		if e.Key.Token != "" {
			a.secrets[e.Key.Token] = "the SecurityToken of upload key " + e.ID
		}
	}
}

// check reads every output kept back and returns one line per secret found, with the test and
// process whose output showed it, and a summary of what was searched.
func (a *secretAudit) check() (found []string, summary string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.logs == nil {
		return nil, "", nil
	}
	data, err := os.ReadFile(a.logs.Name())
	if err != nil {
		return nil, "", err
	}
	found = findSecrets(data, a.secrets)
	return found, fmt.Sprintf("%d secrets handed out or given, searched for in %.1f MiB of output of %d imsfs processes", len(a.secrets), float64(a.bytes)/(1<<20), a.procs), nil
}

// findSecrets looks for every secret in data in one pass: the first 8 bytes at each offset are
// looked up among the secrets' first 8 (a run of thousands of keys over many MiB stays linear).
func findSecrets(data []byte, secrets map[string]string) []string {
	byPrefix := map[uint64][]string{}
	for s := range secrets {
		if len(s) < 8 {
			panic(fmt.Sprintf("secret audit: a secret of %d bytes is too short to look for", len(s)))
		}
		k := binary.LittleEndian.Uint64([]byte(s))
		byPrefix[k] = append(byPrefix[k], s)
	}
	seen := map[string]bool{}
	var found []string
	for i := 0; i+8 <= len(data); i++ {
		for _, s := range byPrefix[binary.LittleEndian.Uint64(data[i:])] {
			if !bytes.HasPrefix(data[i:], []byte(s)) || seen[s] {
				continue
			}
			seen[s] = true
			where := "?"
			if h := bytes.LastIndex(data[:i], []byte("\n=== ")); h >= 0 {
				end := bytes.IndexByte(data[h+1:], '\n')
				where = strings.TrimPrefix(string(data[h+1:h+1+end]), "=== ")
			}
			found = append(found, fmt.Sprintf("%s shows in the output of %s", secrets[s], where))
		}
	}
	sort.Strings(found)
	return found
}

// TestTheSecretAuditFindsAKeyInALog: the run-wide audit would see a leaked key, whichever
// process and wherever in a line it shows.
func TestTheSecretAuditFindsAKeyInALog(t *testing.T) {
	var a secretAudit
	if err := a.open(filepath.Join(t.TempDir(), "logs")); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "sts.jsonl"), []byte(`{"ID":"STS.k1","Key":{"Secret":"0123456789abcdef0123456789abcd","Token":"CAISfeedfeedfeed"}}`+"\n"), 0o600)
	a.addKeys(data)
	a.addLog("TestA", "mount", []byte("time=… level=INFO msg=ok\n"))
	if found, _, err := a.check(); err != nil || len(found) != 0 {
		t.Fatalf("clean logs: %v %v", found, err)
	}
	a.addLog("TestB", "mount", []byte("level=DEBUG msg=req url=https://x/?security-token=CAISfeedfeedfeed&a=1\n"))
	a.addLog("TestC", "status", []byte(`{"secret":"x0123456789abcdef0123456789abcdx"} ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret`))
	found, _, err := a.check()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"the AccessKeySecret of upload key STS.k1 shows in the output of TestC: status",
		"the SecurityToken of upload key STS.k1 shows in the output of TestB: mount",
		"the account's AccessKeySecret shows in the output of TestC: status",
	}
	if strings.Join(found, "\n") != strings.Join(want, "\n") {
		t.Fatalf("found:\n%s\nwant:\n%s", strings.Join(found, "\n"), strings.Join(want, "\n"))
	}
}
