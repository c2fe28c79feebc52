package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader"
)

// controlSocket is the name of the running mount's control socket in its cache directory.
const controlSocket = "control.sock"

// serveControl answers `imsfs retry` on a unix socket until ctx is done.
func serveControl(ctx context.Context, sock string, queue *uploader.Queue, log *slog.Logger) error {
	os.Remove(sock) // left by a mount that was killed; the store lock says none runs now
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", sock, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /retry", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("path")
		state, err := queue.Retry(p)
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
			log.Info("retry asked", "path", p, "state", state)
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		list, err := queue.Status()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
		os.Remove(sock)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket", "err", err)
		}
	}()
	return nil
}

func newRetryCommand() *cli.Command {
	return &cli.Command{
		Name:      "retry",
		Usage:     "try the upload of files again now (failed ones, or ones waiting out a backoff)",
		ArgsUsage: "PATH...",
		Description: "PATH is a file in a running imsfs mount. A failed upload starts again (with a new asset if\n" +
			"it had one); one waiting out a backoff goes at once. A file whose write failed (a full\n" +
			"cache disk) must be written again instead. Exits 1 if any PATH could not be retried.\n" +
			"Failed uploads are also tried again by themselves when a mount starts with another\n" +
			"endpoint, region or key than the last one.",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("retry takes one or more PATHs")
			}
			bad := 0
			for _, p := range c.Args().Slice() {
				state, err := retryPath(c.Context, p)
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s: %v\n", p, err)
					bad++
					continue
				}
				fmt.Printf("%s: %s\n", p, state)
			}
			if bad > 0 {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// findMount returns the root of the imsfs mount p is in (the folder whose user.ims.control
// names the control socket), the socket, and p relative to the root.
func findMount(p string) (root, sock, rel string, err error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", "", "", err
	}
	root = abs
	for {
		buf := make([]byte, 4096)
		if n, err := unix.Getxattr(root, "user.ims.control", buf); err == nil {
			sock = string(buf[:n])
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", "", "", fmt.Errorf("not in an imsfs mount (no folder above it shows user.ims.control)")
		}
		root = parent
	}
	rel, err = filepath.Rel(root, abs)
	return root, sock, filepath.ToSlash(rel), err
}

// controlClient talks HTTP over a mount's control socket.
func controlClient(sock string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// retryPath asks the mount p is in to retry p.
func retryPath(ctx context.Context, p string) (string, error) {
	_, sock, rel, err := findMount(p)
	if err != nil {
		return "", err
	}
	client := controlClient(sock)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://imsfs/retry?path="+url.QueryEscape(rel), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("the mount does not answer on %s: %w", sock, err)
	}
	defer resp.Body.Close()
	var out struct{ State, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("the mount's answer: %w", err)
	}
	if out.Error != "" {
		return "", errors.New(strings.TrimSpace(out.Error))
	}
	return out.State, nil
}
