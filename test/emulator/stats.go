package emulator

import (
	"encoding/json"
	"net/http"
	"sync"
)

// stats counts what the emulator was asked and did, for tests and benchmarks.
type stats struct {
	mu              sync.Mutex
	requests        map[string]int64 // by fault point, e.g. "oss.part"
	bytesReceived   int64            // request bodies OSS read
	callbacksSent   int64
	callbacksFailed int64
}

func (s *Server) count(point string) {
	s.stats.mu.Lock()
	s.stats.requests[point]++
	s.stats.mu.Unlock()
}

func (s *Server) received(n int64) {
	s.stats.mu.Lock()
	s.stats.bytesReceived += n
	s.stats.mu.Unlock()
}

// Stats is what GET /_emulator/stats answers.
type Stats struct {
	Requests        map[string]int64 // by action, named as fault points: ims.create, oss.part, ...; and OSS requests by signature, oss.signed.v1 and oss.signed.v4
	Faults          map[string]int64 // faults injected, by point
	BytesReceived   int64            // object bytes OSS read from request bodies, parts included
	BytesStored     int64            // sizes of the complete objects held now
	Objects         int
	Assets          map[string]int // by status
	Multipart       int            // unfinished multipart uploads
	CallbacksSent   int64
	CallbacksFailed int64
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	out := Stats{Requests: map[string]int64{}, Assets: map[string]int{}, Faults: s.faults.counts()}
	s.stats.mu.Lock()
	for k, v := range s.stats.requests {
		out.Requests[k] = v
	}
	out.BytesReceived, out.CallbacksSent, out.CallbacksFailed = s.stats.bytesReceived, s.stats.callbacksSent, s.stats.callbacksFailed
	s.stats.mu.Unlock()
	s.mu.Lock()
	for _, a := range s.assets {
		out.Assets[a.Status]++
	}
	out.Multipart = len(s.uploads)
	s.mu.Unlock()
	s.allSettled()
	out.Objects, out.BytesStored = s.storedBytes()
	return out
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Stats())
}

// countingReader counts the bytes read through it into the stats.
type countingReader struct {
	s *Server
	r interface{ Read([]byte) (int, error) }
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.s.received(int64(n))
	return n, err
}
