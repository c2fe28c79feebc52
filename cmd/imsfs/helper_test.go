package main

import (
	"strings"
	"testing"
)

// TestHelperOptionsBecomeFlags: mount(8)'s options become imsfs mount's flags; its own and
// systemd's are left out; what is neither is refused.
func TestHelperOptionsBecomeFlags(t *testing.T) {
	args, env, log, mnt, err := helperArgs([]string{"imsfs", "/mnt/ims", "-o", "rw,noauto,_netdev,x-systemd.automount,allow_other,cache_dir=/var/cache/imsfs,upload-delay=5s,profile=ingest,log=/var/log/imsfs.log", "-n"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); got != "--allow-other --cache-dir=/var/cache/imsfs --upload-delay=5s /mnt/ims" {
		t.Errorf("flags: %s", got)
	}
	if strings.Join(env, " ") != "ALIBABA_CLOUD_PROFILE=ingest" || log != "/var/log/imsfs.log" || mnt != "/mnt/ims" {
		t.Errorf("env %v, log %q, mountpoint %q", env, log, mnt)
	}
	for _, bad := range [][]string{{"imsfs", "/mnt", "-o", "colour=red"}, {"imsfs", "/mnt", "-o", "ro"}, {"/mnt"}, {"imsfs", "/mnt", "-x"}} {
		if _, _, _, _, err := helperArgs(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestOnlyMountsFormIsTheHelpers: mount.fuse3 calls imsfs SOURCE MOUNTPOINT -o OPTIONS, always
// with -o; a bare `imsfs WORD PATH` (a mistyped command) is never taken for it.
func TestOnlyMountsFormIsTheHelpers(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"imsfs", "imsfs", dir, "-o", "dev,suid"}, true},
		{[]string{"imsfs", "stauts", dir}, false},
		{[]string{"imsfs", "mont", dir}, false},
		{[]string{"imsfs", "status", dir, "-o", "dev,suid"}, false},
		{[]string{"imsfs", "imsfs", dir, "-x", "dev"}, false},
	} {
		if got := calledByMountFuse(tt.args); got != tt.want {
			t.Errorf("%v: taken for mount.fuse3's call: %v, want %v", tt.args, got, tt.want)
		}
	}
	code, _, errOut := runCLI(t, "stauts", dir)
	if code != 2 || !strings.Contains(errOut, `no command "stauts"; did you mean "status"?`) {
		t.Errorf("imsfs stauts DIR: exit %d, %q", code, errOut)
	}
}
