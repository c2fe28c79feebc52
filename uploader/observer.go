package uploader

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// Observer is told what the uploads do, for metrics (cmd turns it into Prometheus series). Its
// methods are called from many goroutines, on hot paths: they must be quick.
type Observer interface {
	Sent(n int64)                // bytes that went out to OSS (a try sent again counts again)
	Uploaded(took time.Duration) // a file's object is complete, took from its CreateUploadMedia
	Ready(took time.Duration)    // an asset is ready, took from its upload
	Retried(code string)         // a try failed and another is scheduled; code as ErrorCode
	Failed(code string)          // a file failed for good
	// Outcome: the file at path came to its end: ready, or failed for reason.
	Outcome(path string, ready bool, reason string)
	Yielded() // an upload waited for the mount's writers to pause (Config.Yield)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) Sent(int64)                   {}
func (NopObserver) Uploaded(time.Duration)       {}
func (NopObserver) Ready(time.Duration)          {}
func (NopObserver) Retried(string)               {}
func (NopObserver) Failed(string)                {}
func (NopObserver) Outcome(string, bool, string) {}
func (NopObserver) Yielded()                     {}

// Observers tells each of its observers.
type Observers []Observer

func (o Observers) Sent(n int64) {
	for _, x := range o {
		x.Sent(n)
	}
}

func (o Observers) Uploaded(took time.Duration) {
	for _, x := range o {
		x.Uploaded(took)
	}
}

func (o Observers) Ready(took time.Duration) {
	for _, x := range o {
		x.Ready(took)
	}
}

func (o Observers) Retried(code string) {
	for _, x := range o {
		x.Retried(code)
	}
}

func (o Observers) Failed(code string) {
	for _, x := range o {
		x.Failed(code)
	}
}

func (o Observers) Yielded() {
	for _, x := range o {
		x.Yielded()
	}
}

func (o Observers) Outcome(path string, ready bool, reason string) {
	for _, x := range o {
		x.Outcome(path, ready, reason)
	}
}

// ErrorCode names the kind of a failure in few words, for a metric's label: the service's own
// code (IMS or OSS) when it answered, else Timeout, Network, Canceled or Other.
func ErrorCode(err error) string {
	var api *ims.APIError
	var oss *transfer.Error
	var nerr net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &api) && api.Code != "":
		return api.Code
	case errors.As(err, &oss) && oss.Code != "":
		return oss.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "Timeout"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	case errors.As(err, &nerr):
		if nerr.Timeout() {
			return "Timeout"
		}
		return "Network"
	}
	return "Other"
}

// Depth is how many files wait for a worker (or, over one PUT, for a slot) and how many are
// being uploaded now.
func (q *Queue) Depth() (queued, running int) { return q.pool.depth() }
