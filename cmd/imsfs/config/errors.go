package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Error is every problem of a configuration file, one "FILE:LINE: reason" a line, in the order
// of the file: a user fixes them top to bottom, and one run of imsfs config check shows them all.
type Error struct{ problems []problem }

type problem struct {
	line int
	text string
}

func (e *Error) Error() string {
	sorted := slices.Clone(e.problems)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].line < sorted[j].line })
	out := make([]string, len(sorted))
	for i, p := range sorted {
		out[i] = p.text
	}
	return strings.Join(out, "\n")
}

func (e *Error) add(file string, line int, format string, args ...any) {
	e.problems = append(e.problems, problem{line, fmt.Sprintf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))})
}

// didYouMean names the known key closest to k, for a misspelt one.
func didYouMean(k string, known []string) string {
	best, dist := "", 3 // more than two edits away is not a misspelling
	for _, c := range known {
		if d := editDistance(k, c); d < dist {
			best, dist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
