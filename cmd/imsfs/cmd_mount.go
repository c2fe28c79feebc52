package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/imsfs/imsfs/cmd/imsfs/config"
	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// mountOptions are the mount command's flags.
type mountOptions struct {
	endpoint      string
	region        string
	cacheDir      string
	uploadDelay   time.Duration
	drainTimeout  time.Duration
	readyTimeout  time.Duration
	emulator      bool
	workers       int
	smallWorkers  int
	tempNames     string
	onOverwrite   string
	onDelete      string
	bwlimit       string
	cacheMax      string
	partSize      string
	maxParts      int
	sidecars      bool
	allowNonEmpty bool
	allowOther    bool
	passthrough   bool
	syncOnClose   bool
	pprofAddr     string
	debug         bool
	logLevel      string
	metricsAddr   string
	logFormat     string
	debugFUSE     bool
	appID         string
	configFile    string
	notify        bool
	library       bool
	libRefresh    time.Duration

	cfg     *config.Config // the configuration file read, if any
	mapping *fs.Mapping    // the folder layout: the default one and the file's folders
}

func (o *mountOptions) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "endpoint", Destination: &o.endpoint, Usage: "IMS API `HOST` (ice.cn-beijing.aliyuncs.com, over HTTPS) or URL (http://127.0.0.1:9000) (default: the region's)"},
		&cli.StringFlag{Name: "config", Destination: &o.configFile, Usage: "read settings and folders from the YAML `FILE` (imsfs config example prints one); flags win over it (default: ~/.config/imsfs/config.yaml if there is one)"},
		&cli.StringFlag{Name: "app-id", Destination: &o.appID, Usage: "the AppId of the assets (default: IMS's, app-1000000)"},
		&cli.StringFlag{Name: "region", Value: "cn-shanghai", Destination: &o.region, Usage: "IMS region: cn-shanghai, cn-beijing or cn-shenzhen, where CreateUploadMedia is available"},
		&cli.StringFlag{Name: "cache-dir", Destination: &o.cacheDir, Usage: "`DIR` for the store and the spooled bytes (default: $XDG_CACHE_HOME/imsfs)"},
		&cli.DurationFlag{Name: "upload-delay", Value: 2 * time.Second, Destination: &o.uploadDelay, Usage: "settle time after the last close before a file is uploaded"},
		&cli.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second, Destination: &o.drainTimeout, Usage: "on unmount, how long running uploads may take to finish; the rest resume at the next mount"},
		&cli.DurationFlag{Name: "ready-timeout", Value: time.Hour, Destination: &o.readyTimeout, Usage: "how long after its upload IMS may take to prepare an asset; then the file is failed (imsfs retry uploads it again)"},
		&cli.BoolFlag{Name: "emulator", Destination: &o.emulator, Usage: "start an embedded IMS/OSS emulator and use it (no credentials needed)"},
		&cli.IntFlag{Name: "transfers", Value: 4, Destination: &o.workers, Usage: "files over one PUT (larger than --part-size) uploaded at once"},
		&cli.IntFlag{Name: "small-transfers", Destination: &o.smallWorkers, DefaultText: "4 × --transfers", Usage: "files of one PUT (up to --part-size) uploaded at once, the larger ones at most --transfers among them"},
		&cli.StringFlag{Name: "temp-names", Value: imsrules.DefaultTempNames, Destination: &o.tempNames, Usage: "comma-separated `PATTERNS` (shell globs on the file name) of temporary files: kept in the mount, never uploaded (skipped) until renamed; \"\" names none (junk names, .DS_Store and the like, stay local: see a folder's ignore: in imsfs config example)"},
		&cli.BoolFlag{Name: "library", Value: true, Destination: &o.library, Usage: "show library/: every asset in IMS, read-only, in the folder its type maps to, read on demand (--library=false hides it)"},
		&cli.DurationFlag{Name: "library-refresh", Value: 30 * time.Second, Destination: &o.libRefresh, Usage: "how often library/ looks for new assets in IMS"},
		&cli.BoolFlag{Name: "sidecars", Value: true, Destination: &o.sidecars, Usage: "show NAME.ims.json beside each file, with what its extended attributes say (--sidecars=false hides them)"},
		&cli.StringFlag{Name: "cache-max-size", Destination: &o.cacheMax, Usage: "bound the cache (e.g. 20GiB): ready files no one has open are evicted, least recently used first, and read back from their objects (default: no bound)"},
		&cli.StringFlag{Name: "part-size", Value: "8MiB", Destination: &o.partSize, Usage: "multipart part `SIZE` (100KiB to 5GiB); a file up to this size goes in one PUT; a file of more than 10,000 parts gets bigger ones"},
		&cli.IntFlag{Name: "max-parts", Value: 10000, Destination: &o.maxParts, Hidden: true, Usage: "parts OSS takes in one upload (tests lower it, with the emulator's --max-parts)"},
		&cli.StringFlag{Name: "on-overwrite", Value: "keep", Destination: &o.onOverwrite, Usage: "`keep|delete` the asset of a file that gets new bytes, once the new bytes are an asset"},
		&cli.StringFlag{Name: "on-delete", Value: "keep", Destination: &o.onDelete, Usage: "`keep|delete` the asset of a file that is deleted"},
		&cli.StringFlag{Name: "bwlimit", Value: "off", Destination: &o.bwlimit, Usage: "cap what uploads send, across all transfers, in rclone's syntax: a `RATE` in bytes a second (8M, 512k; K without a suffix; off), or a timetable of TIME,RATE or DAY-TIME,RATE slots (\"08:00,512k 19:00,8M 23:00,off\")"},
		&cli.BoolFlag{Name: "passthrough", Value: true, Destination: &o.passthrough, Usage: "let the kernel write new files straight to the cache (FUSE passthrough: Linux 6.9+, as root); =false sends every write through imsfs"},
		&cli.BoolFlag{Name: "sync-on-close", Destination: &o.syncOnClose, Usage: "fsync each file, its name and its record at every close (slower); by default a close survives a killed mount, and a power loss loses at most the last 5 s, as a local disk"},
		&cli.BoolFlag{Name: "allow-other", Destination: &o.allowOther, Usage: "let users other than the mounting one in (a folder re-exported over SMB or NFS); see --allow-other in docs/command-line.md"},
		&cli.BoolFlag{Name: "allow-non-empty", Destination: &o.allowNonEmpty, Usage: "mount over a folder that holds files (they are hidden while mounted)"},
		&cli.BoolFlag{Name: "notify", Destination: &o.notify, Usage: "desktop notifications (session D-Bus): one for each file that fails, one for each batch of files that become ready"},
		&cli.BoolFlag{Name: "debug", Destination: &o.debug, Usage: "log each upload step (as --log-level debug)"},
		&cli.StringFlag{Name: "metrics-addr", Destination: &o.metricsAddr, Usage: "serve Prometheus metrics on `ADDR` (e.g. 127.0.0.1:9464; port 0 picks one, the log says which) at /metrics", DefaultText: "off"},
		&cli.StringFlag{Name: "log-level", Destination: &o.logLevel, DefaultText: "info", Usage: "`LEVEL` of the lines logged: debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Destination: &o.logFormat, Value: "text", Usage: "`FORMAT` of the log on stderr: text (key=value) or json (one object a line)"},
		&cli.StringFlag{Name: "debug-pprof", Destination: &o.pprofAddr, Hidden: true, Usage: "serve net/http/pprof on `ADDR` (loopback), to profile the mount"},
		&cli.BoolFlag{Name: "debug-fuse", Destination: &o.debugFUSE, Usage: "log every FUSE request"},
	}
}

func newMountCommand() *cli.Command {
	var o mountOptions
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount MOUNTPOINT in the foreground until SIGINT, SIGTERM or umount",
		ArgsUsage: "MOUNTPOINT",
		Description: "Credentials come from the Alibaba Cloud default chain, e.g. ALIBABA_CLOUD_ACCESS_KEY_ID and\n" +
			"ALIBABA_CLOUD_ACCESS_KEY_SECRET. With --emulator none are needed.",
		Flags: o.flags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("imsfs mount takes one MOUNTPOINT, got %d arguments (see: imsfs mount --help)", c.NArg())
			}
			if err := o.readConfig(c); err != nil {
				return err
			}
			if o.workers < 1 {
				return usagef("imsfs mount: --transfers %d: want 1 or more", o.workers)
			}
			if c.IsSet("small-transfers") && o.smallWorkers < 1 {
				return usagef("imsfs mount: --small-transfers %d: want 1 or more", o.smallWorkers)
			}
			if o.uploadDelay < 0 || o.drainTimeout < 0 || o.readyTimeout < 0 {
				return usagef("imsfs mount: --upload-delay, --drain-timeout and --ready-timeout take durations of 0 or more")
			}
			if _, err := uploader.ParseTimetable(o.bwlimit); err != nil {
				return usagef("imsfs mount: --bwlimit: %v", err)
			}
			if o.libRefresh < time.Second {
				return usagef("imsfs mount: --library-refresh %v: want 1s or more", o.libRefresh)
			}
			if o.library {
				if err := config.CheckLibrary(o.mapping); err != nil {
					return usagef("imsfs mount: %v", err)
				}
			}
			return runMount(c.Context, &o, c.Args().First())
		},
	}
}

// readConfig reads the configuration file (--config, or the default one if it exists) into
// the flags the command line did not set, and the folder layout.
func (o *mountOptions) readConfig(c *cli.Context) error {
	o.mapping = fs.DefaultMapping()
	p := o.configFile
	if p == "" {
		p = config.DefaultPath()
		if _, err := os.Stat(p); p == "" || errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	cfg, err := config.Load(p)
	if err != nil {
		return usagef("imsfs mount: %v", err)
	}
	if err := applySettings(c, cfg); err != nil {
		return usagef("imsfs mount: %v", err)
	}
	o.cfg, o.mapping = cfg, cfg.Mapping()
	return nil
}

// applySettings sets the flags the command line did not give from the file's settings.
func applySettings(ctx *cli.Context, cfg *config.Config) error {
	for _, s := range cfg.Settings {
		if ctx.IsSet(s.Name) {
			continue // the command line wins
		}
		if err := ctx.Set(s.Name, s.Value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", cfg.Path, s.Line, s.Name, err)
		}
	}
	return nil
}

// checkMountpoint says what is wrong with a mountpoint before anything is started for it.
func checkMountpoint(mountpoint string, allowNonEmpty bool) error {
	st, err := os.Stat(mountpoint)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mountpoint %s does not exist; make it with: mkdir -p %s", mountpoint, mountpoint)
	case errors.Is(err, syscall.ENOTCONN):
		return fmt.Errorf("mountpoint %s is a mount whose process is gone; clear it with: umount -l %s (or fusermount3 -uz %s)", mountpoint, mountpoint, mountpoint)
	case err != nil:
		return fmt.Errorf("mountpoint %s: %w", mountpoint, err)
	case !st.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", mountpoint)
	}
	if isMountpoint(mountpoint) {
		// stat may answer from the kernel's cache; listing asks the mount itself.
		if _, err := os.ReadDir(mountpoint); errors.Is(err, syscall.ENOTCONN) {
			return fmt.Errorf("mountpoint %s is a mount whose process is gone; clear it with: umount -l %s (or fusermount3 -uz %s)", mountpoint, mountpoint, mountpoint)
		}
		return fmt.Errorf("mountpoint %s is already a mount (another imsfs?): mounting over it would hide it; unmount it first", mountpoint)
	}
	if !allowNonEmpty {
		entries, err := os.ReadDir(mountpoint)
		if err != nil {
			return fmt.Errorf("mountpoint %s: %w", mountpoint, err)
		}
		if len(entries) > 0 {
			return fmt.Errorf("mountpoint %s is not empty (%d entries): the mount would hide them; use an empty folder, or --allow-non-empty", mountpoint, len(entries))
		}
	}
	return nil
}

// isMountpoint reports whether dir is where something is mounted, from /proc/self/mountinfo.
func isMountpoint(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	unescape := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && unescape.Replace(f[4]) == abs {
			return true
		}
	}
	return false
}
