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
		case errors.Is(err, uploader.ErrNothingToRetry):
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

// retryPath finds the mount p is in (its root shows the control socket as user.ims.control)
// and asks it to retry p.
func retryPath(ctx context.Context, p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", err
	}
	root, sock := filepath.Dir(abs), ""
	for {
		buf := make([]byte, 4096)
		if n, err := unix.Getxattr(root, "user.ims.control", buf); err == nil {
			sock = string(buf[:n])
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("not in an imsfs mount (no folder above it shows user.ims.control)")
		}
		root = parent
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return "", err
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://imsfs/retry?path="+url.QueryEscape(filepath.ToSlash(rel)), nil)
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
