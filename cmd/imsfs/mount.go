package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // --debug-pprof
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aliyun/credentials-go/credentials"
	"github.com/dustin/go-humanize"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/cmd/imsfs/config"
	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/test/emulator"
	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/imsrules"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// runMount mounts mountpoint and serves it until it is unmounted (a signal, or umount from
// outside), then gives the uploads under way --drain-timeout to finish.
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
	m, err := newMount(o, log)
	if err != nil {
		return err
	}
	defer m.close()
	if err := m.build(ctx); err != nil {
		return err
	}
	return m.run(ctx, mountpoint, stop)
}

// mount is a mount in the making: each step of build makes one part from those before it, and
// says how to stop it; close stops them, the last made first, as deferred calls would.
type mount struct {
	o   *mountOptions
	log *slog.Logger

	endpoint              string // "" with --emulator until the emulator runs
	cacheDir              string // absolute: the control socket's path is shown to commands run from anywhere
	names                 *imsrules.Admitter
	onOverwrite, onDelete uploader.Policy
	bandwidth             uploader.Timetable
	cacheMax, partSize    uint64

	store   *cache.Store
	cred    credentials.Credential
	client  *ims.Client
	fetcher *uploader.Fetcher
	upObs   uploader.Observer // nil: none
	fsObs   fs.Observer       // nil: none
	metrics *metrics          // nil: no --metrics-addr
	queue   *uploader.Queue
	library *uploader.Library // nil: --library=false
	chunks  *cache.Chunks     // nil: --library=false
	fsys    *fs.FS

	stopLibrary func() // ends library/'s listing and waits for it; idempotent
	closers     []func()
}

// newMount checks what the options say beyond their flags' own parsing, and settles the
// defaults that depend on the machine (the cache directory).
func newMount(o *mountOptions, log *slog.Logger) (*mount, error) {
	if o.mapping == nil {
		o.mapping = fs.DefaultMapping()
	}
	if o.cfg != nil {
		log.Info("configuration read", "file", o.cfg.Path, "settings", len(o.cfg.Settings), "folders", len(o.cfg.Folders))
	}
	m := &mount{o: o, log: log, cacheDir: o.cacheDir, stopLibrary: func() {}}
	var err error
	if !o.emulator {
		if m.endpoint, err = resolveEndpoint(o.endpoint, o.region); err != nil {
			return nil, err
		}
	}
	if o.pprofAddr != "" {
		go func() { log.Warn("pprof", "err", http.ListenAndServe(o.pprofAddr, nil)) }()
	}
	if m.names, err = imsrules.NewAdmitter(o.tempNames); err != nil {
		return nil, fmt.Errorf("--temp-names: %w", err)
	}
	m.names.SetJunk(o.mapping.Junk)
	if m.onOverwrite, err = uploader.ParsePolicy(o.onOverwrite); err != nil {
		return nil, fmt.Errorf("--on-overwrite: %w", err)
	}
	if m.onDelete, err = uploader.ParsePolicy(o.onDelete); err != nil {
		return nil, fmt.Errorf("--on-delete: %w", err)
	}
	if m.bandwidth, err = uploader.ParseTimetable(o.bwlimit); err != nil {
		return nil, fmt.Errorf("--bwlimit: %w", err)
	}
	if o.cacheMax != "" {
		if m.cacheMax, err = humanize.ParseBytes(o.cacheMax); err != nil {
			return nil, fmt.Errorf("--cache-max-size %q: %w", o.cacheMax, err)
		}
	}
	if err := config.CheckPartSize(o.partSize); err != nil {
		return nil, fmt.Errorf("--part-size %w", err)
	}
	m.partSize, _ = humanize.ParseBytes(o.partSize)
	if m.cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no --cache-dir given and no user cache dir: %w", err)
		}
		m.cacheDir = filepath.Join(base, "imsfs")
	}
	if m.cacheDir, err = filepath.Abs(m.cacheDir); err != nil {
		return nil, fmt.Errorf("--cache-dir: %w", err)
	}
	return m, nil
}

// onClose has close call stop: what a step starts is stopped whether the mount ends or a later
// step fails.
func (m *mount) onClose(stop func()) { m.closers = append(m.closers, stop) }

// close stops what the steps started, the last first.
func (m *mount) close() {
	for i := len(m.closers) - 1; i >= 0; i-- {
		m.closers[i]()
	}
}

// build makes the mount's parts, each from those before it, up to the file system, which run
// then mounts.
func (m *mount) build(ctx context.Context) error {
	if err := m.openStore(); err != nil {
		return err
	}
	if err := m.connect(ctx); err != nil {
		return err
	}
	m.observe()
	m.newQueue()
	if err := m.newLibrary(); err != nil {
		return err
	}
	m.newFS()
	return m.serveMetrics()
}

// openStore opens the cache directory's store, which also locks it: one mount a directory.
func (m *mount) openStore() error {
	store, err := cache.Open(m.cacheDir, cache.Options{Admission: m.names})
	if errors.Is(err, cache.ErrLocked) {
		return fmt.Errorf("%w: %s (is another imsfs mount using it? give each mount its own --cache-dir)", cache.ErrLocked, m.cacheDir)
	}
	if err != nil {
		return err
	}
	m.store = store
	m.onClose(func() { store.Close() })
	if n := store.FromLog(); n > 0 {
		m.log.Info("new files the last mount made just before it was stopped were recorded from the cache's log", "files", n, "cache_dir", m.cacheDir)
	}
	return nil
}

// connect finds the credentials, makes the IMS client and checks, with one call, that IMS
// takes them. With --emulator it first starts the embedded emulator, and uses its key.
func (m *mount) connect(ctx context.Context) error {
	var err error
	if m.o.emulator {
		if err := m.startEmulator(); err != nil {
			return err
		}
	} else if m.cred, err = credentials.NewCredential(nil); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	if m.client, err = ims.New(m.endpoint, m.o.region, m.cred); err != nil {
		return err
	}
	if err := checkAccess(ctx, m.client, m.cred, m.endpoint, m.log); err != nil {
		return err
	}
	if c, err := m.cred.GetCredential(); err == nil && c != nil && c.AccessKeyId != nil {
		m.log.Info("credentials", "from", deref(c.ProviderName), "kind", credentialKind(deref(c.ProviderName), c.SecurityToken != nil && *c.SecurityToken != ""),
			"access_key_id", maskKey(*c.AccessKeyId))
	}
	m.fetcher = uploader.NewFetcher(m.client)
	return nil
}

// startEmulator starts the embedded emulator, with its data in the cache directory, and makes
// it the endpoint, with its key.
func (m *mount) startEmulator() error {
	// The asset takes a second to prepare, as a real one takes a while: status shows uploaded first.
	emu, err := emulator.New(emulator.Options{DataDir: filepath.Join(m.cacheDir, "emulator"), ReadyDelay: time.Second, Log: m.log.With("component", "emulator")})
	if err != nil {
		return err
	}
	// The same port as last time if it is free: records of unfinished uploads point at it.
	portFile := filepath.Join(m.cacheDir, "emulator", "listen")
	last, _ := os.ReadFile(portFile)
	if len(last) == 0 || emu.Start(strings.TrimSpace(string(last))) != nil {
		if err := emu.Start("127.0.0.1:0"); err != nil {
			return err
		}
	}
	_ = os.WriteFile(portFile, []byte(strings.TrimPrefix(emu.URL(), "http://")), 0o644)
	m.onClose(func() { emu.Close() })
	id, secret := emu.AccessKey()
	m.endpoint = emu.URL()
	if m.cred, err = credentials.NewCredential(&credentials.Config{Type: ptr("access_key"), AccessKeyId: &id, AccessKeySecret: &secret}); err != nil {
		return fmt.Errorf("the emulator's key: %w", err)
	}
	fmt.Fprintf(os.Stderr, "imsfs: embedded emulator at %s (assets: curl %s/_emulator/media)\n", m.endpoint, m.endpoint)
	return nil
}

// observe makes what watches the uploads and the file system: the metrics (--metrics-addr)
// and the desktop notifications (--notify).
func (m *mount) observe() {
	var observers uploader.Observers
	if m.o.metricsAddr != "" {
		m.metrics = newMetrics()
		observers, m.fsObs = append(observers, uploadObserver{m.metrics}), fsObserver{m.metrics}
	}
	if m.o.notify {
		if d, err := newDesktop(m.log); err != nil {
			m.log.Warn("no desktop notifications", "err", err)
		} else {
			m.onClose(d.Close)
			observers = append(observers, d)
		}
	}
	if len(observers) > 0 {
		m.upObs = observers
	}
}

// newQueue makes the upload queue. It uploads nothing until run starts it, once the mount is up.
func (m *mount) newQueue() {
	o := m.o
	m.queue = uploader.New(uploader.Config{Store: m.store, IMS: m.client, Objects: transfer.New(2 * time.Minute), Log: m.log,
		Workers: o.workers, SmallWorkers: o.smallWorkers, Ready: uploader.ReadyCheck{Timeout: o.readyTimeout}, PartSize: int64(m.partSize), MaxParts: o.maxParts,
		Names: m.names, OnOverwrite: m.onOverwrite, OnDelete: m.onDelete, ConfigID: configID(m.endpoint, o.region, m.cred),
		Observer: m.upObs, AppID: o.appID, Settings: o.mapping.Settings, Bandwidth: m.bandwidth})
}

// newLibrary makes library/'s listing of the assets in IMS, unless --library=false.
func (m *mount) newLibrary() error {
	if !m.o.library {
		return nil
	}
	var err error
	if m.chunks, err = m.store.Chunks(); err != nil {
		return fmt.Errorf("library/: %w", err)
	}
	m.library, err = uploader.NewLibrary(uploader.LibraryConfig{Store: m.store, IMS: m.client, Chunks: m.chunks,
		Place: fs.LibraryFolder, Folders: fs.LibraryFolders(), Refresh: m.o.libRefresh, Log: m.log})
	if err != nil {
		return fmt.Errorf("library/: %w", err)
	}
	return nil
}

// newFS makes the file system the mount serves.
func (m *mount) newFS() {
	o, names := m.o, m.names
	m.fsys = fs.New(fs.Options{Store: m.store, Uploads: m.queue, UploadDelay: o.uploadDelay, Log: m.log,
		Objects: m.fetcher, CacheMaxSize: int64(m.cacheMax), ControlSocket: m.controlSocket(), Sidecars: o.sidecars, SyncOnClose: o.syncOnClose, NoPassthrough: !o.passthrough,
		Observer: m.fsObs, Mapping: o.mapping, Junk: func(p string) bool { _, junk := names.Junk(p); return junk },
		Library: m.library, Chunks: m.chunks})
}

// serveMetrics serves the metrics, with --metrics-addr, before the mount is up: an address
// that cannot be had stops the mount before it starts.
func (m *mount) serveMetrics() error {
	if m.metrics == nil {
		return nil
	}
	m.metrics.watch(m.store, m.queue, m.fsys, m.library, m.client.Paces, m.log)
	addr, err := m.metrics.serve(m.o.metricsAddr, m.log)
	if err != nil {
		return err
	}
	m.log.Info("metrics served", "url", "http://"+addr+"/metrics")
	return nil
}

func (m *mount) controlSocket() string { return filepath.Join(m.cacheDir, controlSocket) }

// run mounts the file system at mountpoint, starts the uploads, library/'s listing and the
// control socket, and serves until the mount is gone.
func (m *mount) run(ctx context.Context, mountpoint string, stop <-chan os.Signal) error {
	// Recovery comes first: it takes a file still "writing" as one whose writer is gone, which
	// is true only before the mount serves anyone. Uploads start once the mount is up: a
	// mount that fails leaves the backlog as it was.
	if err := m.queue.Recover(); err != nil {
		return err
	}
	server, err := m.fsys.Mount(mountpoint, fs.MountOptions{Debug: m.o.debugFUSE, AllowOther: m.o.allowOther})
	if err != nil {
		return fmt.Errorf("%w (is %s already a mount, or is FUSE unavailable? see /dev/fuse and fusermount3)", err, mountpoint)
	}
	m.queue.Run()
	m.runLibrary(ctx)
	ctl := &control{queue: m.queue, store: m.store, urls: m.fetcher, fsys: m.fsys, paces: m.client.Paces, library: m.library, log: m.log}
	if stop, err := ctl.serve(m.controlSocket()); err != nil {
		m.log.Warn("imsfs status, retry and url will not reach this mount", "err", err)
	} else {
		m.onClose(stop)
	}
	m.log.Info("mounted", "mountpoint", mountpoint, "endpoint", m.endpoint, "cache_dir", m.cacheDir)
	if err := notify("READY=1\nSTATUS=mounted on " + mountpoint); err != nil {
		m.log.Warn("systemd was not told the mount is ready", "err", err)
	}
	m.serve(ctx, server, mountpoint, stop)
	return nil
}

// runLibrary starts library/'s listing of IMS, to be ended by stopLibrary.
func (m *mount) runLibrary(ctx context.Context) {
	if m.library == nil {
		return
	}
	listing, stopListing := context.WithCancel(ctx)
	listed := make(chan struct{})
	go func() { m.library.Run(listing); close(listed) }()
	m.stopLibrary = sync.OnceFunc(func() { stopListing(); <-listed })
	m.onClose(m.stopLibrary) // before the store closes
}

// serve waits for the mount to be unmounted (on a signal, by unmountOnSignal, or from
// outside), then lets the uploads under way finish for --drain-timeout.
func (m *mount) serve(ctx context.Context, server *fuse.Server, mountpoint string, stop <-chan os.Signal) {
	// The drain exists from the start, for a signal after the unmount to end it; its
	// --drain-timeout runs from the unmount, however long the mount was up.
	drain, endDrain := context.WithCancel(ctx)
	defer endDrain()
	unmounted := make(chan struct{})
	go unmountOnSignal(stop, server, mountpoint, m.log, unmounted, endDrain)
	server.Wait()
	close(unmounted)
	m.stopLibrary() // no one to show it to
	m.fsys.Close()
	m.log.Info("unmounted", "mountpoint", mountpoint)

	drain, cancel := context.WithTimeout(drain, m.o.drainTimeout)
	defer cancel()
	if left := m.queue.Close(drain); left > 0 {
		m.log.Warn("uploads left for the next mount", "count", left, "cache_dir", m.cacheDir)
	}
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
