package main

import (
	"strings"
	"testing"

	"github.com/imsfs/imsfs/cmd/imsfs/config"
)

// TestHelpAndConfigAgree: the example names every setting a configuration file takes (so that
// what it prints is what docs/configuration.md says it prints), and `imsfs help mount` gives every default
// in one form.
func TestHelpAndConfigAgree(t *testing.T) {
	for _, key := range config.Keys() {
		if !strings.Contains(config.Example, "\n"+key+":") && !strings.Contains(config.Example, "\n# "+key+":") {
			t.Errorf("imsfs config example leaves out %s, which the file takes", key)
		}
	}
	_, out, _ := runCLI(t, "help", "mount")
	for _, line := range strings.Split(out, "\n") {
		if i := strings.LastIndex(line, " ["); i > 0 && strings.HasSuffix(line, "]") {
			t.Errorf("a default in brackets, not (default: …): %s", line)
		}
	}
}
