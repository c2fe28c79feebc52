package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/ims"
)

// controlSocket is the name of the running mount's control socket in its cache directory.
const controlSocket = "control.sock"

// control answers `imsfs status`, `retry` and `url` on a unix socket in the cache directory.
// The socket is its owner's only (mode 0600, and each peer's uid is checked): it hands out
// signed URLs and retries uploads.
type control struct {
	queue *uploader.Queue
	store *cache.Store
	urls  *uploader.Fetcher
	fsys  *fs.FS
	paces func() []ims.Pace // how fast IMS is called, action by action
	// library is library/'s listing, which status says is stale while IMS cannot be reached
	// [nil: --library=false].
	library *uploader.Library
	log     *slog.Logger
}

// throttledFor is how long a throttled action is shown in imsfs status after its last throttled
// answer, or while it is paced.
const throttledFor = 10 * time.Minute

// serve starts answering on sock; stop closes the socket and removes it (a clean exit leaves
// nothing behind).
func (c *control) serve(sock string) (stop func(), err error) {
	os.Remove(sock) // left by a mount that was killed; the store lock says none runs now
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", sock, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /url", c.url)
	mux.HandleFunc("POST /retry", c.retry)
	mux.HandleFunc("GET /status", c.status)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(&ownerOnly{Listener: ln, uid: os.Getuid(), log: c.log}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("control socket", "err", err)
		}
	}()
	return func() {
		srv.Close()
		<-done
		os.Remove(sock)
	}, nil
}

func (c *control) url(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	p := r.URL.Query().Get("path")
	life, err := time.ParseDuration(r.URL.Query().Get("expires"))
	if err != nil || life < time.Second || life > 24*time.Hour {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "--expires: want 1s to 24h (IMS signs URLs for 1 to 86400 seconds)"})
		return
	}
	rec, err := c.store.Get(p)
	switch {
	case errors.Is(err, cache.ErrNotFound):
		w.WriteHeader(http.StatusNotFound)
		err = fmt.Errorf("no such file in the mount")
	case err == nil && (!rec.State.Finished() || rec.MediaID == ""):
		w.WriteHeader(http.StatusConflict)
		err = fmt.Errorf("it is %s: a file has a URL once it is uploaded", rec.State)
	}
	out := map[string]string{"path": p}
	if err == nil {
		var until time.Time
		out["url"], until, err = c.urls.SignedURL(r.Context(), rec.MediaID, life)
		out["expires"] = until.UTC().Format(time.RFC3339)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
		}
	}
	if err != nil {
		out = map[string]string{"path": p, "error": err.Error()}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (c *control) retry(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query().Get("path")
	state, err := c.queue.Retry(p)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case errors.Is(err, cache.ErrNotFound):
		w.WriteHeader(http.StatusNotFound)
		err = fmt.Errorf("no such file in the mount")
	case errors.Is(err, cache.ErrNothingToRetry):
		w.WriteHeader(http.StatusConflict)
	case err != nil:
		w.WriteHeader(http.StatusInternalServerError)
	}
	out := map[string]string{"path": p, "state": string(state)}
	if err != nil {
		out["error"] = err.Error()
	} else {
		c.log.Info("retry asked", "path", p, "state", state)
	}
	_ = json.NewEncoder(w).Encode(out)
}

// status lists the files that are not ready (a file being written with the bytes it has so
// far), the assets whose deletion failed, and the most recent refusals.
func (c *control) status(w http.ResponseWriter, r *http.Request) {
	list, err := c.queue.Status()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for i := range list {
		if list[i].Status == string(cache.Writing) {
			if size, ok := c.fsys.Size(list[i].Path); ok {
				list[i].Total = size
			}
		}
	}
	if c.paces != nil {
		for _, p := range c.paces() {
			if p.Throttled == 0 || p.Limit == 0 && time.Since(p.Last) > throttledFor {
				continue
			}
			pace := "no longer slowed"
			if p.Limit > 0 {
				pace = fmt.Sprintf("called at most %.3g a second now", p.Limit)
			}
			list = append(list, uploader.FileStatus{Path: p.Action, Status: "throttled",
				Error: fmt.Sprintf("IMS answered %d calls with flow control (last: %s at %s); %s", p.Throttled, p.LastCode, p.Last.Format(time.TimeOnly), pace)})
		}
	}
	if table, rate := c.queue.Bandwidth(); !table.IsZero() {
		now := "no limit now (the timetable's slot is off)"
		if rate > 0 {
			now = "at most " + humanize.IBytes(uint64(rate)) + "/s now, across all transfers"
		}
		list = append(list, uploader.FileStatus{Path: "--bwlimit " + table.String(), Status: "bwlimit", Error: "uploads send " + now})
	}
	if c.library != nil {
		if st := c.library.State(); st.Stale != nil {
			listed := "never listed whole yet"
			if !st.Listed.IsZero() {
				listed = "listed whole at " + st.Listed.Format(time.DateTime)
			}
			list = append(list, uploader.FileStatus{Path: fs.LibraryDir + "/", Status: "stale",
				Error: fmt.Sprintf("IMS cannot be reached since %s: it shows the %d assets last listed (%s): %v", st.Since.Format(time.TimeOnly), st.Assets, listed, st.Stale)})
		}
	}
	for _, f := range c.fsys.Refusals() {
		list = append(list, uploader.FileStatus{Path: f.Path, Status: "refused",
			Error: fmt.Sprintf("%s %s: %s (%s)", f.Op, f.Errno, f.Reason, f.Time.Format(time.TimeOnly))})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// ownerOnly accepts connections from the mount's own user (and root) only.
type ownerOnly struct {
	net.Listener
	uid int
	log *slog.Logger
}

func (l *ownerOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return c, nil
		}
		raw, err := uc.SyscallConn()
		var cred *unix.Ucred
		if err == nil {
			err2 := raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
			if err2 != nil {
				err = err2
			}
		}
		if err == nil && (int(cred.Uid) == l.uid || cred.Uid == 0) {
			return c, nil
		}
		peer := -1
		if cred != nil {
			peer = int(cred.Uid)
		}
		l.log.Warn("refused", "op", "control", "path", l.Addr().String(), "reason", fmt.Sprintf("uid %d is not the mount's owner (uid %d)", peer, l.uid))
		c.Close()
	}
}
