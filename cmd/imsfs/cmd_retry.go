package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/urfave/cli/v2"
)

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
				return usagef("imsfs retry takes one or more PATHs (see: imsfs retry --help)")
			}
			bad := 0
			for _, p := range c.Args().Slice() {
				state, err := retryPath(c.Context, p)
				if err != nil {
					fmt.Fprintf(c.App.ErrWriter, "%s: %v\n", p, err)
					bad++
					continue
				}
				fmt.Fprintf(c.App.Writer, "%s: %s\n", p, state)
			}
			if bad > 0 {
				return cli.Exit("", exitFailed)
			}
			return nil
		},
	}
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
