package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
			"when every file is ready. After the files: assets imsfs is to delete whose deletion failed\n" +
			"(\"deleting\"), library/ while IMS cannot be reached (\"stale\"), and the most recent\n" +
			"operations the mount refused, with why (\"refused\").",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array for scripts (with --watch, one array a line, every second)"},
			&cli.BoolFlag{Name: "watch", Usage: "redraw every second, with progress bars, until interrupted"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("imsfs status takes one PATH at most (see: imsfs status --help)")
			}
			p := "."
			if c.NArg() > 0 {
				p = c.Args().First()
			}
			_, sock, _, err := findMount(p)
			if err != nil {
				return err
			}
			out := c.App.Writer
			for {
				list, err := fetchStatus(sock)
				if err != nil {
					return err
				}
				switch {
				case c.Bool("json"):
					if list == nil {
						list = []uploader.FileStatus{}
					}
					enc := json.NewEncoder(out)
					if !c.Bool("watch") {
						enc.SetIndent("", "  ")
					}
					if err := enc.Encode(list); err != nil {
						return err
					}
				case c.Bool("watch"):
					fmt.Fprint(out, "\033[H\033[2J") // home, clear
					fmt.Fprintf(out, "imsfs: %s (%s)\n\n", notReady(list), time.Now().Format(time.TimeOnly))
					printStatus(out, list, true)
				default:
					printStatus(out, list, false)
				}
				if !c.Bool("watch") {
					return nil
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

// notReady says how many files are not ready: "1 file not ready", "2 files not ready".
func notReady(list []uploader.FileStatus) string {
	n := 0
	for _, f := range list {
		if f.Status != "refused" && f.Status != "deleting" && f.Status != "throttled" && f.Status != "stale" && f.Status != "bwlimit" {
			n++
		}
	}
	if n == 1 {
		return "1 file not ready"
	}
	return fmt.Sprintf("%d files not ready", n)
}

// printStatus writes the list as aligned rows: status, progress, path, error. An upload whose
// bytes are all sent says it is completing (the last call can take a while on a large file).
func printStatus(out io.Writer, list []uploader.FileStatus, bars bool) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	var refused, throttled, stale, limited []uploader.FileStatus
	for _, f := range list {
		switch f.Status {
		case "refused":
			refused = append(refused, f)
			continue
		case "stale":
			stale = append(stale, f)
			continue
		case "throttled":
			throttled = append(throttled, f)
			continue
		case "bwlimit":
			limited = append(limited, f)
			continue
		}
		progress := ""
		switch {
		case f.Status == "writing":
			progress = humanize.IBytes(uint64(f.Total)) + " written"
		case f.Total > 0 || f.Status == "uploading":
			progress = fmt.Sprintf("%s/%s", humanize.IBytes(uint64(f.Sent)), humanize.IBytes(uint64(f.Total)))
			if bars {
				progress = bar(f.Sent, f.Total) + " " + progress
			}
			if f.Status == "uploading" && f.Sent >= f.Total {
				progress += ", completing"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Status, progress, f.Path, oneLine(f.Error))
	}
	w.Flush()
	printSection(out, "uploads are limited (--bwlimit):", limited)
	printSection(out, "IMS is throttling (files wait and go on by themselves):", throttled)
	printSection(out, "the library is stale (it shows what was last listed, and lists again by itself):", stale)
	printSection(out, "recently refused:", refused)
}

// printSection writes a titled list of what is not a file's upload: path (or action) and why.
func printSection(out io.Writer, title string, list []uploader.FileStatus) {
	if len(list) == 0 {
		return
	}
	fmt.Fprintln(out, "\n"+title)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, f := range list {
		fmt.Fprintf(w, "  %s\t%s\n", f.Path, oneLine(f.Error))
	}
	w.Flush()
}

// oneLine keeps a row one line, whatever an error message holds.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

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
		Description: "Reads user.ims.status of each PATH until it is ready. A failed, skipped or local file ends the wait\n" +
			"with exit status 1 and the reason; --timeout ends it with exit status 3. A wrong command\n" +
			"line exits 2.",
		Flags: []cli.Flag{&cli.DurationFlag{Name: "timeout", Usage: "give up after `D`", DefaultText: "wait for ever"}},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("imsfs wait takes one or more PATHs (see: imsfs wait --help)")
			}
			if c.Duration("timeout") < 0 {
				return usagef("imsfs wait: --timeout takes a duration of 0 or more")
			}
			var deadline time.Time
			if d := c.Duration("timeout"); d > 0 {
				deadline = time.Now().Add(d)
			}
			for _, p := range c.Args().Slice() {
				if _, _, _, err := findMount(p); err != nil {
					return cli.Exit(fmt.Sprintf("%s: %v", p, err), exitFailed)
				}
				for {
					status, err := getxattr(p, "user.ims.status")
					if errors.Is(err, unix.ENODATA) {
						return cli.Exit(fmt.Sprintf("%s: not a file imsfs uploads (a folder, or a sidecar)", p), exitFailed)
					}
					if err != nil {
						return cli.Exit(fmt.Sprintf("%s: %v", p, err), exitFailed)
					}
					if status == "ready" {
						break
					}
					if status == "failed" || status == "skipped" || status == "local" {
						why, _ := getxattr(p, "user.ims.error")
						return cli.Exit(fmt.Sprintf("%s: %s: %s", p, status, why), exitFailed)
					}
					if !deadline.IsZero() && time.Now().After(deadline) {
						return cli.Exit(fmt.Sprintf("%s: still %s after --timeout", p, status), exitTimeout)
					}
					time.Sleep(200 * time.Millisecond)
				}
				fmt.Fprintf(c.App.Writer, "%s: ready\n", filepath.Clean(p))
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
