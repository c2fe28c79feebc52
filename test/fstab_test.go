package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imsfs/imsfs/test/testutil"
)

// TestTheMountHelperMountsFromFstab: imsfs called as mount.fuse.imsfs, as mount(8) calls a
// helper (SOURCE MOUNTPOINT -o OPTIONS), starts the mount in the background with the options as
// flags, returns once it serves, and the mount uploads and unmounts as any; a wrong option or a
// mount that cannot start is said with exit status 2 or 1. Then the same through mount(8) and
// an fstab line (mount -T FILE MOUNTPOINT), with the helper in /sbin; and as mount.fuse3 calls
// "imsfs SOURCE MOUNTPOINT -o OPTIONS" when there is no such helper.
func TestTheMountHelperMountsFromFstab(t *testing.T) {
	requireFUSE(t)
	emu := startEmulator(t)
	helper := filepath.Join(t.TempDir(), "mount.fuse.imsfs")
	if err := os.Symlink(imsfsBin, helper); err != nil {
		t.Fatal(err)
	}
	env := append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET="+accountSecret)
	runHelper := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(helper, args...)
		cmd.Env = env
		done := make(chan struct{})
		var out []byte
		go func() { out, _ = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("the helper did not return: %v", args)
		}
		audit.addLog(t.Name(), "mount helper", out)
		return cmd.ProcessState.ExitCode(), string(out)
	}
	// mountHere checks a mount made by the helper: it uploads, and ends with umount.
	mountHere := func(mnt, log string) {
		t.Helper()
		t.Cleanup(func() {
			if isMounted(mnt) {
				exec.Command("umount", "-l", mnt).Run()
			}
		})
		p := filepath.Join(mnt, "video", "fstab.mp4")
		if err := os.WriteFile(p, randomBytes(t, 64<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, p, "ready", 60*time.Second)
		run(t, "umount", mnt)
		deadline := time.Now().Add(60 * time.Second)
		for {
			data, _ := os.ReadFile(log)
			if strings.Contains(string(data), "msg=unmounted") && strings.Contains(string(data), "msg=\"asset ready\"") {
				audit.addLog(t.Name(), "background mount", data)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the background mount did not end after umount:\n%s", data)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	mnt, cache := t.TempDir(), t.TempDir()
	log := filepath.Join(t.TempDir(), "imsfs.log")
	opts := fmt.Sprintf("rw,noauto,_netdev,nofail,x-systemd.automount,endpoint=%s,cache_dir=%s,upload-delay=0s,sidecars=false,log=%s", emu.URL, cache, log)
	code, out := runHelper("imsfs", mnt, "-o", opts)
	if code != 0 || !isMounted(mnt) {
		data, _ := os.ReadFile(log)
		t.Fatalf("the helper: exit %d, mounted %v:\n%s\n%s", code, isMounted(mnt), out, data)
	}
	if _, err := os.Stat(filepath.Join(mnt, "video", "x.mp4.ims.json")); err == nil {
		t.Error("sidecars=false was not passed on")
	}
	mountHere(mnt, log)

	// Refusals: an option neither imsfs nor mount(8) has, ro, and a mount that cannot start.
	if code, out := runHelper("imsfs", t.TempDir(), "-o", "colour=red"); code != 2 || !strings.Contains(out, `option "colour=red": not an option of imsfs mount`) {
		t.Errorf("an unknown option: exit %d:\n%s", code, out)
	}
	if code, out := runHelper("imsfs", t.TempDir(), "-o", "ro"); code != 2 || !strings.Contains(out, "no read-only mode") {
		t.Errorf("ro: exit %d:\n%s", code, out)
	}
	bad := t.TempDir()
	if code, out := runHelper("imsfs", bad, "-o", "region=cn-hangzhou,cache-dir="+t.TempDir()+",log="+filepath.Join(t.TempDir(), "l")); code != 1 ||
		!strings.Contains(out, "before mounting") || !strings.Contains(out, "CreateUploadMedia is available only in cn-shanghai") || isMounted(bad) {
		t.Errorf("a mount that cannot start: exit %d:\n%s", code, out)
	}

	// As mount.fuse3 calls it for a fuse.imsfs line when /sbin has no mount.fuse.imsfs: the
	// program named by the type, found in PATH, as "imsfs SOURCE MOUNTPOINT -o OPTIONS".
	mountFuse, err := exec.LookPath("mount.fuse3")
	if err != nil {
		if mountFuse, err = exec.LookPath("/sbin/mount.fuse3"); err != nil {
			testutil.SkipOutsideCI(t, "no mount.fuse3 (apt-get install fuse3)")
			return
		}
	}
	mnt1, log1 := t.TempDir(), filepath.Join(t.TempDir(), "imsfs.log")
	cmd := exec.Command(mountFuse, "imsfs", mnt1, "-t", "fuse.imsfs", "-o", fmt.Sprintf("noauto,_netdev,endpoint=%s,cache-dir=%s,upload_delay=0s,log=%s", emu.URL, t.TempDir(), log1))
	cmd.Env = append(env, "PATH="+filepath.Dir(imsfsBin)+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil || !isMounted(mnt1) {
		data, _ := os.ReadFile(log1)
		t.Fatalf("mount.fuse3 imsfs %s: %v\n%s\n%s", mnt1, err, out, data)
	}
	mountHere(mnt1, log1)

	// Through mount(8) and an fstab line.
	if os.Geteuid() != 0 {
		testutil.SkipOutsideCI(t, "mount(8) looks for its helper in /sbin, which only root can add to")
		return
	}
	sbin := "/sbin/mount.fuse.imsfs"
	if _, err := os.Lstat(sbin); err == nil {
		t.Fatalf("%s is there already: this test would replace an installed helper", sbin)
	}
	if err := os.Symlink(imsfsBin, sbin); err != nil {
		testutil.SkipOutsideCI(t, "cannot add "+sbin+": "+err.Error())
		return
	}
	defer os.Remove(sbin)
	mnt2, log2 := t.TempDir(), filepath.Join(t.TempDir(), "imsfs.log")
	fstab := filepath.Join(t.TempDir(), "fstab")
	os.WriteFile(fstab, []byte(fmt.Sprintf("# imsfs, as /etc/fstab would have it\nimsfs %s fuse.imsfs noauto,_netdev,endpoint=%s,cache-dir=%s,upload_delay=0s,log=%s 0 0\n",
		mnt2, emu.URL, t.TempDir(), log2)), 0o644)
	cmd = exec.Command("mount", "-T", fstab, mnt2)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil || !isMounted(mnt2) {
		data, _ := os.ReadFile(log2)
		t.Fatalf("mount -T %s %s: %v\n%s\n%s", fstab, mnt2, err, out, data)
	}
	mountHere(mnt2, log2)
}
