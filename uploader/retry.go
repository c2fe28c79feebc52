package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/imsfs/imsfs/cache"
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
	// Cap is how many tries in a row that get nowhere an error of a kind imsfs does not know to
	// pass by itself is given, before the file fails with it [10, about 20 minutes]. Errors
	// known to pass (the network, throttling, the service's 5xx, expired credentials) are tried
	// for as long as they last, at Max at the longest: a day offline loses nothing.
	Cap int
}

// DefaultRetry is the Retry of a zero Config.
var DefaultRetry = Retry{First: time.Second, Max: 5 * time.Minute, Jitter: 0.2, PartTries: 4, PartFirst: 200 * time.Millisecond, Refreshes: 5, Cap: 10}

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
	if r.Cap > 0 {
		d.Cap = r.Cap
	}
	return d
}

// backoff is a series of waits that double from first up to max, each ± jitter: the one shape
// of every wait between tries (a file's, a part's, a disposal's, a readiness check's).
type backoff struct {
	first, max time.Duration
	jitter     float64
	flat       int // the first flat waits are each first; the doubling starts after them
}

// delay is the wait before try n+1, after n tries.
func (b backoff) delay(n int) time.Duration {
	d := min(b.first<<min(max(n-1-b.flat, 0), 20), b.max)
	return time.Duration(float64(d) * (1 - b.jitter + 2*b.jitter*rand.Float64()))
}

// Delay is the wait before a file's (or a disposal's) try n+1, after n failed tries.
func (r Retry) Delay(n int) time.Duration {
	return backoff{first: r.First, max: r.Max, jitter: r.Jitter}.delay(n)
}

// inStep tries op up to PartTries times within one upload step, waiting on clock between tries,
// while it fails for a reason that may pass and stop does not say otherwise: one lost answer
// costs a short wait, not the file's way back to the queue. It returns op's last error.
func (r Retry) inStep(ctx context.Context, clock clockwork.Clock, stop func(error) bool, op func() error) error {
	steps := backoff{first: r.PartFirst, max: min(r.PartFirst<<5, r.Max), jitter: r.Jitter}
	for try := 1; ; try++ {
		err := op()
		if err == nil || ctx.Err() != nil || try >= r.PartTries || !temporary(err) || (stop != nil && stop(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clock.After(steps.delay(try)):
		}
	}
}

// unknowns counts the tries of rec in a row, this one (err) the last, that failed for a reason
// of no known kind: 0 when err is of a known kind; 1 when the run got somewhere first (fresh),
// or when the record's count means nothing (no failed try since it last got somewhere).
func unknowns(rec cache.Record, err error, fresh bool) int {
	switch {
	case kindOf(err) != unknownErr:
		return 0
	case fresh || rec.Attempts == 0:
		return 1
	}
	return rec.Unknowns + 1
}

// permanentError marks a failure that trying again cannot mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// errKind sorts errors for retrying.
type errKind int

const (
	unknownErr   errKind = iota // may pass or not: tried again, up to Retry.Cap times in a row
	temporaryErr                // passes by itself: tried again as long as it lasts
	permanentErr                // trying again cannot mend it
)

// kindOf sorts err: the one place that does. The service's and OSS's answers say what they
// are; the network's failures pass; anything else is unknown.
func kindOf(err error) errKind {
	var perm *permanentError
	var api *ims.APIError
	var oss *transfer.Error
	var crc *transfer.CRCError
	var nerr net.Error
	var errno syscall.Errno
	var garbled *json.SyntaxError
	switch {
	case errors.As(err, &perm):
		return permanentErr
	case errors.As(err, &api):
		return kindIf(api.Temporary())
	case errors.As(err, &oss), errors.As(err, &crc):
		return kindIf(transfer.Temporary(err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &nerr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return temporaryErr
	case errors.As(err, &garbled):
		// An answer that is not the service's JSON (a gateway's error page, a proxy's): the
		// service behind it is not what refused.
		return temporaryErr
	case errors.As(err, &errno):
		switch errno {
		case syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT,
			syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.ENOSPC, syscall.EDQUOT,
			syscall.EAGAIN, syscall.EMFILE, syscall.ENFILE:
			return temporaryErr
		}
	}
	return unknownErr
}

func kindIf(temporary bool) errKind {
	if temporary {
		return temporaryErr
	}
	return permanentErr
}

// temporary reports whether err may pass, on its own or after more tries.
func temporary(err error) bool { return kindOf(err) != permanentErr }

// isThrottled reports whether err is the service's flow control: the call was refused before
// it acted, and may be made again as soon as the client's pace allows.
func isThrottled(err error) bool {
	var api *ims.APIError
	return errors.As(err, &api) && api.Throttled()
}
