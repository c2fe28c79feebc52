package fs

import (
	"path"
	"sort"
	"strings"
)

// Rule is what a mapped folder means for the files saved in it: the FileInfo.Type and the
// MediaMetaData.BusinessType their assets get.
type Rule struct {
	Type         string
	BusinessType string
}

// Mapping is the folder layout of a mount: which folders exist from the start (fixed: they cannot
// be removed or renamed) and which of them take files (mapped). Folders a user makes below a
// mapped folder inherit its rule; nothing can be made in a fixed folder that is not mapped.
type Mapping struct {
	rules map[string]Rule // folder path → rule, for mapped folders
	fixed map[string]bool // the mapped folders and all their ancestors but the root
}

// DefaultMapping is the layout DESIGN.md gives: one folder per IMS media type, and below it the
// business types the reference allows for that type.
func DefaultMapping() *Mapping {
	return NewMapping(map[string]Rule{
		"video":              {"video", "general"},
		"video/opening":      {"video", "opening"},
		"video/ending":       {"video", "ending"},
		"image":              {"image", "default"},
		"image/cover":        {"image", "cover"},
		"audio":              {"audio", "general"},
		"text/subtitles":     {"text", "subtitles"},
		"text/font":          {"text", "font"},
		"material/watermark": {"image", "watermark"},
		"other":              {"other", "general"},
	})
}

// NewMapping builds a mapping from folder paths (slash-separated, relative to the mount root).
func NewMapping(rules map[string]Rule) *Mapping {
	m := &Mapping{rules: map[string]Rule{}, fixed: map[string]bool{}}
	for dir, r := range rules {
		dir = path.Clean(strings.Trim(dir, "/"))
		m.rules[dir] = r
		for d := dir; d != "." && d != ""; d = path.Dir(d) {
			m.fixed[d] = true
		}
	}
	return m
}

// Fixed returns the fixed folders, parents before children.
func (m *Mapping) Fixed() []string {
	out := make([]string, 0, len(m.fixed))
	for d := range m.fixed {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		di, dj := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		if di != dj {
			return di < dj
		}
		return out[i] < out[j]
	})
	return out
}

// IsFixed reports whether dir is the root or a fixed folder.
func (m *Mapping) IsFixed(dir string) bool { return dir == "" || m.fixed[dir] }

// RuleFor returns the rule for files in folder dir: that of dir itself or of the nearest mapped
// folder above it. ok is false where files may not be saved (the root, an unmapped fixed folder).
func (m *Mapping) RuleFor(dir string) (r Rule, ok bool) {
	for d := dir; d != "" && d != "."; d = path.Dir(d) {
		if r, ok := m.rules[d]; ok {
			return r, true
		}
		if m.fixed[d] {
			return Rule{}, false
		}
	}
	return Rule{}, false
}
