package fs

import (
	"path"
	"sort"
	"strings"

	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// Rule is what a mapped folder means for the files saved in it: the FileInfo.Type and the
// MediaMetaData.BusinessType their assets get.
type Rule struct {
	Type         string
	BusinessType string
	// Asset is what the folder adds to its files' CreateUploadMedia (AppId, CateId, a workflow…:
	// the configuration file's folders).
	Asset uploader.AssetSettings
	// Ignore are the junk names of the folder (path.Match patterns): kept, never uploaded, no
	// sidecar [nil: imsrules.DefaultJunkNames].
	Ignore []string
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
	return NewMapping(DefaultRules())
}

// DefaultRules are the rules of DefaultMapping, for a configuration to add to.
func DefaultRules() map[string]Rule {
	return map[string]Rule{
		"video":              {Type: "video", BusinessType: "general"},
		"video/opening":      {Type: "video", BusinessType: "opening"},
		"video/ending":       {Type: "video", BusinessType: "ending"},
		"image":              {Type: "image", BusinessType: "default"},
		"image/cover":        {Type: "image", BusinessType: "cover"},
		"audio":              {Type: "audio", BusinessType: "general"},
		"text/subtitles":     {Type: "text", BusinessType: "subtitles"},
		"text/font":          {Type: "text", BusinessType: "font"},
		"material/watermark": {Type: "image", BusinessType: "watermark"},
		"other":              {Type: "other", BusinessType: "general"},
	}
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

// Settings returns what the folder of the file at p adds to its asset.
func (m *Mapping) Settings(p string) uploader.AssetSettings {
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	r, _ := m.RuleFor(dir)
	return r.Asset
}

// Junk returns the junk-name patterns of the folder at dir (its rule's, or the defaults).
func (m *Mapping) Junk(dir string) []string {
	if dir == "." {
		dir = ""
	}
	if r, ok := m.RuleFor(dir); ok && r.Ignore != nil {
		return r.Ignore
	}
	return imsrules.DefaultJunkNames
}

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
