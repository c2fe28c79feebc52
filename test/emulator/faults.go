package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultSyntax documents --faults; `imsfs emulator --help` prints it.
const FaultSyntax = `Fault injection (--faults SPEC, or PUT SPEC to /_emulator/faults at run time):

  SPEC   = RULE[,RULE...]
  RULE   = POINT=PROB:EFFECT[:EFFECT...]
  POINT  = ims.create | ims.refresh | ims.get | ims.update | ims.delete | ims.list
         | oss.put | oss.initiate | oss.part | oss.complete | oss.abort | oss.listparts
         | oss.listuploads | oss.get | oss.head | oss.delete | media.ready
         | ims.* | oss.* | *
  PROB   = chance in [0,1] that the rule's error EFFECT fires on a matching request
  EFFECT = NNN          answer with HTTP status NNN and the usual code for it
                        (500 InternalError, 503 ServiceUnavailable, ...)
         | CODE         answer with error CODE and its usual status (Throttling: 400,
                        SecurityTokenExpired: 403, NoSuchUpload: 404, ...)
         | CODE/NNN     answer with CODE and status NNN
         | reset        cut the connection: a request with a body is cut half-way through
                        it (nothing is stored); one without has its answer cut half-way
                        (the action has run: CreateUploadMedia made an asset)
         | fail         media.ready only: the asset ends PrepareFail, not Normal
         | corrupt      oss.put and oss.part only: the body is stored with its first byte
                        flipped, as if damaged on the way, and answered as OSS answers what
                        it stored (its ETag and CRC-64 are of the stored bytes)
         | latency=DUR  delay every matching request by DUR (a Go duration), whatever PROB

Rules are tried in order: latencies add up, and the first rule whose error fires decides the
answer. Errors come in the protocol's own shape (IMS JSON, OSS XML). With --fault-seed the
draws repeat from run to run. Example:
  --faults 'oss.part=0.2:500,ims.create=0.1:Throttling,oss.put=0.05:reset,*=0:latency=100ms'`

// faultRule is one RULE of a fault spec.
type faultRule struct {
	point   string
	prob    float64
	status  int
	code    string
	reset   bool
	fail    bool
	corrupt bool
	latency time.Duration
}

func (r *faultRule) matches(point string) bool {
	switch {
	case r.point == "*" || r.point == point:
		return true
	case strings.HasSuffix(r.point, ".*"):
		return strings.HasPrefix(point, strings.TrimSuffix(r.point, "*"))
	}
	return false
}

func (r *faultRule) hasError() bool {
	return r.status != 0 || r.code != "" || r.reset || r.fail || r.corrupt
}

// faultPoints are the points a rule may name, besides the wildcards.
var faultPoints = map[string]bool{
	"ims.create": true, "ims.refresh": true, "ims.get": true, "ims.update": true, "ims.delete": true, "ims.list": true,
	"oss.put": true, "oss.initiate": true, "oss.part": true, "oss.complete": true, "oss.abort": true,
	"oss.listparts": true, "oss.listuploads": true, "oss.get": true, "oss.head": true, "oss.delete": true,
	"media.ready": true,
}

// ParseFaults checks a fault spec (see FaultSyntax).
func ParseFaults(spec string) error {
	_, err := parseFaults(spec)
	return err
}

func parseFaults(spec string) ([]faultRule, error) {
	var rules []faultRule
	for _, text := range strings.Split(spec, ",") {
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		point, rest, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("fault rule %q: want POINT=PROB:EFFECT", text)
		}
		r := faultRule{point: strings.TrimSpace(point)}
		if !faultPoints[r.point] && r.point != "*" && r.point != "ims.*" && r.point != "oss.*" {
			return nil, fmt.Errorf("fault rule %q: unknown point %q", text, r.point)
		}
		parts := strings.Split(rest, ":")
		p, err := strconv.ParseFloat(parts[0], 64)
		if err != nil || p < 0 || p > 1 {
			return nil, fmt.Errorf("fault rule %q: probability %q is not a number in [0,1]", text, parts[0])
		}
		r.prob = p
		if len(parts) < 2 {
			return nil, fmt.Errorf("fault rule %q: no effect after the probability", text)
		}
		for _, e := range parts[1:] {
			if err := r.addEffect(e); err != nil {
				return nil, fmt.Errorf("fault rule %q: %w", text, err)
			}
		}
		if r.fail && r.point != "media.ready" {
			return nil, fmt.Errorf("fault rule %q: fail is only for media.ready", text)
		}
		if r.corrupt && r.point != "oss.put" && r.point != "oss.part" {
			return nil, fmt.Errorf("fault rule %q: corrupt is only for oss.put and oss.part", text)
		}
		if r.point == "media.ready" && (r.status != 0 || r.code != "" || r.reset) {
			return nil, fmt.Errorf("fault rule %q: media.ready takes fail or latency, not an answer", text)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func (r *faultRule) addEffect(e string) error {
	e = strings.TrimSpace(e)
	errorSet := r.hasError()
	switch {
	case strings.HasPrefix(e, "latency="):
		d, err := time.ParseDuration(strings.TrimPrefix(e, "latency="))
		if err != nil || d < 0 {
			return fmt.Errorf("bad latency %q", e)
		}
		r.latency += d
		return nil
	case e == "reset":
		r.reset = true
	case e == "fail":
		r.fail = true
	case e == "corrupt":
		r.corrupt = true
	case e == "":
		return fmt.Errorf("empty effect")
	default:
		code, status, hasStatus := strings.Cut(e, "/")
		if n, err := strconv.Atoi(code); err == nil && !hasStatus {
			code, status = "", strconv.Itoa(n)
		}
		if status != "" {
			n, err := strconv.Atoi(status)
			if err != nil || n < 400 || n > 599 {
				return fmt.Errorf("bad status in %q: want 400-599", e)
			}
			r.status = n
		}
		for _, c := range code {
			if !(c == '.' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return fmt.Errorf("bad error code %q", code)
			}
		}
		r.code = code
	}
	if errorSet {
		return fmt.Errorf("more than one error effect")
	}
	return nil
}

// faults holds the rules in force and counts what they did.
type faults struct {
	mu       sync.Mutex
	spec     string
	seed     uint64
	rules    []faultRule
	rng      *rand.Rand
	injected map[string]int64 // by point
}

func newFaults(spec string, seed uint64) (*faults, error) {
	f := &faults{injected: map[string]int64{}}
	return f, f.set(spec, seed)
}

func (f *faults) set(spec string, seed uint64) error {
	rules, err := parseFaults(spec)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spec, f.rules, f.seed = spec, rules, seed
	f.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return nil
}

// decide returns the delay and the error rule (nil for none) for one request at point.
func (f *faults) decide(point string) (time.Duration, *faultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var delay time.Duration
	var hit *faultRule
	for i := range f.rules {
		r := &f.rules[i]
		if !r.matches(point) {
			continue
		}
		delay += r.latency
		if hit == nil && r.hasError() && r.prob > 0 && f.rng.Float64() < r.prob {
			hit = r
		}
	}
	if hit != nil {
		f.injected[point]++
	}
	return delay, hit
}

func (f *faults) counts() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int64, len(f.injected))
	for k, v := range f.injected {
		out[k] = v
	}
	return out
}

// imsStatusCodes and ossStatusCodes give the code an injected status answers with, and the
// status an injected code answers with, in each protocol.
var (
	imsStatusCodes = map[int]string{400: "InvalidParameter", 403: "Forbidden.RAM", 404: "InvalidAction.NotFound", 429: "Throttling.User", 500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
	imsCodeStatus  = map[string]int{"RequestsTooFrequent": 403, "Throttling": 400, "Throttling.User": 400, "Throttling.Api": 400, "InternalError": 500, "ServiceUnavailable": 503, "SignatureDoesNotMatch": 400, "InvalidSecurityToken.Expired": 400, "Forbidden.RAM": 403, "InvalidAccessKeyId.NotFound": 404}
	ossStatusCodes = map[int]string{400: "InvalidArgument", 403: "AccessDenied", 404: "NoSuchKey", 409: "OperationAborted", 500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
	ossCodeStatus  = map[string]int{"SecurityTokenExpired": 403, "InvalidSecurityToken": 403, "AccessDenied": 403, "SignatureDoesNotMatch": 403, "RequestTimeTooSkewed": 403, "InvalidAccessKeyId": 403, "NoSuchUpload": 404, "NoSuchKey": 404, "InvalidPart": 400, "InvalidPartOrder": 400, "InvalidDigest": 400, "InternalError": 500, "ServiceUnavailable": 503, "SlowDown": 503}
)

// answer returns the status and code an error rule answers with in one protocol.
func (r *faultRule) answer(codeStatus map[string]int, statusCodes map[int]string) (int, string) {
	status, code := r.status, r.code
	if status == 0 {
		status = codeStatus[code]
		if status == 0 {
			status = 400
		}
	}
	if code == "" {
		code = statusCodes[status]
		if code == "" {
			code = "InjectedFault"
		}
	}
	return status, code
}

// inject applies the faults for one request. It returns true when it has answered the request
// itself, with an error in the protocol's shape (writeErr); a reset does not return at all.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, point string, writeErr func(status int, code string)) (http.ResponseWriter, bool) {
	s.count(point)
	delay, hit := s.faults.decide(point)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	if hit == nil {
		return w, false
	}
	if hit.reset {
		s.opts.Log.Info("fault injected", "point", point, "effect", "reset")
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			half := r.ContentLength / 2
			if half <= 0 {
				half = 64 << 10
			}
			n, _ := io.CopyN(io.Discard, r.Body, half)
			s.received(n)
			// ErrAbortHandler makes net/http close the connection without an answer; the
			// unread rest of the body makes the kernel send a reset.
			panic(http.ErrAbortHandler)
		}
		return &cutWriter{ResponseWriter: w}, false
	}
	if hit.corrupt {
		s.opts.Log.Info("fault injected", "point", point, "effect", "corrupt")
		r.Body = &flipFirst{ReadCloser: r.Body}
		return w, false
	}
	status, code := 0, ""
	if strings.HasPrefix(point, "ims.") {
		status, code = hit.answer(imsCodeStatus, imsStatusCodes)
	} else {
		status, code = hit.answer(ossCodeStatus, ossStatusCodes)
	}
	s.opts.Log.Info("fault injected", "point", point, "status", status, "code", code)
	writeErr(status, code)
	return w, true
}

// flipFirst flips the first byte read through it.
type flipFirst struct {
	io.ReadCloser
	done bool
}

func (f *flipFirst) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if n > 0 && !f.done {
		p[0] ^= 0xff
		f.done = true
	}
	return n, err
}

// cutWriter passes an answer through until half of its Content-Length, then cuts the connection.
type cutWriter struct {
	http.ResponseWriter
	limit   int64
	written int64
	started bool
}

func (c *cutWriter) WriteHeader(status int) {
	if !c.started {
		c.started = true
		cl, _ := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64)
		c.limit = cl / 2
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	if room := c.limit - c.written; int64(len(p)) > room {
		if room > 0 {
			_, _ = c.ResponseWriter.Write(p[:room])
		}
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	n, err := c.ResponseWriter.Write(p)
	c.written += int64(n)
	return n, err
}

// handleFaults shows (GET), replaces (PUT, the body is a SPEC; ?seed=N reseeds) or clears
// (DELETE) the faults in force.
func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut, http.MethodPost, http.MethodDelete:
		var spec []byte
		if r.Method != http.MethodDelete {
			var err error
			if spec, err = io.ReadAll(io.LimitReader(r.Body, 64<<10)); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		s.faults.mu.Lock()
		seed := s.faults.seed
		s.faults.mu.Unlock()
		if v := r.URL.Query().Get("seed"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				http.Error(w, "seed: "+err.Error(), http.StatusBadRequest)
				return
			}
			seed = n
		}
		if err := s.faults.set(strings.TrimSpace(string(spec)), seed); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.opts.Log.Info("faults changed", "spec", string(spec), "seed", seed)
	case http.MethodGet:
	default:
		http.Error(w, "use GET, PUT or DELETE", http.StatusMethodNotAllowed)
		return
	}
	s.faults.mu.Lock()
	out := map[string]any{"Spec": s.faults.spec, "Seed": s.faults.seed}
	s.faults.mu.Unlock()
	out["Injected"] = s.faults.counts()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// sortedKeys is for stable output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
