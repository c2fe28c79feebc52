package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The commands that talk to a running mount (status, wait, retry, url) reach it through the
// control socket its root folder names.

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
