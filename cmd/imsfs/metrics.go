package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/ims"
)

// metrics are the mount's Prometheus series (--metrics-addr). The uploader and the file system
// report through their Observer interfaces; what is a state (files by status, queue depth,
// cache bytes) is read at each scrape.
type metrics struct {
	reg        *prometheus.Registry
	sent       prometheus.Counter
	uploadTook prometheus.Histogram
	readyTook  prometheus.Histogram
	retries    *prometheus.CounterVec
	yielded    prometheus.Counter
	failures   *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	fsFailures *prometheus.CounterVec
	fsOps      *prometheus.CounterVec
	evictions  prometheus.Counter
	evicted    prometheus.Counter
}

func newMetrics() *metrics {
	// From 100 ms to about 4.5 h: a small file on a fast link to a large one on a slow link,
	// and readiness that IMS may take minutes for.
	buckets := prometheus.ExponentialBuckets(0.1, 2.5, 13)
	m := &metrics{
		reg: prometheus.NewRegistry(),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "imsfs_upload_sent_bytes_total",
			Help: "Bytes sent to OSS (a part sent again counts again)."}),
		uploadTook: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "imsfs_upload_duration_seconds",
			Help: "From a file's CreateUploadMedia to its complete object.", Buckets: buckets}),
		readyTook: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "imsfs_ready_duration_seconds",
			Help: "From a file's complete object to its asset being Normal.", Buckets: buckets}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imsfs_upload_retries_total",
			Help: "Upload tries that failed and were scheduled again, by error code (the service's, or Timeout, Network, Other)."}, []string{"code"}),
		yielded: prometheus.NewCounter(prometheus.CounterOpts{Name: "imsfs_upload_yielded_total",
			Help: "Uploads that waited for the mount's writers to pause before they started."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imsfs_upload_failures_total",
			Help: "Files whose upload failed for good, by error code (PrepareFail, ReadyTimeout, the service's…)."}, []string{"code"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imsfs_fuse_refusals_total",
			Help: "File system operations refused by design, by operation and errno."}, []string{"op", "errno"}),
		fsFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imsfs_fuse_failures_total",
			Help: "File system operations that failed (a full disk, a store error), by operation and errno."}, []string{"op", "errno"}),
		fsOps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imsfs_fuse_operations_total",
			Help: "Requests the kernel made of the mount, by operation and the errno answered (\"\" when it succeeded; ENOENT of a lookup or ENODATA of a getxattr is how tools ask, not a fault)."}, []string{"op", "errno"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "imsfs_cache_evictions_total",
			Help: "Ready files whose spool was dropped from the cache (--cache-max-size)."}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "imsfs_cache_evicted_bytes_total",
			Help: "Bytes of the spools dropped from the cache."}),
	}
	m.reg.MustRegister(m.sent, m.uploadTook, m.readyTook, m.retries, m.yielded, m.failures, m.refusals, m.fsFailures, m.fsOps, m.evictions, m.evicted,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watch adds the series read at each scrape: files by status, the queue, the cache.
func (m *metrics) watch(store *cache.Store, queue *uploader.Queue, fsys *fs.FS, library *uploader.Library, paces func() []ims.Pace, log *slog.Logger) {
	m.reg.MustRegister(&filesByStatus{store: store, log: log}, &imsPaces{paces: paces},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imsfs_queue_waiting_files", Help: "Files waiting for an upload worker (settle delay, backoff or a free worker)."},
			func() float64 { q, _ := queue.Depth(); return float64(q) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imsfs_queue_running_files", Help: "Files an upload worker is on."},
			func() float64 { _, r := queue.Depth(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imsfs_cache_bytes", Help: "Bytes the cache holds of the mount's files."},
			func() float64 { return float64(fsys.CachedBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imsfs_upload_bwlimit_bytes_per_second", Help: "The most bytes a second uploads send now, across all transfers (--bwlimit; 0: no limit)."},
			func() float64 { _, r := queue.Bandwidth(); return float64(r) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "imsfs_store_commits_total", Help: "Write transactions the store (bbolt) committed."},
			func() float64 { return float64(store.Commits()) }))
	if library != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imsfs_library_assets", Help: "Assets library/ shows (every asset in IMS with its file)."},
				func() float64 { return float64(library.State().Assets) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imsfs_library_stale", Help: "1 while IMS cannot be reached and library/ shows what was last listed."},
				func() float64 {
					if library.State().Stale != nil {
						return 1
					}
					return 0
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imsfs_library_cache_bytes", Help: "Bytes of library/'s files the cache holds (fetched on demand)."},
				func() float64 { return float64(fsys.LibraryCachedBytes()) }))
	}
}

// serve listens on addr and answers /metrics; it returns the address it listens on.
func (m *metrics) serve(addr string, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}

// filesByStatus is imsfs_files{status}: read from the store's index at each scrape.
type filesByStatus struct {
	store *cache.Store
	log   *slog.Logger
}

var filesDesc = prometheus.NewDesc("imsfs_files", "Files of the mount by status (user.ims.status).", []string{"status"}, nil)

func (c *filesByStatus) Describe(ch chan<- *prometheus.Desc) { ch <- filesDesc }

func (c *filesByStatus) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.store.CountByState()
	if err != nil {
		c.log.Error("metrics: count the files by status", "err", err)
		return
	}
	for _, st := range cache.States() {
		ch <- prometheus.MustNewConstMetric(filesDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}

// uploadObserver is what the uploader tells the metrics.
type uploadObserver struct{ m *metrics }

func (o uploadObserver) Sent(n int64)                 { o.m.sent.Add(float64(n)) }
func (o uploadObserver) Uploaded(took time.Duration)  { o.m.uploadTook.Observe(took.Seconds()) }
func (o uploadObserver) Ready(took time.Duration)     { o.m.readyTook.Observe(took.Seconds()) }
func (o uploadObserver) Retried(code string)          { o.m.retries.WithLabelValues(code).Inc() }
func (o uploadObserver) Failed(code string)           { o.m.failures.WithLabelValues(code).Inc() }
func (o uploadObserver) Outcome(string, bool, string) {}
func (o uploadObserver) Yielded()                     { o.m.yielded.Inc() }

// fsObserver is what the file system tells the metrics.
type fsObserver struct{ m *metrics }

func (o fsObserver) Refused(op, errno string) { o.m.refusals.WithLabelValues(op, errno).Inc() }
func (o fsObserver) Failed(op, errno string)  { o.m.fsFailures.WithLabelValues(op, errno).Inc() }
func (o fsObserver) Operation(op, errno string) {
	o.m.fsOps.WithLabelValues(op, errno).Inc()
}
func (o fsObserver) Evicted(bytes int64) {
	o.m.evictions.Inc()
	o.m.evicted.Add(float64(bytes))
}

// imsPaces are the IMS client's flow control, read at each scrape: how often the service
// throttled each action, and the pace the client holds it to.
type imsPaces struct{ paces func() []ims.Pace }

var (
	throttledDesc = prometheus.NewDesc("imsfs_ims_throttled_total",
		"IMS answers that were flow control (Throttling…, RequestsTooFrequent, ServiceUnavailable), by action; each call is tried again.", []string{"action"}, nil)
	paceDesc = prometheus.NewDesc("imsfs_ims_pace_calls_per_second",
		"The most calls a second imsfs makes of an action since the service throttled it (0: not slowed).", []string{"action"}, nil)
)

func (p *imsPaces) Describe(ch chan<- *prometheus.Desc) { ch <- throttledDesc; ch <- paceDesc }

func (p *imsPaces) Collect(ch chan<- prometheus.Metric) {
	for _, a := range p.paces() {
		ch <- prometheus.MustNewConstMetric(throttledDesc, prometheus.CounterValue, float64(a.Throttled), a.Action)
		ch <- prometheus.MustNewConstMetric(paceDesc, prometheus.GaugeValue, a.Limit, a.Action)
	}
}
