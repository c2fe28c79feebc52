// Command imsfs mounts a folder whose saved files become assets in the Intelligent Media
// Services (IMS) media library, and runs a local emulator of IMS and OSS.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/imsfs/imsfs/fs"
)

// Exit statuses: scripts tell them apart.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and something failed (a file failed, a mount could not start…)
	exitUsage   = 2 // the command line was wrong: nothing was done
	exitTimeout = 3 // imsfs wait --timeout ran out
)

func main() {
	if isHelper(os.Args[0]) {
		// Called as /sbin/mount.fuse.imsfs by mount(8), for fstab (see helper.go).
		os.Exit(runHelper(os.Args[1:], os.Stderr))
	}
	if calledByMountFuse(os.Args) {
		// Called as "imsfs SOURCE MOUNTPOINT -o OPTIONS" by mount.fuse3, for a fuse.imsfs line
		// of fstab when there is no /sbin/mount.fuse.imsfs.
		os.Exit(runHelper(os.Args[1:], os.Stderr))
	}
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// usageError is a command line that cannot run: it exits with exitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// stamped is the version `make build` stamps in (-ldflags -X main.stamped=…, from git
// describe); empty in a plain go build. Set by the linker, never changed.
var stamped string

// version names what the binary was built from: the version stamped in; else the module's
// version (go install …@v1.2.3); else the VCS revision and its date (a go build in a checkout,
// without -buildvcs=false); else "(devel)".
func version() string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(stamped, info)
}

func versionOf(stamped string, info *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if info == nil {
		return "(devel)"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if at != "" {
		return fmt.Sprintf("devel-%s%s (%s)", rev, dirty, at)
	}
	return "devel-" + rev + dirty
}

// newApp is the command line: every command, and how a wrong one is answered (briefly, with
// where to read more, and exit status 2).
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "imsfs",
		Usage:   "a folder whose files become Alibaba Cloud IMS media assets",
		Version: version(),
		Description: "Files saved under the mount's type folders (video/, image/cover/, …) are uploaded to the IMS\n" +
			"media library when closed. Each file shows its upload status, MediaId and URLs as extended\n" +
			"attributes: getfattr -d -m user.ims FILE. `imsfs help COMMAND` tells more of each command.",
		Commands:  []*cli.Command{newMountCommand(), newStatusCommand(), newWaitCommand(), newRetryCommand(), newURLCommand(), newDoctorCommand(), newSystemdUnitCommand(), newSambaConfCommand(), newConfigCommand(), newEmulatorCommand()},
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed and mapped to exit statuses by run, not by the library.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
	}
	for _, c := range app.Commands {
		c.OnUsageError = onUsageError
	}
	return app
}

// onUsageError answers a wrong flag with the error and where the help is, not the whole help.
func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	name := "imsfs"
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	return usagef("%s: %v (see: %s --help)", name, err, name)
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	unknown := false
	app.CommandNotFound = func(c *cli.Context, name string) {
		unknown = true
		var names []string
		for _, c := range app.Commands {
			names = append(names, c.Names()...)
		}
		if near := fs.Nearest(name, names); near != "" {
			fmt.Fprintf(stderr, "imsfs: no command %q; did you mean %q? (`imsfs help` lists them)\n", name, near)
			return
		}
		fmt.Fprintf(stderr, "imsfs: no command %q; `imsfs help` lists them\n", name)
	}
	err := app.RunContext(ctx, args)
	if unknown {
		return exitUsage
	}
	var usage *usageError
	var exit cli.ExitCoder
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, strings.TrimPrefix(err.Error(), "imsfs: "))
		return exitUsage
	case errors.As(err, &exit):
		if msg := strings.TrimSpace(err.Error()); msg != "" {
			fmt.Fprintln(stderr, "imsfs:", msg)
		}
		return exit.ExitCode()
	case strings.HasPrefix(err.Error(), "flag provided but not defined") || strings.HasPrefix(err.Error(), "Required flag"):
		fmt.Fprintf(stderr, "imsfs: %v (see: imsfs help)\n", err)
		return exitUsage
	}
	fmt.Fprintln(stderr, "imsfs:", err)
	return exitFailed
}

// newLogger returns the logger every command writes to: text lines on stderr.
func newLogger(debug bool) *slog.Logger {
	l, _ := logger(os.Stderr, "", "text", debug)
	return l
}

// logger is a logger on w at level ("debug", "info", "warn", "error"; "" is info, or debug
// with debug set) in format "text" (key=value lines) or "json" (one object a line).
func logger(w io.Writer, level, format string, debug bool) (*slog.Logger, error) {
	var lv slog.Level
	switch {
	case level == "" && debug:
		lv = slog.LevelDebug
	case level == "":
		lv = slog.LevelInfo
	default:
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, usagef("--log-level %q: use debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: use text or json", format)
}
