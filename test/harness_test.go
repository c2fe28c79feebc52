// Package test holds the end-to-end tests: they run the imsfs binary as a user would (an
// emulator process, a real FUSE mount) and drive the mount with real tools.
package test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/test/testutil"
)

// imsfsBin is the binary under test, built once by TestMain.
var imsfsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imsfs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	imsfsBin = filepath.Join(dir, "imsfs")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", imsfsBin}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command(goBin, append(args, "../cmd/imsfs")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build imsfs:", err)
		os.Exit(2)
	}
	configHome = filepath.Join(dir, "config")
	if err := audit.open(filepath.Join(dir, "outputs.log")); err != nil {
		fmt.Fprintln(os.Stderr, "secret audit:", err)
		os.Exit(2)
	}
	code := m.Run()
	found, summary, err := audit.check()
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "secret audit:", err)
		code = 2
	case len(found) > 0:
		fmt.Fprintf(os.Stderr, "FAIL: secret audit: %s\n", summary)
		for _, f := range found {
			fmt.Fprintln(os.Stderr, "  "+f)
		}
		code = 1
	default:
		testutil.FigureLine("secret audit", summary+": none shown")
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func requireFUSE(t *testing.T) { testutil.RequireFUSE(t) }

// testEnv is the environment imsfs runs in under test: this process's, without any Alibaba
// Cloud credentials of the machine's, and with the credential chain kept off the instance
// metadata address (tests talk to loopback only).
func testEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ALIBABA_CLOUD_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") && !strings.HasPrefix(kv, "DBUS_SESSION_BUS_ADDRESS=") {
			env = append(env, kv)
		}
	}
	// A configuration file of the machine's (~/.config/imsfs/config.yaml) is not the test's.
	return append(env, "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true", "XDG_CONFIG_HOME="+configHome)
}

// configHome is an empty configuration directory for every imsfs a test runs (set by TestMain).
var configHome string

// proc is a background imsfs process whose output goes to a log file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it has exited
	err  error         // its exit status, once done
}

func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(imsfsBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(testEnv(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start imsfs %v: %v", args, err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-p.done
			}
		}
		data, _ := os.ReadFile(logPath)
		if name != "emulator" {
			audit.addLog(t.Name(), name, data)
		}
		if bytes.Contains(data, []byte("WARNING: DATA RACE")) {
			t.Errorf("the race detector reported a data race in imsfs %s", name)
		}
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", name, data)
		}
	})
	return p
}

func (p *proc) output() string {
	data, _ := os.ReadFile(p.log)
	return string(data)
}

// logged waits for the process to log want: a log line is written after the
// request it tells of has been answered, so a test that saw the answer polls.
func (p *proc) logged(want string, within time.Duration) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.output(), want) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits for the process to end and returns its exit status.
func (p *proc) waitExit(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("imsfs %v still running after %v", p.cmd.Args[1:], within)
		return nil
	}
}

// emulatorProc is an `imsfs emulator` process.
type emulatorProc struct {
	*proc
	URL  string
	Data string
}

var emulatorURL = regexp.MustCompile(`IMS and OSS at (http://[0-9.:]+)`)

func startEmulator(t *testing.T, args ...string) *emulatorProc {
	t.Helper()
	return startEmulatorOn(t, t.TempDir(), "127.0.0.1:0", args...)
}

// startEmulatorOn starts an emulator on listen with data in data, e.g. again after a crash.
func startEmulatorOn(t *testing.T, data, listen string, args ...string) *emulatorProc {
	t.Helper()
	p := start(t, "emulator", nil, append([]string{"emulator", "--listen", listen, "--data", data}, args...)...)
	t.Cleanup(func() { audit.addKeys(data) }) // before the emulator stops, after the mounts do
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := emulatorURL.FindStringSubmatch(p.output()); m != nil {
			return &emulatorProc{proc: p, URL: m[1], Data: data}
		}
		if p.exited() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("emulator did not start:\n%s", p.output())
	return nil
}

// asset is what GET /_emulator/media says of an asset.
type asset struct {
	MediaId, Status, Title, Type, BusinessType, MD5 string
	FileName                                        string
	Description, Tags                               string
	AppId, EntityId, UserData, Workflow, Storage    string
	CateId, Size                                    int64
	SettledAt                                       time.Time // when it became Normal (or PrepareFail)
}

func (e *emulatorProc) assets(t *testing.T) []asset {
	t.Helper()
	resp, err := http.Get(e.URL + "/_emulator/media")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []asset
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// stats is what GET /_emulator/stats says, as far as tests look.
type emulatorStats struct {
	Requests, Faults map[string]int64
	BytesStored      int64
}

func (e *emulatorProc) stats(t *testing.T) emulatorStats {
	t.Helper()
	resp, err := http.Get(e.URL + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out emulatorStats
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// mountProc is an `imsfs mount` process and its mount point.
type mountProc struct {
	*proc
	Dir      string
	CacheDir string
}

// startMount mounts a new directory against emu with the emulator's keys in the environment,
// as a user would, and waits until the mount answers.
func startMount(t *testing.T, emu *emulatorProc, cacheDir string, args ...string) *mountProc {
	t.Helper()
	return startMountEnv(t, emu, cacheDir, []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret"}, args...)
}

// startMountEnv is startMount with the credentials in env.
func startMountEnv(t *testing.T, emu *emulatorProc, cacheDir string, env []string, args ...string) *mountProc {
	t.Helper()
	requireFUSE(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	all := append([]string{"mount", "--endpoint", emu.URL, "--cache-dir", cacheDir, "--upload-delay", "0"}, args...)
	// Registered first, so run last: after the process was asked to stop (SIGTERM, as a user
	// does), a mount it left is detached.
	t.Cleanup(func() {
		if isMounted(dir) {
			exec.Command("umount", "-l", dir).Run()
		}
	})
	p := start(t, "mount", env, append(all, dir)...)
	m := &mountProc{proc: p, Dir: dir, CacheDir: cacheDir}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// Up, and done mounting (go-fuse opens a file of the mount while it mounts: a kill -9
		// then would leave the process waiting on its own mount).
		if out := p.output(); isMounted(dir) && (strings.Contains(out, "msg=mounted") || strings.Contains(out, `"msg":"mounted"`)) {
			if _, err := os.Stat(filepath.Join(dir, "video")); err == nil {
				return m
			}
		}
		if p.exited() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	msg := fmt.Sprintf("mount did not come up:\n%s", p.output())
	if strings.Contains(msg, "fusermount") {
		testutil.SkipOutsideCI(t, msg) // FUSE is not usable here
	}
	t.Fatal(msg)
	return nil
}

// isMounted reports whether dir is a FUSE mount point, from /proc/self/mountinfo.
func isMounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true
		}
	}
	return false
}

func unescapeMountinfo(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// xattr reads one attribute, as getfattr does.
func xattr(path, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// waitStatus waits until user.ims.status of path is want; it fails on "failed".
func waitStatus(t *testing.T, path, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var s string
	for time.Now().Before(deadline) {
		s, _ = xattr(path, "user.ims.status")
		if s == want {
			return
		}
		if s == "failed" && want != "failed" {
			e, _ := xattr(path, "user.ims.error")
			t.Fatalf("%s failed: %s", path, e)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: status %q after %v, want %q", path, s, within, want)
}

// randomFile writes n random bytes to a new file named name in a temp dir.
func randomFile(t *testing.T, name string, n int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(n)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func md5File(t *testing.T, path string) string {
	t.Helper()
	sum := md5FileNoT(path)
	if sum == "" {
		t.Fatalf("cannot read %s", path)
	}
	return sum
}

func md5FileNoT(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// run runs a command, failing the test with its output if it fails.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Fatalf("%s and %s differ (%d and %d bytes)", a, b, len(da), len(db))
	}
}

func isErrno(err error, want syscall.Errno) bool { return errors.Is(err, want) }

// figure logs a measured figure where `make test` prints it.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	testutil.Figure(t, format, args...)
}
