package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/imsfs/imsfs/test/testutil"
)

// TestAllowOtherLetsOtherUsersReadAsTheModesSay: without --allow-other another user (nobody)
// cannot even read the mount; with it, the kernel checks the mode bits (default_permissions):
// nobody reads a 0644 file and cannot write into a folder of 0755.
func TestAllowOtherLetsOtherUsersReadAsTheModesSay(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOutsideCI(t, "acting as another user needs root")
	}
	emu := startEmulator(t)
	asNobody := func(name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd.Run()
	}
	for _, allow := range []bool{false, true} {
		var args []string
		if allow {
			args = []string{"--allow-other"}
		}
		m := startMount(t, emu, "", args...)
		for d := filepath.Dir(m.Dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // test folders are 0700: let nobody reach the mount
		}
		p := filepath.Join(m.Dir, "video", "shared.mp4")
		if err := os.WriteFile(p, []byte("for everyone to read"), 0o644); err != nil {
			t.Fatal(err)
		}
		info, _ := os.ReadFile("/proc/self/mountinfo")
		var line string
		for _, l := range strings.Split(string(info), "\n") {
			if strings.Contains(l, " "+m.Dir+" ") {
				line = l
			}
		}
		readErr := asNobody("cat", p)
		writeErr := asNobody("touch", filepath.Join(m.Dir, "video", "theirs.mp4"))
		if !allow {
			if readErr == nil || strings.Contains(line, "allow_other") {
				t.Errorf("without --allow-other: nobody read the file (%v); mount options %q", readErr, line)
			}
			continue
		}
		if !strings.Contains(line, "allow_other") || !strings.Contains(line, "default_permissions") {
			t.Errorf("with --allow-other the mount options are %q", line)
		}
		if readErr != nil {
			t.Errorf("with --allow-other nobody cannot read a 0644 file: %v", readErr)
		}
		if writeErr == nil {
			t.Error("with --allow-other nobody wrote into a folder of mode 0755 it does not own")
		}
	}
}
