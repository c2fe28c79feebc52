package uploader

import (
	"sync"
	"time"

	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// refreshAhead is how long before they expire upload credentials are renewed, at the most: for
// short-lived credentials, a third of their life.
const refreshAhead = time.Minute

// liveCreds are the upload credentials of one record's generation, in memory only. Every OSS
// request signs with them as they are at that moment, so a refresh swaps them under requests in
// flight and an upload of hours outlives credentials of seconds.
type liveCreds struct {
	gen uint64 // read only

	mu      sync.Mutex
	creds   transfer.Credentials // protected by mu
	expires time.Time            // protected by mu
	life    time.Duration        // protected by mu: from when they were received to when they expire
}

func (c *liveCreds) get() transfer.Credentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creds
}

func (c *liveCreds) set(a ims.Auth, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creds = transfer.Credentials{AccessKeyID: a.AccessKeyID, AccessKeySecret: a.AccessKeySecret, SecurityToken: a.SecurityToken}
	c.expires, c.life = a.Expires, a.Expires.Sub(now)
}

// stale reports whether the credentials are to be renewed before the next request.
func (c *liveCreds) stale(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creds.AccessKeyID == "" {
		return true
	}
	if c.expires.IsZero() {
		return false
	}
	return c.expires.Sub(now) < min(refreshAhead, c.life/3)
}

// expire marks the credentials stale: OSS said they are no longer valid.
func (c *liveCreds) expire() {
	c.mu.Lock()
	c.expires, c.life = time.Unix(1, 0), 0
	c.mu.Unlock()
}

// credCache holds the upload credentials of the uploads under way, by record, in memory only:
// they are renewed from IMS after a restart, and leave memory as soon as an upload ends.
type credCache struct {
	mu    sync.Mutex
	byRec map[uint64]*liveCreds // protected by mu
}

func newCredCache() *credCache { return &credCache{byRec: map[uint64]*liveCreds{}} }

// keep remembers the upload credentials of record id's generation gen.
func (c *credCache) keep(id, gen uint64, a ims.Auth, now time.Time) {
	l := &liveCreds{gen: gen}
	l.set(a, now)
	c.mu.Lock()
	c.byRec[id] = l
	c.mu.Unlock()
}

// of returns the credentials of record id's generation gen; none in memory (after a restart,
// or for a new generation) are asked for on first use.
func (c *credCache) of(id, gen uint64) *liveCreds {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.byRec[id]
	if l == nil || l.gen != gen {
		l = &liveCreds{gen: gen}
		c.byRec[id] = l
	}
	return l
}

// drop forgets record id's credentials: its upload ended, or its file is gone.
func (c *credCache) drop(id uint64) {
	c.mu.Lock()
	delete(c.byRec, id)
	c.mu.Unlock()
}

// dropOther forgets record id's credentials unless they are generation gen's.
func (c *credCache) dropOther(id, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.byRec[id]; l != nil && l.gen != gen {
		delete(c.byRec, id)
	}
}

// len is how many uploads have credentials in memory (for tests: none once every upload ended).
func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byRec)
}
