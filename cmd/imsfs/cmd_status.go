package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/imsfs/imsfs/uploader"
)

func newStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "list the files of a running mount that are not ready, with their status and progress",
		ArgsUsage: "[PATH]",
		Description: "PATH is any path in the mount (default: the current directory). Exits 0; prints nothing\n" +
			"when every file is ready.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array for scripts"},
			&cli.BoolFlag{Name: "watch", Usage: "redraw every second, with progress bars, until interrupted"},
		},
		Action: func(c *cli.Context) error {
			p := "."
			if c.NArg() > 0 {
				p = c.Args().First()
			}
			_, sock, _, err := findMount(p)
			if err != nil {
				return err
			}
			for {
				list, err := fetchStatus(sock)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					if list == nil {
						list = []uploader.FileStatus{}
					}
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(list)
				}
				if c.Bool("watch") {
					fmt.Print("\033[H\033[2J") // home, clear
					fmt.Printf("imsfs: %d files not ready (%s)\n\n", len(list), time.Now().Format(time.TimeOnly))
				}
				w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				for _, f := range list {
					progress := ""
					if f.Total > 0 {
						progress = fmt.Sprintf("%s/%s", humanize.IBytes(uint64(f.Sent)), humanize.IBytes(uint64(f.Total)))
						if c.Bool("watch") {
							progress = bar(f.Sent, f.Total) + " " + progress
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Status, progress, f.Path, f.Error)
				}
				if err := w.Flush(); err != nil || !c.Bool("watch") {
					return err
				}
				select {
				case <-c.Context.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
}

func fetchStatus(sock string) ([]uploader.FileStatus, error) {
	resp, err := controlClient(sock).Get("http://imsfs/status")
	if err != nil {
		return nil, fmt.Errorf("the mount does not answer on %s: %w", sock, err)
	}
	defer resp.Body.Close()
	var list []uploader.FileStatus
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("the mount's answer: %w", err)
	}
	return list, nil
}

// bar draws sent/total as a 20-character bar.
func bar(sent, total int64) string {
	const width = 20
	n := int(min(sent, total) * width / max(total, 1))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func newWaitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until each file is ready (exit 0), or one failed or will not be uploaded (exit 1)",
		ArgsUsage: "PATH...",
		Description: "Reads user.ims.status of each PATH until it is ready. A failed or skipped file ends the wait\n" +
			"with exit status 1 and the reason; --timeout ends it with exit status 2.",
		Flags: []cli.Flag{&cli.DurationFlag{Name: "timeout", Usage: "give up after `D` (default: wait for ever)"}},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("wait takes one or more PATHs")
			}
			var deadline time.Time
			if d := c.Duration("timeout"); d > 0 {
				deadline = time.Now().Add(d)
			}
			for _, p := range c.Args().Slice() {
				for {
					status, err := getxattr(p, "user.ims.status")
					if err != nil {
						return cli.Exit(fmt.Sprintf("%s: %v", p, err), 1)
					}
					if status == "ready" {
						break
					}
					if status == "failed" || status == "skipped" {
						why, _ := getxattr(p, "user.ims.error")
						return cli.Exit(fmt.Sprintf("%s: %s: %s", p, status, why), 1)
					}
					if !deadline.IsZero() && time.Now().After(deadline) {
						return cli.Exit(fmt.Sprintf("%s: still %s after --timeout", p, status), 2)
					}
					time.Sleep(200 * time.Millisecond)
				}
				fmt.Printf("%s: ready\n", filepath.Clean(p))
			}
			return nil
		},
	}
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
