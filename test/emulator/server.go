// Package emulator is a local stand-in for Intelligent Media Services (IMS) and OSS: the cloud
// for every imsfs test, for `make run` and for the benchmarks. The unmodified darabonba-openapi
// client and aliyun-oss-go-sdk talk to it over HTTP: IMS RPC actions at / (ACS3-HMAC-SHA256 or
// legacy HMAC-SHA1 signed), OSS objects path-style at /BUCKET/KEY (V1 or V4 signed, with the STS
// credentials that CreateUploadMedia hands out). Under /_emulator/ tests find what it holds
// (media), what it did (stats), the faults it injects (faults) and account STS keys (sts).
package emulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. Zero values take the defaults in brackets.
type Options struct {
	AccessKeyID     string             // the one key pair IMS accepts [emulator]
	AccessKeySecret string             // [emulator-secret]
	DataDir         string             // objects and asset records are kept here (required)
	Bucket          string             // the bucket upload addresses point into [outin-emulator]
	Region          string             // [cn-shanghai]
	STSTTL          time.Duration      // how long upload credentials are valid [3000s, as IMS documents]
	ReadyDelay      time.Duration      // from a complete object to the asset's Normal status [0]
	MaxParts        int                // parts one multipart upload may have [10,000, as OSS]; tests lower it
	MaxMediaSize    int64              // the largest audio or video file the media library takes [5 GiB]; tests lower it
	Faults          string             // fault spec, see FaultSyntax [none]
	QPS             map[string]float64 // calls a second an IMS action may take, past which it answers Throttling.Api (qps.go) [no limit]
	FaultSeed       uint64             // seed for the fault draws [0]
	Log             *slog.Logger       // request errors are logged here [discarded]
}

// Server is one emulator instance.
type Server struct {
	opts Options // read only after New

	ln   net.Listener
	srv  *http.Server
	base string // http://IP:PORT, what upload addresses and URLs point at

	faults *faults
	qps    limiters
	stats  stats
	calls  sync.WaitGroup // message callbacks in flight
	done   chan struct{}  // closed by Close: callbacks give up
	closed sync.Once

	mu       sync.Mutex
	assets   map[string]*Asset // protected by mu: by MediaId
	byObject map[string]*Asset // protected by mu: by "bucket/key"
	// byTime is every asset in creation order (CreateTime, then MediaId), for the listing to
	// take a window of; sorted only when a listing needs it (unsorted is set when not).
	byTime   []*Asset               // protected by mu
	unsorted bool                   // protected by mu
	sts      map[string]*stsKey     // protected by mu: temporary keys by AccessKeyId
	nonces   map[string]time.Time   // protected by mu: signature nonces seen, with when
	uploads  map[string]*multipart  // protected by mu: unfinished multipart uploads by UploadId
	timers   map[string]*time.Timer // protected by mu: assets on their way to Normal
	hashing  map[string]bool        // protected by mu: assets whose object's MD5 is being taken
	hashed   *sync.Cond             // on mu: signalled when an MD5 is taken
	// assembling holds the objects whose Complete answered and which are being put together
	// (assemble.go), each with what closes when it is.
	assembling map[string]chan struct{} // protected by mu
}

// New prepares an emulator on opts.DataDir, loading what an earlier run left there.
func New(opts Options) (*Server, error) {
	if opts.AccessKeyID == "" {
		opts.AccessKeyID = "emulator"
	}
	if opts.AccessKeySecret == "" {
		opts.AccessKeySecret = "emulator-secret"
	}
	if opts.DataDir == "" {
		return nil, errors.New("emulator: a data directory is required")
	}
	if opts.Bucket == "" {
		opts.Bucket = "outin-emulator"
	}
	if opts.Region == "" {
		opts.Region = "cn-shanghai"
	}
	if opts.MaxMediaSize <= 0 {
		opts.MaxMediaSize = defaultMaxMedia
	}
	if opts.MaxParts <= 0 || opts.MaxParts > maxPartNum {
		opts.MaxParts = maxPartNum
	}
	if opts.STSTTL <= 0 {
		opts.STSTTL = 3000 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	for action := range opts.QPS {
		if _, ok := imsActions[action]; !ok {
			return nil, fmt.Errorf("emulator: qps: %q is not an action it answers", action)
		}
	}
	f, err := newFaults(opts.Faults, opts.FaultSeed)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	s := &Server{
		opts:     opts,
		faults:   f,
		qps:      newLimiters(opts.QPS),
		stats:    stats{requests: map[string]int64{}},
		done:     make(chan struct{}),
		assets:   map[string]*Asset{},
		byObject: map[string]*Asset{},
		nonces:   map[string]time.Time{},
		uploads:  map[string]*multipart{},
		timers:   map[string]*time.Timer{},
		hashing:  map[string]bool{},

		assembling: map[string]chan struct{}{},
	}
	s.hashed = sync.NewCond(&s.mu)
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen %s: %w", addr, err)
	}
	tcp := ln.Addr().(*net.TCPAddr)
	ip := tcp.IP
	if ip.IsUnspecified() {
		// Advertise an IP: the OSS SDK uses path-style addressing for IP endpoints by itself.
		ip = net.IPv4(127, 0, 0, 1)
	}
	s.ln = ln
	s.base = "http://" + net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	// Assets that were complete but not yet Normal when an earlier run stopped get there now.
	s.mu.Lock()
	for _, a := range s.assets {
		switch {
		case a.Status == "Preparing" && a.MD5 != "" && s.timers[a.MediaId] == nil:
			s._scheduleReady(a)
		case a.Status == "Preparing" && a.MD5 == "" && a.Size > 0 && !s.hashing[a.MediaId]:
			// Complete, but stopped before its MD5 was taken.
			if _, err := s.readMeta(objectIndex(a.Bucket, a.Key)); err == nil {
				s._hashLater(a)
			}
		}
	}
	s.mu.Unlock()
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Log.Error("emulator stopped", "err", err)
		}
	}()
	return nil
}

// URL returns the emulator's base URL, e.g. http://127.0.0.1:9000; it is also the IMS endpoint.
func (s *Server) URL() string { return s.base }

// AccessKey returns the key pair IMS accepts.
func (s *Server) AccessKey() (id, secret string) { return s.opts.AccessKeyID, s.opts.AccessKeySecret }

// Close stops serving. Assets still on their way to Normal get there at the next start.
func (s *Server) Close() error {
	s.mu.Lock()
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.closed.Do(func() { close(s.done) })
	s.calls.Wait()
	s.allSettled()
	s.waitHashes()
	if s.srv == nil {
		return nil
	}
	// Shutdown waits up to 5 s for connections a client dialed but never used; a short grace
	// period lets requests in flight finish, then the rest are cut.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// Handler routes a request to IMS, OSS or the inspection endpoints: one flat table.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_emulator/media", s.handleListMedia)
	mux.HandleFunc("GET /_emulator/stats", s.handleStats)
	mux.HandleFunc("/_emulator/faults", s.handleFaults)
	mux.HandleFunc("POST /_emulator/sts", s.handleIssueSTS)
	mux.HandleFunc("POST /_emulator/seed", s.handleSeed)
	mux.HandleFunc("/{$}", s.handleIMS)
	mux.HandleFunc("/{bucket}/{key...}", s.handleOSS)
	return mux
}

// requestID returns an ID shaped like the ones Alibaba Cloud services return.
func requestID() string {
	h := strings.ToUpper(randomHex(16))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
