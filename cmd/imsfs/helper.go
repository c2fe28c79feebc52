package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The mount helper lets fstab and `mount -t fuse.imsfs` mount imsfs. mount(8) runs
// /sbin/mount.fuse.imsfs SOURCE MOUNTPOINT [-o OPTIONS] and waits for it to exit, while an imsfs
// mount runs in the foreground for as long as it is mounted; so the helper (the imsfs binary,
// called by that name) starts `imsfs mount` in its own session with the options as flags,
// waits until the mount is up (or the mount fails, with its reason), and exits.

// helperNames are the names the imsfs binary answers as a mount helper.
var helperNames = []string{"mount.fuse.imsfs", "mount.imsfs"}

func isHelper(argv0 string) bool { return slices.Contains(helperNames, filepath.Base(argv0)) }

// calledByMountFuse reports whether args are mount.fuse3's call of a fuse.imsfs line: imsfs
// SOURCE MOUNTPOINT -o OPTIONS, where SOURCE is no command of imsfs. mount.fuse3 always passes
// -o (at least dev,suid or nodev,nosuid), so `imsfs WORD PATH` is never taken for it: a typo of
// a command must not mount PATH.
func calledByMountFuse(args []string) bool {
	if len(args) != 5 || args[3] != "-o" {
		return false
	}
	for _, c := range newApp(io.Discard, io.Discard).Commands {
		if c.HasName(args[1]) {
			return false
		}
	}
	return args[1] != "help"
}

// genericOptions are mount(8)'s and systemd's own options: they concern mount(8), not imsfs.
var genericOptions = []string{"rw", "defaults", "auto", "noauto", "user", "users", "nouser", "owner", "group",
	"_netdev", "nofail", "atime", "noatime", "relatime", "strictatime", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "async"}

// helperArgs turns mount(8)'s arguments into those of `imsfs mount`, and the log file the mount
// writes to. Options are the mount's flags with "_" or "-" (allow_other, cache-dir=/var/cache/imsfs);
// profile=NAME picks the CLI profile of the credentials; log=FILE is where the mount logs.
func helperArgs(args []string) (mountArgs []string, env []string, logFile, mountpoint string, err error) {
	var pos, opts []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o" && i+1 < len(args):
			opts = append(opts, strings.Split(args[i+1], ",")...)
			i++
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, strings.Split(a[2:], ",")...)
		case a == "-n" || a == "-s" || a == "-v" || a == "-f":
			// no mtab, sloppy, verbose, fake: mount(8)'s own
		case strings.HasPrefix(a, "-"):
			return nil, nil, "", "", fmt.Errorf("option %s: the imsfs mount helper takes SOURCE MOUNTPOINT [-o OPTIONS]", a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, nil, "", "", fmt.Errorf("want SOURCE MOUNTPOINT [-o OPTIONS], got %d arguments", len(pos))
	}
	mountpoint = pos[1]
	flags := map[string]bool{}
	for _, f := range (&mountOptions{}).flags() {
		flags[f.Names()[0]] = true
	}
	for _, o := range opts {
		k, v, hasValue := strings.Cut(o, "=")
		name := strings.ReplaceAll(k, "_", "-")
		switch {
		case o == "" || slices.Contains(genericOptions, k) || strings.HasPrefix(k, "x-") || k == "comment":
		case k == "ro":
			return nil, nil, "", "", errors.New("option ro: an imsfs mount is for saving files; it has no read-only mode")
		case k == "log" && hasValue:
			logFile = v
		case k == "profile" && hasValue:
			env = append(env, "ALIBABA_CLOUD_PROFILE="+v)
		case flags[name] && hasValue:
			mountArgs = append(mountArgs, "--"+name+"="+v)
		case flags[name]:
			mountArgs = append(mountArgs, "--"+name)
		default:
			return nil, nil, "", "", fmt.Errorf("option %q: not an option of imsfs mount (see imsfs mount --help; write allow_other or allow-other, cache-dir=DIR…), nor of mount(8)", o)
		}
	}
	return append(mountArgs, mountpoint), env, logFile, mountpoint, nil
}

// runHelper is the mount helper: it exits 0 once the mount serves, or 1 with the reason.
func runHelper(args []string, stderr io.Writer) int {
	mountArgs, env, logFile, mountpoint, err := helperArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, "mount.fuse.imsfs:", err)
		return exitUsage
	}
	if logFile == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		logFile = filepath.Join(base, "imsfs", "mount-"+strings.Trim(strings.ReplaceAll(filepath.Clean(mountpoint), "/", "-"), "-")+".log")
	}
	self, err := os.Executable()
	if err == nil {
		err = os.MkdirAll(filepath.Dir(logFile), 0o700)
	}
	var log *os.File
	if err == nil {
		log, err = os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mount.fuse.imsfs:", err)
		return exitFailed
	}
	defer log.Close()
	start, _ := log.Seek(0, io.SeekEnd)
	cmd := exec.Command(self, append([]string{"mount"}, mountArgs...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own session: mount(8), a shell or systemd's mount job ending does not end the mount.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "mount.fuse.imsfs:", err)
		return exitFailed
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case err := <-exited:
			fmt.Fprintf(stderr, "mount.fuse.imsfs: imsfs mount %s ended (%v) before mounting; it said (%s):\n%s", mountpoint, err, logFile, tail(logFile, start))
			return exitFailed
		case <-deadline:
			fmt.Fprintf(stderr, "mount.fuse.imsfs: imsfs mount %s is not up after 2 minutes; it goes on in the background (pid %d, log %s)\n", mountpoint, cmd.Process.Pid, logFile)
			return exitFailed
		case <-time.After(50 * time.Millisecond):
		}
		if mounted(mountpoint) {
			return exitOK // the mount goes on without us
		}
	}
}

// mounted reports whether an imsfs mount serves at mountpoint (its "mounted" line is logged
// once it does; the kernel's table says so as soon as the mount is made).
func mounted(mountpoint string) bool {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return false
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER
		if len(fields) < 5 || fields[4] != abs {
			continue
		}
		if i := slices.Index(fields, "-"); i > 0 && i+1 < len(fields) && strings.HasPrefix(fields[i+1], "fuse") {
			return true
		}
	}
	return false
}

// tail is what the log file got from offset from on, at most its last 4 KiB.
func tail(path string, from int64) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < from {
		return ""
	}
	data = data[from:]
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(data)
}
