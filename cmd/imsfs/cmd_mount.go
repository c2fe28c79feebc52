package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // --debug-pprof
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aliyun/credentials-go/credentials"
	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/cmd/imsfs/config"
	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/test/emulator"
	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/imsrules"
	"github.com/imsfs/imsfs/uploader/transfer"
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
		&cli.StringFlag{Name: "part-size", Value: "8MiB", Destination: &o.partSize, Usage: "multipart part `SIZE` (at least 100KiB); a file up to this size goes in one PUT; a file of more than 10,000 parts gets bigger ones"},
		&cli.IntFlag{Name: "max-parts", Value: 10000, Destination: &o.maxParts, Hidden: true, Usage: "parts OSS takes in one upload (tests lower it, with the emulator's --max-parts)"},
		&cli.StringFlag{Name: "on-overwrite", Value: "keep", Destination: &o.onOverwrite, Usage: "`keep|delete` the asset of a file that gets new bytes, once the new bytes are an asset"},
		&cli.StringFlag{Name: "on-delete", Value: "keep", Destination: &o.onDelete, Usage: "`keep|delete` the asset of a file that is deleted"},
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

// resolveEndpoint returns the IMS endpoint to call: --endpoint as given (a bare host, as the
// documentation writes endpoints, is taken over HTTPS), or the region's.
func resolveEndpoint(endpoint, region string) (string, error) {
	if endpoint == "" {
		if !slices.Contains(config.UploadRegions(), region) {
			return "", fmt.Errorf("--region %s: CreateUploadMedia is available only in cn-shanghai, cn-beijing and cn-shenzhen; use one of them, or give an --endpoint", region)
		}
		return ims.DefaultEndpoint(region), nil
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	return endpoint, nil
}

// checkAccess makes one cheap signed call before the mount serves anyone, so that a missing or
// refused key is said at start, once, rather than by every file. An endpoint that does not
// answer is no reason to refuse: files wait in the queue until it does.
func checkAccess(ctx context.Context, client *ims.Client, cred credentials.Credential, endpoint string, log *slog.Logger) error {
	m, err := cred.GetCredential()
	if err != nil || m == nil || m.AccessKeyId == nil || *m.AccessKeyId == "" {
		return errors.New("no Alibaba Cloud credentials: " + credentialsHelp())
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err = client.ListMediaBasicInfos(cctx, ims.ListRequest{MaxResults: 1})
	var api *ims.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &api) && !api.Temporary():
		return fmt.Errorf("IMS at %s %s", endpoint, keyRefused(*m.AccessKeyId, api))
	}
	log.Warn("IMS does not answer; mounting anyway: files wait in the queue until it does", "endpoint", endpoint, "err", err)
	return nil
}

// credentialsHelp says, in its own words, where the credential chain looked and found none, and
// what to do. (The chain's own error is a paragraph of its providers' messages, typos included.)
func credentialsHelp() string {
	home, _ := os.UserHomeDir()
	looked := []string{"the environment (no ALIBABA_CLOUD_ACCESS_KEY_ID)"}
	cli := filepath.Join(home, ".aliyun", "config.json")
	switch data, err := os.ReadFile(cli); {
	case err != nil:
		looked = append(looked, "~/.aliyun/config.json (none)")
	default:
		var cfg struct {
			Profiles []struct{ Name string } `json:"profiles"`
		}
		name := cliProfileName()
		found := json.Unmarshal(data, &cfg) == nil && slices.ContainsFunc(cfg.Profiles, func(p struct{ Name string }) bool { return p.Name == name })
		if found {
			looked = append(looked, "~/.aliyun/config.json (its profile "+name+" gives no usable key)")
		} else {
			looked = append(looked, "~/.aliyun/config.json (no profile "+name+" in it)")
		}
	}
	creds := os.Getenv("ALIBABA_CLOUD_CREDENTIALS_FILE")
	if creds == "" {
		creds = filepath.Join(home, ".alibabacloud", "credentials")
	}
	if _, err := os.Stat(creds); err != nil {
		looked = append(looked, creds+" (none)")
	} else {
		looked = append(looked, creds+" (no usable key in it)")
	}
	if os.Getenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED") != "true" {
		looked = append(looked, "an ECS instance role (none answered)")
	}
	return "looked in " + strings.Join(looked, ", ") + ". Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, " +
		"or a profile in ~/.aliyun/config.json (ALIBABA_CLOUD_PROFILE names which), or mount with --emulator to try imsfs without an account"
}

// keyRefused says that IMS refused the key, with its answer and what to check.
func keyRefused(keyID string, api *ims.APIError) string {
	return fmt.Sprintf("refused the AccessKey %s: %s: %s (HTTP %d). Check the key pair (a typo, a disabled or deleted key), "+
		"that the account has IMS in this region, and that the key's RAM policy allows the ice: actions the README lists",
		maskKey(keyID), api.Code, api.Message, api.StatusCode)
}

// maskKey shows enough of an AccessKeyId to tell which it is.
func maskKey(id string) string {
	if len(id) <= 6 {
		return id
	}
	return id[:6] + "…"
}

func runMount(ctx context.Context, o *mountOptions, mountpoint string) error {
	if err := checkMountpoint(mountpoint, o.allowNonEmpty); err != nil {
		return err
	}
	// A Ctrl-C in `make run | tee log` closes the pipe before the mount has unmounted: a log
	// line then must not kill it (SIGPIPE) with the mount still up.
	signal.Ignore(syscall.SIGPIPE)
	// Signals are taken from the start: one that comes while the mount comes up unmounts it
	// once it is up, rather than killing the process with the mount half made.
	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	log, err := logger(os.Stderr, o.logLevel, o.logFormat, o.debug)
	if err != nil {
		return err
	}
	if o.mapping == nil {
		o.mapping = fs.DefaultMapping()
	}
	if o.cfg != nil {
		log.Info("configuration read", "file", o.cfg.Path, "settings", len(o.cfg.Settings), "folders", len(o.cfg.Folders))
	}
	endpoint := ""
	if !o.emulator {
		var err error
		if endpoint, err = resolveEndpoint(o.endpoint, o.region); err != nil {
			return err
		}
	}
	if o.pprofAddr != "" {
		go func() { log.Warn("pprof", "err", http.ListenAndServe(o.pprofAddr, nil)) }()
	}
	names, err := imsrules.NewAdmitter(o.tempNames)
	if err != nil {
		return fmt.Errorf("--temp-names: %w", err)
	}
	names.SetJunk(o.mapping.Junk)
	onOverwrite, err := uploader.ParsePolicy(o.onOverwrite)
	if err != nil {
		return fmt.Errorf("--on-overwrite: %w", err)
	}
	onDelete, err := uploader.ParsePolicy(o.onDelete)
	if err != nil {
		return fmt.Errorf("--on-delete: %w", err)
	}
	var cacheMax uint64
	if o.cacheMax != "" {
		if cacheMax, err = humanize.ParseBytes(o.cacheMax); err != nil {
			return fmt.Errorf("--cache-max-size %q: %w", o.cacheMax, err)
		}
	}
	if err := config.CheckPartSize(o.partSize); err != nil {
		return fmt.Errorf("--part-size %w", err)
	}
	partSize, _ := humanize.ParseBytes(o.partSize)
	if o.cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no --cache-dir given and no user cache dir: %w", err)
		}
		o.cacheDir = filepath.Join(base, "imsfs")
	}
	// Absolute: the control socket's path is shown to commands run from anywhere.
	if o.cacheDir, err = filepath.Abs(o.cacheDir); err != nil {
		return fmt.Errorf("--cache-dir: %w", err)
	}
	store, err := cache.Open(o.cacheDir, cache.Options{Admission: names})
	if errors.Is(err, cache.ErrLocked) {
		return fmt.Errorf("%w: %s (is another imsfs mount using it? give each mount its own --cache-dir)", cache.ErrLocked, o.cacheDir)
	}
	if err != nil {
		return err
	}
	defer store.Close()

	var cred credentials.Credential
	if o.emulator {
		// The asset takes a second to prepare, as a real one takes a while: status shows uploaded first.
		emu, err := emulator.New(emulator.Options{DataDir: filepath.Join(o.cacheDir, "emulator"), ReadyDelay: time.Second, Log: log.With("component", "emulator")})
		if err != nil {
			return err
		}
		// The same port as last time if it is free: records of unfinished uploads point at it.
		portFile := filepath.Join(o.cacheDir, "emulator", "listen")
		last, _ := os.ReadFile(portFile)
		if len(last) == 0 || emu.Start(strings.TrimSpace(string(last))) != nil {
			if err := emu.Start("127.0.0.1:0"); err != nil {
				return err
			}
		}
		_ = os.WriteFile(portFile, []byte(strings.TrimPrefix(emu.URL(), "http://")), 0o644)
		defer emu.Close()
		id, secret := emu.AccessKey()
		endpoint = emu.URL()
		cred, err = credentials.NewCredential(&credentials.Config{Type: ptr("access_key"), AccessKeyId: &id, AccessKeySecret: &secret})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "imsfs: embedded emulator at %s (assets: curl %s/_emulator/media)\n", endpoint, endpoint)
	} else {
		cred, err = credentials.NewCredential(nil)
		if err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
	}
	client, err := ims.New(endpoint, o.region, cred)
	if err != nil {
		return err
	}
	if err := checkAccess(ctx, client, cred, endpoint, log); err != nil {
		return err
	}
	if m, err := cred.GetCredential(); err == nil && m != nil && m.AccessKeyId != nil {
		log.Info("credentials", "from", deref(m.ProviderName), "kind", credentialKind(deref(m.ProviderName), m.SecurityToken != nil && *m.SecurityToken != ""),
			"access_key_id", maskKey(*m.AccessKeyId))
	}
	var (
		upObs uploader.Observer
		fsObs fs.Observer
		m     *metrics
	)
	var observers uploader.Observers
	if o.metricsAddr != "" {
		m = newMetrics()
		observers, fsObs = append(observers, uploadObserver{m}), fsObserver{m}
	}
	if o.notify {
		if d, err := newDesktop(log); err != nil {
			log.Warn("no desktop notifications", "err", err)
		} else {
			defer d.Close()
			observers = append(observers, d)
		}
	}
	if len(observers) > 0 {
		upObs = observers
	}
	queue := uploader.New(uploader.Config{Store: store, IMS: client, Objects: transfer.New(2 * time.Minute), Log: log,
		Workers: o.workers, SmallWorkers: o.smallWorkers, Ready: uploader.ReadyCheck{Timeout: o.readyTimeout}, PartSize: int64(partSize), MaxParts: o.maxParts, Names: names, OnOverwrite: onOverwrite, OnDelete: onDelete, ConfigID: configID(endpoint, o.region, cred),
		Observer: upObs, AppID: o.appID, Settings: o.mapping.Settings})
	sock := filepath.Join(o.cacheDir, controlSocket)
	fetcher := uploader.NewFetcher(client)
	var (
		library *uploader.Library
		chunks  *cache.Chunks
	)
	if o.library {
		if chunks, err = store.Chunks(); err != nil {
			return err
		}
		library, err = uploader.NewLibrary(uploader.LibraryConfig{Store: store, IMS: client, Chunks: chunks,
			Place: fs.LibraryFolder, Folders: fs.LibraryFolders(), Refresh: o.libRefresh, Log: log})
		if err != nil {
			return err
		}
	}
	fsys := fs.New(fs.Options{Store: store, Uploads: queue, UploadDelay: o.uploadDelay, Log: log,
		Objects: fetcher, CacheMaxSize: int64(cacheMax), ControlSocket: sock, Sidecars: o.sidecars, SyncOnClose: o.syncOnClose, NoPassthrough: !o.passthrough,
		Observer: fsObs, Mapping: o.mapping, Junk: func(p string) bool { _, junk := names.Junk(p); return junk },
		Library: library, Chunks: chunks})
	if m != nil {
		m.watch(store, queue, fsys, library, client.Paces, log)
		addr, err := m.serve(o.metricsAddr, log)
		if err != nil {
			return err
		}
		log.Info("metrics served", "url", "http://"+addr+"/metrics")
	}
	// Recovery comes first: it takes a file still "writing" as one whose writer is gone, which
	// is true only before the mount serves anyone. Uploads start once the mount is up: a
	// mount that fails leaves the backlog as it was.
	if err := queue.Recover(); err != nil {
		return err
	}
	server, err := fsys.Mount(mountpoint, fs.MountOptions{Debug: o.debugFUSE, AllowOther: o.allowOther})
	if err != nil {
		return fmt.Errorf("%w (is %s already a mount, or is FUSE unavailable? see /dev/fuse and fusermount3)", err, mountpoint)
	}
	queue.Run()
	stopLibrary := func() {}
	if library != nil {
		listing, stopListing := context.WithCancel(ctx)
		listed := make(chan struct{})
		go func() { library.Run(listing); close(listed) }()
		stopLibrary = sync.OnceFunc(func() { stopListing(); <-listed })
		defer stopLibrary() // before the store closes
	}
	ctl := &control{queue: queue, store: store, urls: fetcher, fsys: fsys, paces: client.Paces, library: library, log: log}
	if stop, err := ctl.serve(sock); err != nil {
		log.Warn("imsfs status, retry and url will not reach this mount", "err", err)
	} else {
		defer stop()
	}
	log.Info("mounted", "mountpoint", mountpoint, "endpoint", endpoint, "cache_dir", o.cacheDir)
	if err := notify("READY=1\nSTATUS=mounted on " + mountpoint); err != nil {
		log.Warn("systemd was not told the mount is ready", "err", err)
	}

	drain, cancel := context.WithTimeout(ctx, o.drainTimeout)
	defer cancel()
	unmounted := make(chan struct{})
	go unmountOnSignal(stop, server, mountpoint, log, unmounted, cancel)
	server.Wait()
	close(unmounted)
	stopLibrary() // no one to show it to
	fsys.Close()
	log.Info("unmounted", "mountpoint", mountpoint)

	if left := queue.Close(drain); left > 0 {
		log.Warn("uploads left for the next mount", "count", left, "cache_dir", o.cacheDir)
	}
	return nil
}

// unmounter is what unmountOnSignal needs of the FUSE server.
type unmounter interface{ Unmount() error }

// unmountOnSignal unmounts on the first signal; while the mount is busy (a shell inside it, an
// open file) it says so and tries again; a second signal detaches it lazily. A signal once the
// mount is gone (an umount from outside) ends the drain: what is left resumes at the next mount.
func unmountOnSignal(stop <-chan os.Signal, server unmounter, mountpoint string, log *slog.Logger, unmounted <-chan struct{}, endDrain func()) {
	var s os.Signal
	select {
	case s = <-stop:
	case <-unmounted:
		s = <-stop // or none: the process ends first
		log.Info("not waiting for the uploads under way; they resume at the next mount", "signal", s.String())
		endDrain()
		return
	}
	log.Info("unmounting", "signal", s.String())
	_ = notify("STOPPING=1")
	for {
		err := server.Unmount()
		if err == nil {
			return
		}
		select {
		case <-unmounted:
			return // unmounted from outside meanwhile
		default:
		}
		log.Warn("cannot unmount yet; close what uses it, or signal again to detach", "mountpoint", mountpoint, "err", err)
		select {
		case <-stop:
			if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
				log.Error("lazy unmount", "mountpoint", mountpoint, "err", err)
			}
			return
		case <-unmounted:
			return
		case <-time.After(time.Second):
		}
	}
}

func ptr[T any](v T) *T { return &v }

// configID names what uploads depend on, so that a mount started with other settings tries
// failed uploads again. The secret is hashed, never stored.
func configID(endpoint, region string, cred credentials.Credential) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", endpoint, region)
	if m, err := cred.GetCredential(); err == nil && m != nil {
		fmt.Fprintf(h, "%s\n%s\n", ptrValue(m.AccessKeyId), ptrValue(m.AccessKeySecret))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func ptrValue(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
