package config

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// parseFolders checks the folders mapping: each entry a folder path under the mount root,
// with settings IMS takes for its Type.
func parseFolders(p string, n *yaml.Node, errs *Error) []Folder {
	if n.Kind != yaml.MappingNode {
		errs.add(p, n.Line, "folders: want a mapping of folder paths (video/promo:) to their settings, not %s", kindName(n))
		return nil
	}
	entries := readFolders(p, n, errs)
	// Parents first, so that a folder below another of the file inherits what it sets.
	sort.SliceStable(entries, func(i, j int) bool {
		return strings.Count(entries[i].path, "/") < strings.Count(entries[j].path, "/")
	})
	rules := fs.DefaultRules()
	var out []Folder
	for _, e := range entries {
		rule, ok := e.typed(p, rules, errs)
		if ok && e.settle(p, &rule, errs) {
			rules[e.path] = rule
			out = append(out, Folder{Path: e.path, Line: e.line, Rule: rule})
		}
	}
	return out
}

// folderEntry is an entry of folders as the file gives it: what it inherits is known only once
// the folders above it are read.
type folderEntry struct {
	path string
	line int
	keys map[string]Setting
}

// readFolders reads the entries of the folders mapping n, each with the settings it gives.
func readFolders(p string, n *yaml.Node, errs *Error) []folderEntry {
	var entries []folderEntry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			errs.add(p, k.Line, "folders: a folder is named by its path (video/promo:), not %s", kindName(k))
			continue
		}
		dir, err := folderPath(k.Value)
		if err != nil {
			errs.add(p, k.Line, "folder %q: %v", k.Value, err)
			continue
		}
		if first, dup := seen[dir]; dup {
			errs.add(p, k.Line, "folder %s is given twice (first on line %d)", dir, first)
			continue
		}
		seen[dir] = k.Line
		e := folderEntry{path: dir, line: k.Line, keys: map[string]Setting{}}
		if v.Kind == yaml.MappingNode {
			e.readKeys(p, v, errs)
		} else if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			errs.add(p, v.Line, "folder %s: want its settings (type:, business-type:, …), not %s", dir, kindName(v))
			continue
		}
		entries = append(entries, e)
	}
	return entries
}

// readKeys reads the entry's settings, the mapping n.
func (e *folderEntry) readKeys(p string, n *yaml.Node, errs *Error) {
	seen := map[string]int{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		if k.Kind != yaml.ScalarNode {
			errs.add(p, k.Line, "folder %s: a setting's name is to be a word (tags:), not %s", e.path, kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			errs.add(p, k.Line, "folder %s: %s is set twice (first on line %d)", e.path, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if !slices.Contains(folderKeys(), k.Value) {
			errs.add(p, k.Line, "folder %s: unknown setting %q%s; a folder takes %s", e.path, k.Value, didYouMean(k.Value, folderKeys()), strings.Join(folderKeys(), ", "))
			continue
		}
		value, err := scalarOrList(v)
		if err != nil {
			errs.add(p, v.Line, "folder %s: %s: %v", e.path, k.Value, err)
			continue
		}
		e.keys[k.Value] = Setting{Name: k.Value, Value: value, Line: v.Line}
	}
}

// typed is the rule the entry starts from: what it inherits from rules (the folders above it),
// with the Type and BusinessType it gives. ok is false if it has none, or gives ones IMS does
// not take.
func (e *folderEntry) typed(p string, rules map[string]fs.Rule, errs *Error) (rule fs.Rule, ok bool) {
	rule, inherited := inheritedRule(rules, e.path)
	if typ, given := e.keys["type"]; given {
		if _, known := imsrules.BusinessTypes[typ.Value]; !known {
			errs.add(p, typ.Line, "folder %s: type %q: IMS takes %s", e.path, typ.Value, strings.Join(sortedKeys(imsrules.BusinessTypes), ", "))
			return rule, false
		}
		if typ.Value != rule.Type {
			rule = fs.Rule{Type: typ.Value, BusinessType: imsrules.BusinessTypes[typ.Value][0]}
		}
		inherited = true
	}
	if bt, given := e.keys["business-type"]; given {
		if !inherited {
			errs.add(p, bt.Line, "folder %s: a business-type needs a type (video, image, audio, text or other)", e.path)
			return rule, false
		}
		if !slices.Contains(imsrules.BusinessTypes[rule.Type], bt.Value) {
			errs.add(p, bt.Line, "folder %s: business-type %q is not one IMS takes for type %s: use %s", e.path, bt.Value, rule.Type, strings.Join(imsrules.BusinessTypes[rule.Type], ", "))
			return rule, false
		}
		rule.BusinessType = bt.Value
	}
	if !inherited {
		errs.add(p, e.line, "folder %s takes no files: it is not below a folder that does (video/, image/…); give it a type (video, image, audio, text or other)", e.path)
		return rule, false
	}
	return rule, true
}

// settle sets on rule what the entry gives its files' assets, and its junk names. It reports
// whether IMS would take each.
func (e *folderEntry) settle(p string, rule *fs.Rule, errs *Error) bool {
	ok := true
	for _, k := range folderKeys()[2:] {
		s, given := e.keys[k]
		if !given {
			continue
		}
		if err := setRule(rule, k, s.Value); err != nil {
			errs.add(p, s.Line, "folder %s: %s: %v", e.path, k, err)
			ok = false
		}
	}
	return ok
}

// setRule sets the setting k of a folder, from v, as IMS would take it: what its files' assets
// get, or its junk names.
func setRule(r *fs.Rule, k, v string) error {
	a, typ := &r.Asset, r.Type
	switch k {
	case "ignore":
		// Its own junk names, in place of the defaults (an empty list: none).
		r.Ignore = []string{}
		if v != "" {
			r.Ignore = strings.Split(v, ",")
		}
		return imsrules.CheckPatterns(r.Ignore)
	case "cate-id":
		id, err := imsrules.CheckMeta("cate_id", v, false) // the rule user.ims.cate_id follows
		if err != nil {
			return err
		}
		a.CateID, _ = strconv.ParseInt(id, 10, 64)
	case "tags":
		tags, err := imsrules.CheckMeta("tags", v, false)
		if err != nil {
			return err
		}
		a.Tags = tags
	case "app-id":
		a.AppID = v
	case "entity-id":
		a.EntityID = v
	case "workflow":
		if typ != "video" && typ != "audio" {
			return fmt.Errorf("IMS runs a workflow after the upload of video and audio only (PostProcessConfig), not %s", typ)
		}
		a.Workflow = v
	case "storage-location":
		if strings.Contains(v, "://") || strings.ContainsAny(v, "/?#") {
			return fmt.Errorf("%q: want a storage address of the media service (outin-….oss-cn-shanghai.aliyuncs.com, as the console lists it), not an OSS URL", v)
		}
		a.StorageLocation = v
	case "callback-url":
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q: want an http(s) URL", v)
		}
		a.CallbackURL = v
	}
	return nil
}

// inheritedRule is the rule a new folder at dir starts from: its own if the layout has it, or
// that of the nearest folder above it that takes files. ok is false if none does.
func inheritedRule(rules map[string]fs.Rule, dir string) (fs.Rule, bool) {
	for d := dir; d != "." && d != ""; d = path.Dir(d) {
		if r, ok := rules[d]; ok {
			return r, true
		}
	}
	return fs.Rule{}, false
}

// nameMax is the longest name of a file or folder Linux takes, in bytes (NAME_MAX).
const nameMax = 255

// folderPath cleans a folder path of the file: relative to the mount root, slash-separated,
// each name one the mount could make (mkdir would refuse the others).
func folderPath(s string) (string, error) {
	d := strings.Trim(s, "/")
	switch {
	case d == "" || d == ".":
		return "", errors.New("the root takes no files; name a folder under it")
	case path.Clean(d) != d || strings.Contains("/"+d+"/", "/../"):
		return "", errors.New("want a plain path under the mount root, like video/promo")
	}
	for _, name := range strings.Split(d, "/") {
		switch {
		case strings.HasSuffix(name, fs.SidecarSuffix):
			return "", errors.New("a name ending in .ims.json is a sidecar's")
		case strings.ContainsRune(name, 0):
			return "", errors.New("a name with a NUL byte, which no file system takes")
		case len(name) > nameMax:
			return "", fmt.Errorf("a name of %d bytes; at most %d are allowed", len(name), nameMax)
		}
	}
	return d, nil
}
