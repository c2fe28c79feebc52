package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

func newURLCommand() *cli.Command {
	return &cli.Command{
		Name:      "url",
		Usage:     "print a URL of an uploaded file that opens as it is (signed), for --expires",
		ArgsUsage: "PATH",
		Description: "PATH is a file in a running imsfs mount that is uploaded or ready. The URL is signed by\n" +
			"IMS (GetMediaInfo with AuthTimeout) and opens with curl or a browser until it expires.\n" +
			"user.ims.file_url shows one too, renewed before it expires; user.ims.input_url is the\n" +
			"plain address, which a private bucket refuses.",
		Flags: []cli.Flag{&cli.DurationFlag{Name: "expires", Value: time.Hour, Usage: "how long the URL opens: 1s to 24h"}},
		Before: func(c *cli.Context) error {
			if d := c.Duration("expires"); d < time.Second || d > 24*time.Hour {
				return usagef("imsfs url: --expires %v: want 1s to 24h", d)
			}
			return nil
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("imsfs url takes one PATH (see: imsfs url --help)")
			}
			_, sock, rel, err := findMount(c.Args().First())
			if err != nil {
				return err
			}
			q := url.Values{"path": {rel}, "expires": {c.Duration("expires").String()}}
			req, err := http.NewRequestWithContext(c.Context, http.MethodGet, "http://imsfs/url?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			resp, err := controlClient(sock).Do(req)
			if err != nil {
				return fmt.Errorf("the mount does not answer on %s: %w", sock, err)
			}
			defer resp.Body.Close()
			var out struct{ URL, Expires, Error string }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				return fmt.Errorf("the mount's answer: %w", err)
			}
			if out.Error != "" {
				return errors.New(strings.TrimSpace(out.Error))
			}
			fmt.Fprintln(c.App.Writer, out.URL)
			return nil
		},
	}
}
