package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// settingChecks are the settings a file may hold, each checked as its flag is. Other flags (the
// debugging ones, --emulator) are the command line's only.
func settingChecks() map[string]func(v string) error {
	return map[string]func(v string) error{
		"region":          func(string) error { return nil }, // checked with endpoint, in Parse
		"endpoint":        func(string) error { return nil },
		"app-id":          func(string) error { return nil },
		"cache-dir":       func(string) error { return nil },
		"upload-delay":    checkDuration,
		"drain-timeout":   checkDuration,
		"ready-timeout":   checkDuration,
		"transfers":       checkPositive,
		"small-transfers": checkPositive,
		"temp-names":      func(v string) error { _, err := imsrules.NewAdmitter(v); return err },
		"part-size":       CheckPartSize,
		"cache-max-size":  checkSize,
		"on-overwrite":    func(v string) error { _, err := uploader.ParsePolicy(v); return err },
		"on-delete":       func(v string) error { _, err := uploader.ParsePolicy(v); return err },
		"bwlimit":         func(v string) error { _, err := uploader.ParseTimetable(v); return err },
		"sidecars":        checkBool,
		"library":         checkBool,
		"library-refresh": checkRefresh,
		"passthrough":     checkBool,
		"sync-on-close":   checkBool,
		"allow-other":     checkBool,
		"allow-non-empty": checkBool,
		"metrics-addr":    func(string) error { return nil },
		"notify":          checkBool,
		"log-level":       func(v string) error { return oneOf(v, "debug", "info", "warn", "error") },
		"log-format":      func(v string) error { return oneOf(v, "text", "json") },
	}
}

// Keys are the names of the settings a file may hold (besides folders), sorted.
func Keys() []string { return sortedKeys(settingChecks()) }

// folderKeys are what a folder entry may say: its type and business type, then what its
// files' assets get (assetKeys), then its junk names.
func folderKeys() []string {
	return []string{"type", "business-type", "cate-id", "tags", "app-id", "entity-id", "workflow", "storage-location", "callback-url", "ignore"}
}

// UploadRegions are the regions where CreateUploadMedia is available (CreateUploadMedia.md).
func UploadRegions() []string { return []string{"cn-shanghai", "cn-beijing", "cn-shenzhen"} }

func checkDuration(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 2s, 5m, 1h)", v)
	}
	if d < 0 {
		return errors.New("a duration of 0 or more is wanted")
	}
	return nil
}

// checkRefresh checks how often library/ is listed as the mount does, which refuses less than
// a second: said here, the refusal names the file's line rather than a flag never given.
func checkRefresh(v string) error {
	if err := checkDuration(v); err != nil {
		return err
	}
	if d, _ := time.ParseDuration(v); d < time.Second {
		return fmt.Errorf("%q: want 1s or more", v)
	}
	return nil
}

func checkPositive(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		return fmt.Errorf("%q: want a whole number of 1 or more", v)
	}
	return nil
}

// CheckPartSize checks a multipart part size, as OSS takes it (--part-size, part-size:): parts
// of 100KiB to 5GiB, and a file up to the part size goes in one PUT, which takes 5GiB at most.
func CheckPartSize(v string) error {
	n, err := humanize.ParseBytes(v)
	switch {
	case err != nil || n < 100<<10:
		return fmt.Errorf("%q: want a size of at least 100KiB, e.g. 8MiB", v)
	case n > 5<<30:
		return fmt.Errorf("%q: want a size of at most 5GiB, the largest part OSS takes", v)
	}
	return nil
}

func checkSize(v string) error {
	if _, err := humanize.ParseBytes(v); err != nil {
		return fmt.Errorf("%q: want a size, e.g. 20GiB", v)
	}
	return nil
}

func checkBool(v string) error {
	if _, err := strconv.ParseBool(v); err != nil {
		return fmt.Errorf("%q: want true or false", v)
	}
	return nil
}

func oneOf(v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return fmt.Errorf("%q: want %s", v, strings.Join(allowed, " or "))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
