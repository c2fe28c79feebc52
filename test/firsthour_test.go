package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imsfs/imsfs/test/testutil"
	"golang.org/x/sys/unix"
)

// TestTheCommandsWorkFromAnywhere: a mount started with a relative --cache-dir answers
// `imsfs status` run from inside the mount, and `imsfs retry` from another directory.
func TestTheCommandsWorkFromAnywhere(t *testing.T) {
	requireFUSE(t)
	emu := startEmulator(t)
	work := t.TempDir()
	os.Mkdir(filepath.Join(work, "mnt"), 0o755)
	cmd := exec.Command(imsfsBin, "mount", "--endpoint", emu.URL, "--cache-dir", "rel-cache", "--upload-delay", "1h", "mnt")
	cmd.Dir = work
	cmd.Env = append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(work, "mnt")
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait(); exec.Command("umount", "-l", mnt).Run() })
	waitMounted(t, mnt)
	os.WriteFile(filepath.Join(mnt, "video", "a.mp4"), []byte("a"), 0o644)
	status := exec.Command(imsfsBin, "status")
	status.Dir = filepath.Join(mnt, "video")
	if out, err := status.CombinedOutput(); err != nil || !strings.Contains(string(out), "video/a.mp4") {
		t.Errorf("imsfs status from inside the mount: %v\n%s", err, out)
	}
	retry := exec.Command(imsfsBin, "retry", filepath.Join("mnt", "video", "a.mp4"))
	retry.Dir = work
	if out, err := retry.CombinedOutput(); err != nil {
		t.Errorf("imsfs retry from another directory: %v\n%s", err, out)
	}
}

func waitMounted(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !isMounted(dir) || !exists(filepath.Join(dir, "video")) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up", dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestCtrlCUnmountsWhateverTheOutputIsPipedInto: the reader of the mount's output is gone (tee
// killed by the same Ctrl-C) when the mount logs its unmount: it must still unmount cleanly.
func TestCtrlCUnmountsWhateverTheOutputIsPipedInto(t *testing.T) {
	requireFUSE(t)
	emu := startEmulator(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	cmd := exec.Command(imsfsBin, "mount", "--endpoint", emu.URL, "--cache-dir", t.TempDir(), mnt)
	cmd.Env = append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	waitMounted(t, mnt)
	r.Close() // the pipe's reader is gone, as tee is after Ctrl-C
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Errorf("the mount died of %v", ws.Signal())
		} else if err != nil {
			t.Errorf("the mount exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the mount did not end")
	}
	if isMounted(mnt) {
		t.Errorf("%s is still mounted", mnt)
	}
}

// TestMakeRunClearsADeadMountAndLeavesALiveOne: `make run` clears a mount of its own whose
// process died, refuses to take over a live one, and ends with Ctrl-C through a pipe.
func TestMakeRunClearsADeadMountAndLeavesALiveOne(t *testing.T) {
	requireFUSE(t)
	if _, err := exec.LookPath("make"); err != nil {
		testutil.SkipOutsideCI(t, "make is not installed")
	}
	emu := startEmulator(t)
	dead := startMount(t, emu, "")
	// A mount whose process is killed: "Transport endpoint is not connected".
	mnt := dead.Dir
	dead.cmd.Process.Signal(syscall.SIGKILL)
	<-dead.done
	if _, err := os.ReadDir(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("not a dead mount: %v", err)
	}
	root, _ := filepath.Abs("..")
	makeRun := func(out string) *exec.Cmd {
		c := exec.Command("bash", "-c", fmt.Sprintf("make -s -C %s run MNT=%s CACHE_DIR=%s 2>&1 | cat > %s", root, mnt, filepath.Join(t.TempDir(), "cache"), out))
		c.Env = testEnv()
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return c
	}
	firstLog := filepath.Join(t.TempDir(), "first.log")
	first := makeRun(firstLog)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-first.Process.Pid, syscall.SIGKILL); exec.Command("umount", "-l", mnt).Run() })
	deadline := time.Now().Add(120 * time.Second) // make builds the binary
	for {
		// Its log says so: a stat of the dead mount may still answer from the kernel's cache.
		if out, _ := os.ReadFile(firstLog); strings.Contains(string(out), "msg=mounted") {
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(firstLog)
			t.Fatalf("make run did not mount over the dead mount:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	secondLog := filepath.Join(t.TempDir(), "second.log")
	second := makeRun(secondLog)
	if err := second.Run(); err != nil {
		t.Logf("second make run: %v", err)
	}
	if out, _ := os.ReadFile(secondLog); !strings.Contains(string(out), "mounted already") {
		t.Errorf("a second make run says:\n%s", out)
	}
	if !exists(filepath.Join(mnt, "video")) {
		t.Fatal("the second make run took the first one's mount down")
	}
	syscall.Kill(-first.Process.Pid, syscall.SIGINT) // Ctrl-C: make, imsfs and cat alike
	first.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for isMounted(mnt) {
		if time.Now().After(deadline) {
			t.Fatal("Ctrl-C did not unmount")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAMountpointInUseOrNotEmptyIsRefused: files in a folder (or another mount) are not hidden
// by a mount over them, unless --allow-non-empty says so.
func TestAMountpointInUseOrNotEmptyIsRefused(t *testing.T) {
	requireFUSE(t)
	emu := startEmulator(t)
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o644)
	env := []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret"}
	p := start(t, "mount", env, "mount", "--endpoint", emu.URL, "--cache-dir", t.TempDir(), full)
	if p.waitExit(t, 30*time.Second) == nil || !strings.Contains(p.output(), "is not empty (1 entries)") || !strings.Contains(p.output(), "--allow-non-empty") {
		t.Errorf("a mount over a folder with files:\n%s", p.output())
	}
	m := startMount(t, emu, "")
	p = start(t, "mount", env, "mount", "--endpoint", emu.URL, "--cache-dir", t.TempDir(), "--allow-non-empty", m.Dir)
	if p.waitExit(t, 30*time.Second) == nil || !strings.Contains(p.output(), "is already a mount") {
		t.Errorf("a mount over a mount:\n%s", p.output())
	}
	startMount(t, emu, "", "--allow-non-empty") // an empty folder with the flag: fine
}

// TestNamesComeBackByteForByte: a name that is not UTF-8 is kept as it was written, across a
// restart (the Title may be made valid UTF-8, the file name may not change); a name over 255
// bytes is refused as a local disk refuses it; no sidecar name passes 255 bytes.
func TestNamesComeBackByteForByte(t *testing.T) {
	emu := startEmulator(t)
	cache := t.TempDir()
	m := startMount(t, emu, cache)
	bad := "bad\xff\xfename.mp4"
	if err := os.WriteFile(filepath.Join(m.Dir, "video", bad), []byte("bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, filepath.Join(m.Dir, "video", bad), "ready", 30*time.Second)
	long := strings.Repeat("n", 252) + ".mp4" // 256 bytes
	if err := os.WriteFile(filepath.Join(m.Dir, "video", long), []byte("x"), 0o644); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	edge := strings.Repeat("e", 246) + ".mp4" // 250 bytes: its sidecar's name would be 259
	if err := os.WriteFile(filepath.Join(m.Dir, "video", edge), []byte("x"), 0o644); err != nil {
		t.Errorf("a 250-byte name: %v", err)
	}
	waitStatus(t, filepath.Join(m.Dir, "video", edge), "ready", 30*time.Second)
	run(t, "umount", m.Dir)
	m.waitExit(t, 60*time.Second)
	m2 := startMount(t, emu, cache)
	entries, _ := os.ReadDir(filepath.Join(m2.Dir, "video"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if len(e.Name()) > 255 {
			t.Errorf("a name of %d bytes is listed", len(e.Name()))
		}
	}
	found := false
	for _, n := range names {
		found = found || n == bad
	}
	if !found {
		t.Errorf("after a restart the folder lists %q, not the name written", names)
	}
	if data, err := os.ReadFile(filepath.Join(m2.Dir, "video", bad)); err != nil || string(data) != "bytes" {
		t.Errorf("the file by its name after a restart: %q %v", data, err)
	}
	if out, _ := exec.Command(imsfsBin, "status", "--json", m2.Dir).CombinedOutput(); strings.Contains(string(out), "writing") {
		t.Errorf("imsfs status after a restart: %s", out)
	}
	if strings.Contains(m2.output(), "resuming unfinished uploads") {
		t.Errorf("the restart found unfinished uploads:\n%s", m2.output())
	}
}

// TestCopiesWithSidecarsExitZero: cp -r and rsync -a of a folder of the mount, inside it and
// back into it from a backup taken with its sidecars, exit 0 and make no asset of a sidecar.
func TestCopiesWithSidecarsExitZero(t *testing.T) {
	emu := startEmulator(t)
	// The copy back over the files gives them new bytes (the same, but written again): their
	// old assets go, so that the cloud holds the copies' assets and nothing else.
	m := startMount(t, emu, "", "--on-overwrite", "delete")
	tree := filepath.Join(m.Dir, "video", "tree")
	os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
	for _, p := range []string{"a.mp4", "sub/b.mp4"} {
		os.WriteFile(filepath.Join(tree, p), []byte("bytes of "+p), 0o644)
	}
	waitStatus(t, filepath.Join(tree, "a.mp4"), "ready", 30*time.Second)
	waitStatus(t, filepath.Join(tree, "sub", "b.mp4"), "ready", 30*time.Second)
	backup := filepath.Join(t.TempDir(), "backup")
	run(t, "cp", "-r", tree, backup) // the sidecars come along
	if _, err := os.Stat(filepath.Join(backup, "a.mp4.ims.json")); err != nil {
		t.Fatalf("the backup has no sidecar: %v", err)
	}
	run(t, "cp", "-r", tree, filepath.Join(m.Dir, "video", "tree2"))
	run(t, "rsync", "-a", tree+"/", filepath.Join(m.Dir, "video", "tree3")+"/")
	run(t, "rsync", "-a", backup+"/", filepath.Join(m.Dir, "video", "restored")+"/")
	run(t, "cp", "-r", backup+"/.", tree) // over the files and sidecars that are there
	want := map[string][]byte{}
	for _, d := range []string{"tree", "tree2", "tree3", "restored"} {
		for _, p := range []string{"a.mp4", "sub/b.mp4"} {
			want["video/"+d+"/"+p] = []byte("bytes of " + p)
		}
	}
	settled(t, emu, m, want)
	data, err := os.ReadFile(filepath.Join(m.Dir, "video", "tree2", "a.mp4.ims.json"))
	if err != nil || !strings.Contains(string(data), `"path": "video/tree2/a.mp4"`) {
		t.Errorf("the sidecar of the copy is not the mount's own: %s %v", data, err)
	}
}

// TestRefusalsShowInStatus: the shell says only "Permission denied"; imsfs status says why.
func TestRefusalsShowInStatus(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "")
	if err := os.Mkdir(filepath.Join(m.Dir, "mine"), 0o755); err == nil {
		t.Fatal("mkdir at the root succeeded")
	}
	out, err := exec.Command(imsfsBin, "status", m.Dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "recently refused") || !strings.Contains(string(out), "mine") ||
		!strings.Contains(string(out), "mkdir EACCES: folders can be made only inside a mapped folder") {
		t.Errorf("imsfs status: %v\n%s", err, out)
	}
}

// TestTheLittleThingsOfADisk: ls -a lists . and ..; atime is kept apart from mtime; a folder
// keeps its setgid bit; a clean exit leaves no control socket behind.
func TestTheLittleThingsOfADisk(t *testing.T) {
	emu := startEmulator(t)
	cache := t.TempDir()
	m := startMount(t, emu, cache)
	out, _ := exec.Command("ls", "-a", filepath.Join(m.Dir, "video")).Output()
	if f := strings.Fields(string(out)); len(f) < 2 || f[0] != "." || f[1] != ".." {
		t.Errorf("ls -a: %q", out)
	}
	p := filepath.Join(m.Dir, "video", "t.mp4")
	os.WriteFile(p, []byte("t"), 0o644)
	run(t, "touch", "-a", "-d", "@1900000000", p)
	run(t, "touch", "-m", "-d", "@1950000000", p)
	d := filepath.Join(m.Dir, "video", "shared")
	os.Mkdir(d, 0o755)
	run(t, "chmod", "2775", d)
	check := func(when string, dir string) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, "video", "t.mp4"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Atim.Sec != 1900000000 || st.Mtim.Sec != 1950000000 {
			t.Errorf("%s: atime %d, mtime %d; want 1900000000 and 1950000000", when, st.Atim.Sec, st.Mtim.Sec)
		}
		fi, err := os.Stat(filepath.Join(dir, "video", "shared"))
		if err != nil || fi.Mode()&os.ModeSetgid == 0 || fi.Mode().Perm() != 0o775 {
			t.Errorf("%s: the folder's mode is %v", when, fi.Mode())
		}
	}
	check("mounted", m.Dir)
	run(t, "umount", m.Dir)
	m.waitExit(t, 60*time.Second)
	if _, err := os.Stat(filepath.Join(cache, "control.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control.sock is left after a clean exit: %v", err)
	}
	m2 := startMount(t, emu, cache)
	check("after a restart", m2.Dir)
}

// TestATypoOfACommandMountsNothing: `imsfs stauts DIR`, with keys in the environment as a user
// with an account has them, answers that there is no such command (naming the nearest one),
// exits 2, and mounts nothing, makes no cache directory, starts nothing in the background.
func TestATypoOfACommandMountsNothing(t *testing.T) {
	home := t.TempDir()
	dir := t.TempDir()
	for _, word := range []string{"stauts", "mont", "moutn"} {
		cmd := exec.Command(imsfsBin, word, dir)
		cmd.Env = append(testEnv(), "HOME="+home, "XDG_CACHE_HOME=", "ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tTypoTestKey000000", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=typo-test-secret")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), fmt.Sprintf("no command %q", word)) || !strings.Contains(string(out), "did you mean") {
			t.Errorf("imsfs %s DIR: %v: %s; want exit 2, no such command, and the nearest one", word, err, out)
		}
		time.Sleep(200 * time.Millisecond) // a mount started in the background would be up by now
		if isMounted(dir) {
			exec.Command("umount", "-l", dir).Run()
			t.Fatalf("imsfs %s DIR mounted DIR", word)
		}
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("a mistyped command left %v in HOME", entries)
	}
}

// TestDepsLooksForWhatTheTestsUse: LibreOffice's core (its soffice command) without the Writer
// module the tests drive is not taken for LibreOffice Writer: test/deps.sh names the package.
func TestDepsLooksForWhatTheTestsUse(t *testing.T) {
	root := t.TempDir() // a machine with python3-uno but no Writer module
	uno := filepath.Join(root, "usr/lib/python3/dist-packages/uno.py")
	os.MkdirAll(filepath.Dir(uno), 0o755)
	os.WriteFile(uno, nil, 0o644)
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "soffice"), []byte("#!/bin/sh\n"), 0o755)
	cmd := exec.Command("bash", "deps.sh", "--list", "test")
	cmd.Env = append(testEnv(), "DEPS_ROOT="+root, "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "libreoffice-writer-nogui") || strings.Contains(string(out), "python3-uno") {
		t.Errorf("deps.sh --list test with soffice but no Writer module: %v: %q; want libreoffice-writer-nogui named, python3-uno not", err, out)
	}
}

// TestWhatTheUserReadsIsTrue: an ACL a tool sets (cp -a, sed -i, vim do) is answered ENOTSUP, as
// any file system without ACLs answers it, and is no refusal (not in `imsfs status`, not a
// warning); a misspelled attribute is said to be no attribute, with the nearest one; the
// sidecar's URLs are as they are (& not escaped), so that one copied from cat opens.
func TestWhatTheUserReadsIsTrue(t *testing.T) {
	emu := startEmulator(t)
	m := startMount(t, emu, "", "--log-level", "debug")
	p := filepath.Join(m.Dir, "video", "a.mp4")
	if err := os.WriteFile(p, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p, "ready", 30*time.Second)

	// A minimal access ACL (user::rw- group::r-- other::r--), as setfacl and cp -a write it.
	acl := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	for _, target := range []struct{ path, name string }{{p, "system.posix_acl_access"}, {filepath.Dir(p), "system.posix_acl_default"}} {
		if err := unix.Setxattr(target.path, target.name, acl, 0); !errors.Is(err, unix.ENOTSUP) {
			t.Errorf("set %s on %s: %v, want ENOTSUP", target.name, target.path, err)
		}
	}
	out, err := exec.Command("setfattr", "-n", "user.ims.titel", "-v", "x", p).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Invalid argument") {
		t.Errorf("setfattr -n user.ims.titel: %v %s, want Invalid argument", err, out)
	}
	status, _ := exec.Command(imsfsBin, "status", m.Dir).CombinedOutput()
	if strings.Contains(string(status), "posix_acl") || !strings.Contains(string(status), "user.ims.titel: there is no such attribute (did you mean user.ims.title?)") {
		t.Errorf("imsfs status shows an ACL as a refusal, or not the misspelled attribute:\n%s", status)
	}
	log := m.output()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "posix_acl") && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("an ACL logged above debug: %s", line)
		}
	}
	if strings.Count(log, "posix_acl") < 2 {
		t.Errorf("the ACLs did not reach the mount (no debug line for them):\n%s", log)
	}

	sidecar, err := os.ReadFile(p + ".ims.json")
	if err != nil {
		t.Fatal(err)
	}
	var side map[string]string
	if err := json.Unmarshal(sidecar, &side); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sidecar, []byte(`\u0026`)) || !strings.Contains(side["file_url"], "&") || !bytes.Contains(sidecar, []byte(side["file_url"])) {
		t.Errorf("the sidecar does not show file_url as it is:\n%s", sidecar)
	}
}

// TestTheLogSaysOnlyWhatMatters: reading large files, a doctor run against the embedded
// emulator, and an umount from outside followed by a SIGTERM while an upload is under way leave
// no noise in the mount's log: no splice failures, no refused probe, no unmount after the
// unmount, no helper's error.
func TestTheLogSaysOnlyWhatMatters(t *testing.T) {
	p, dir := startEmbedded(t)
	waitMounted(t, dir)
	m := regexp.MustCompile(`embedded emulator at (http://[0-9.:]+)`).FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("no emulator address:\n%s", p.output())
	}
	url := m[1]
	src := randomFile(t, "big.mp4", 5<<20)
	run(t, "cp", src, filepath.Join(dir, "video")+"/")
	big := filepath.Join(dir, "video", "big.mp4")
	waitStatus(t, big, "ready", 60*time.Second)
	for range 2 {
		run(t, "dd", "if="+big, "of=/dev/null", "bs=4M")
	}
	doctor := exec.Command(imsfsBin, "doctor", "--endpoint", url)
	doctor.Env = append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret")
	if out, err := doctor.CombinedOutput(); err != nil && !strings.Contains(string(out), "cache dir") {
		t.Logf("doctor: %v\n%s", err, out)
	}

	req, _ := http.NewRequest(http.MethodPut, url+"/_emulator/faults", strings.NewReader("oss.*=0:latency=5s"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("set faults: %v", err)
	}
	slow := filepath.Join(dir, "video", "slow.mp4")
	os.WriteFile(slow, []byte("an upload under way"), 0o644)
	waitStatus(t, slow, "uploading", 30*time.Second)
	run(t, "umount", dir)
	for !strings.Contains(p.output(), "msg=unmounted") {
		if p.exited() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.waitExit(t, 60*time.Second); err != nil {
		t.Errorf("exit after umount and SIGTERM: %v", err)
	}
	log := p.output()
	for _, noise := range []string{"trySplice", "UnsupportedHTTPMethod", "failed to unmount", "cannot unmount yet"} {
		if strings.Contains(log, noise) {
			t.Errorf("the log says %q:\n%s", noise, log)
		}
	}
	if i, j := strings.Index(log, "msg=unmounted"), strings.Index(log, "msg=unmounting"); j > i && i >= 0 {
		t.Errorf("unmounting logged after unmounted:\n%s", log)
	}
	if !strings.Contains(log, "not waiting for the uploads under way") {
		t.Errorf("the SIGTERM during the drain is not said:\n%s", log)
	}
}
