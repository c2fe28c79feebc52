package uploader

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// Retry is how failing calls are tried again: the one policy for uploads, parts, readiness
// checks, disposals and credential refreshes. Tests shrink it to run their retries fast.
//
// Retries of a file are spaced by Delay and kept in its record (Attempts, Due), so that they
// outlive a restart and wait in the queue's schedule, not in a worker; that is why the policy
// is a function of the attempt and not a loop with its own timer (as the backoff libraries have).
type Retry struct {
	First     time.Duration // the wait after the first failed try [1s]; it doubles from there
	Max       time.Duration // the longest wait [5m]
	Jitter    float64       // each wait is ± this fraction, so that files failing together do not retry together [0.2]
	PartTries int           // tries of one part, or one credential refresh, within one upload step, before the file goes back to the queue [4]
	PartFirst time.Duration // the wait after a part's (or refresh's) first failed try [200ms]
	Refreshes int           // credential refreshes in one step that makes no progress [5]
}

// DefaultRetry is the Retry of a zero Config.
var DefaultRetry = Retry{First: time.Second, Max: 5 * time.Minute, Jitter: 0.2, PartTries: 4, PartFirst: 200 * time.Millisecond, Refreshes: 5}

func (r Retry) withDefaults() Retry {
	d := DefaultRetry
	if r.First > 0 {
		d.First = r.First
	}
	if r.Max > 0 {
		d.Max = r.Max
	}
	if r.Jitter > 0 {
		d.Jitter = r.Jitter
	}
	if r.PartTries > 0 {
		d.PartTries = r.PartTries
	}
	if r.PartFirst > 0 {
		d.PartFirst = r.PartFirst
	}
	if r.Refreshes > 0 {
		d.Refreshes = r.Refreshes
	}
	return d
}

// Delay is the wait before try n+1, after n failed tries.
func (r Retry) Delay(n int) time.Duration {
	return r.jitter(min(r.First<<min(max(n-1, 0), 20), r.Max))
}

// partDelay is the wait before a part's try n+1.
func (r Retry) partDelay(n int) time.Duration {
	return r.jitter(min(r.PartFirst<<min(max(n-1, 0), 5), r.Max))
}

func (r Retry) jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 - r.Jitter + 2*r.Jitter*rand.Float64()))
}

// permanentError marks a failure that trying again cannot mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// temporary reports whether err may pass on its own: network trouble, throttling, server errors,
// expired credentials. It is the one place that sorts errors for retrying.
func temporary(err error) bool {
	var perm *permanentError
	var api *ims.APIError
	var oss *transfer.Error
	var crc *transfer.CRCError
	switch {
	case errors.As(err, &perm):
		return false
	case errors.As(err, &api):
		return api.Temporary()
	case errors.As(err, &oss), errors.As(err, &crc):
		return transfer.Temporary(err)
	case errors.Is(err, context.Canceled):
		return true
	}
	return true
}

// isThrottled reports whether err is the service's flow control: the call was refused before
// it acted, and may be made again as soon as the client's pace allows.
func isThrottled(err error) bool {
	var api *ims.APIError
	return errors.As(err, &api) && api.Throttled()
}
