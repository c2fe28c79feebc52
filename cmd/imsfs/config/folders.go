package config

import (
	"errors"
	"fmt"
	"github.com/imsfs/imsfs/uploader/imsrules"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/uploader"
)

// parseFolders checks the folders mapping: each entry a folder path under the mount root,
// with settings IMS takes for its Type.
func parseFolders(p string, n *yaml.Node, errs *Error) []Folder {
	if n.Kind != yaml.MappingNode {
		errs.add(p, n.Line, "folders: want a mapping of folder paths (video/promo:) to their settings, not a %s", kindName(n))
		return nil
	}
	type entry struct {
		path string
		line int
		keys map[string]Setting
	}
	var entries []entry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
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
		e := entry{path: dir, line: k.Line, keys: map[string]Setting{}}
		if v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				fk, fv := v.Content[j], v.Content[j+1]
				if !slices.Contains(folderKeys(), fk.Value) {
					errs.add(p, fk.Line, "folder %s: unknown setting %q%s; a folder takes %s", dir, fk.Value, didYouMean(fk.Value, folderKeys()), strings.Join(folderKeys(), ", "))
					continue
				}
				value, err := scalarOrList(fv)
				if err != nil {
					errs.add(p, fv.Line, "folder %s: %s: %v", dir, fk.Value, err)
					continue
				}
				e.keys[fk.Value] = Setting{Name: fk.Value, Value: value, Line: fv.Line}
			}
		} else if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			errs.add(p, v.Line, "folder %s: want its settings (type:, business-type:, …), not a %s", dir, kindName(v))
			continue
		}
		entries = append(entries, e)
	}
	// Parents first, so that a folder below another of the file inherits what it sets.
	sort.SliceStable(entries, func(i, j int) bool {
		return strings.Count(entries[i].path, "/") < strings.Count(entries[j].path, "/")
	})
	rules := fs.DefaultRules()
	var out []Folder
	for _, e := range entries {
		rule, inherited := inheritedRule(rules, e.path)
		get := func(k string) (string, int, bool) { s, ok := e.keys[k]; return s.Value, s.Line, ok }
		if typ, line, ok := get("type"); ok {
			if _, known := imsrules.BusinessTypes[typ]; !known {
				errs.add(p, line, "folder %s: type %q: IMS takes %s", e.path, typ, strings.Join(sortedKeys(imsrules.BusinessTypes), ", "))
				continue
			}
			if typ != rule.Type {
				rule = fs.Rule{Type: typ, BusinessType: imsrules.BusinessTypes[typ][0]}
			}
			inherited = true
		}
		if bt, line, ok := get("business-type"); ok {
			if !inherited {
				errs.add(p, line, "folder %s: a business-type needs a type (video, image, audio, text or other)", e.path)
				continue
			}
			if !slices.Contains(imsrules.BusinessTypes[rule.Type], bt) {
				errs.add(p, line, "folder %s: business-type %q is not one IMS takes for type %s: use %s", e.path, bt, rule.Type, strings.Join(imsrules.BusinessTypes[rule.Type], ", "))
				continue
			}
			rule.BusinessType = bt
		}
		if !inherited {
			errs.add(p, e.line, "folder %s takes no files: it is not below a folder that does (video/, image/…); give it a type (video, image, audio, text or other)", e.path)
			continue
		}
		set := &rule.Asset
		ok := true
		for _, k := range folderKeys()[2:] {
			v, line, given := get(k)
			if !given {
				continue
			}
			if k == "ignore" {
				// Its own junk names, in place of the defaults (an empty list: none).
				rule.Ignore = []string{}
				if v != "" {
					rule.Ignore = strings.Split(v, ",")
				}
				if err := imsrules.CheckPatterns(rule.Ignore); err != nil {
					errs.add(p, line, "folder %s: ignore: %v", e.path, err)
					ok = false
				}
				continue
			}
			if err := setAsset(set, k, v, rule.Type); err != nil {
				errs.add(p, line, "folder %s: %s: %v", e.path, k, err)
				ok = false
			}
		}
		if ok {
			rules[e.path] = rule
			out = append(out, Folder{Path: e.path, Line: e.line, Rule: rule})
		}
	}
	return out
}

// setAsset sets the asset setting k of a folder of Type typ from v, as IMS would take it.
func setAsset(a *uploader.AssetSettings, k, v, typ string) error {
	switch k {
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

// folderPath cleans a folder path of the file: relative to the mount root, slash-separated.
func folderPath(s string) (string, error) {
	d := strings.Trim(s, "/")
	switch {
	case d == "" || d == ".":
		return "", errors.New("the root takes no files; name a folder under it")
	case path.Clean(d) != d || strings.Contains("/"+d+"/", "/../"):
		return "", errors.New("want a plain path under the mount root, like video/promo")
	case strings.HasSuffix(d, ".ims.json"):
		return "", errors.New("a name ending in .ims.json is a sidecar's")
	}
	return d, nil
}
