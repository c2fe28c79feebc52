// Package testutil holds what the tests of several packages share: the rule that a FUSE test
// never skips in CI, and the figures `make test` prints.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequireFUSE skips a test that needs FUSE where it cannot work, except in CI (CI set), where a
// FUSE test that cannot run is a failure.
func RequireFUSE(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "/dev/fuse is missing"
	} else if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			why = "not root and no fusermount3 (apt-get install fuse3)"
		}
	}
	if why == "" {
		return
	}
	SkipOutsideCI(t, "FUSE not available: "+why)
}

// SkipOutsideCI skips a test that cannot run here, for the reason why; in CI (CI set), where
// everything a test needs is installed, it fails it instead.
func SkipOutsideCI(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("cannot run in CI: %s", why)
	}
	t.Skip(why)
}

// Figure logs a measured figure, and appends it to the file IMSFS_FIGURES names, which
// `make test` prints at the end: go test shows no log of a passing test.
func Figure(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	FigureLine(t.Name(), line)
}

// FigureLine adds line, from who, to the figures printed after the run (IMSFS_FIGURES).
func FigureLine(who, line string) {
	if path := os.Getenv("IMSFS_FIGURES"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s: %s\n", who, line)
			f.Close()
		}
	}
}
