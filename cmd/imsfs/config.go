package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/uploader"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// A configuration file (--config, YAML) holds the mount's settings under the names of its
// flags, and folders: new ones with their Type and BusinessType, and what each folder's files
// get in their CreateUploadMedia. Flags given on the command line win over the file. The file
// is strict: an unknown key, a value a flag would refuse, or a folder IMS could not take stops
// the mount before it starts, with the file, the line and the reason.

// configKeys are the settings a file may hold, each checked as its flag is. Other flags (the
// debugging ones, --emulator) are the command line's only.
var configKeys = map[string]func(v string) error{
	"region":          func(string) error { return nil }, // checked with endpoint, in check
	"endpoint":        func(string) error { return nil },
	"app-id":          func(string) error { return nil },
	"cache-dir":       func(string) error { return nil },
	"upload-delay":    checkDuration,
	"drain-timeout":   checkDuration,
	"ready-timeout":   checkDuration,
	"transfers":       checkPositive,
	"small-transfers": checkPositive,
	"temp-names":      func(v string) error { _, err := imsrules.NewAdmitter(v); return err },
	"part-size":       checkPartSize,
	"cache-max-size":  func(v string) error { _, err := humanize.ParseBytes(v); return err },
	"on-overwrite":    func(v string) error { _, err := uploader.ParsePolicy(v); return err },
	"on-delete":       func(v string) error { _, err := uploader.ParsePolicy(v); return err },
	"sidecars":        checkBool,
	"library":         checkBool,
	"library-refresh": checkDuration,
	"passthrough":     checkBool,
	"sync-on-close":   checkBool,
	"allow-other":     checkBool,
	"allow-non-empty": checkBool,
	"metrics-addr":    func(string) error { return nil },
	"notify":          checkBool,
	"log-level":       func(v string) error { return oneOf(v, "debug", "info", "warn", "error") },
	"log-format":      func(v string) error { return oneOf(v, "text", "json") },
}

// folderKeys are what a folder entry may say.
var folderKeys = []string{"type", "business-type", "cate-id", "tags", "app-id", "entity-id", "workflow", "storage-location", "callback-url", "ignore"}

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

func checkPositive(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		return fmt.Errorf("%q: want a whole number of 1 or more", v)
	}
	return nil
}

func checkPartSize(v string) error {
	if n, err := humanize.ParseBytes(v); err != nil || n < 100<<10 {
		return fmt.Errorf("%q: want a size of at least 100KiB, e.g. 8MiB", v)
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

// config is a configuration file, read and checked.
type config struct {
	Path     string
	Settings []setting      // in the file's order
	Folders  []folderConfig // parents before children
}

type setting struct {
	Name, Value string
	Line        int
}

// folderConfig is one entry of folders: the rule it makes for its folder (Type and BusinessType
// given or inherited, and what its files' assets get).
type folderConfig struct {
	Path string
	Line int
	Rule fs.Rule
}

// configError is every problem of a configuration file, one "FILE:LINE: reason" a line, in
// the order of the file.
type configError struct{ lines []configProblem }

type configProblem struct {
	line int
	text string
}

func (e *configError) Error() string {
	sort.SliceStable(e.lines, func(i, j int) bool { return e.lines[i].line < e.lines[j].line })
	out := make([]string, len(e.lines))
	for i, l := range e.lines {
		out[i] = l.text
	}
	return strings.Join(out, "\n")
}

func (e *configError) add(file string, line int, format string, args ...any) {
	e.lines = append(e.lines, configProblem{line, fmt.Sprintf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))})
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

// defaultConfigPath is where the configuration file is looked for without --config.
func defaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "imsfs", "config.yaml")
}

// loadConfig reads and checks the configuration file at p.
func loadConfig(p string) (*config, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	return parseConfig(p, data)
}

// parseConfig checks data, the configuration file p, the way loadConfig does.
func parseConfig(p string, data []byte) (*config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	cfg := &config{Path: p}
	errs := &configError{}
	if len(doc.Content) == 0 {
		return cfg, nil // empty: every default
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		errs.add(p, root.Line, "the file is to be a mapping of settings (key: value), not a %s", kindName(root))
		return nil, errs
	}
	var folders *yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			errs.add(p, k.Line, "%s is set twice (first on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if k.Value == "folders" {
			folders = v
			continue
		}
		check, ok := configKeys[k.Value]
		if !ok {
			errs.add(p, k.Line, "unknown setting %q%s; the settings are folders and %s", k.Value, didYouMean(k.Value, sortedKeys(configKeys)), strings.Join(sortedKeys(configKeys), ", "))
			continue
		}
		value, err := scalarOrList(v)
		if err == nil {
			err = check(value)
		}
		if err != nil {
			errs.add(p, v.Line, "%s: %v", k.Value, err)
			continue
		}
		cfg.Settings = append(cfg.Settings, setting{Name: k.Value, Value: value, Line: v.Line})
	}
	if region, ok := cfg.setting("region"); ok {
		if _, endpoint := cfg.setting("endpoint"); !endpoint && !slices.Contains(uploadRegions, region.Value) {
			errs.add(p, region.Line, "region %s: CreateUploadMedia is available only in %s; use one of them, or set an endpoint", region.Value, strings.Join(uploadRegions, ", "))
		}
	}
	if folders != nil {
		cfg.Folders = parseFolders(p, folders, errs)
	}
	if len(errs.lines) > 0 {
		return nil, errs
	}
	return cfg, nil
}

func (c *config) setting(name string) (setting, bool) {
	for _, s := range c.Settings {
		if s.Name == name {
			return s, true
		}
	}
	return setting{}, false
}

// parseFolders checks the folders mapping: each entry a folder path under the mount root,
// with settings IMS takes for its Type.
func parseFolders(p string, n *yaml.Node, errs *configError) []folderConfig {
	if n.Kind != yaml.MappingNode {
		errs.add(p, n.Line, "folders: want a mapping of folder paths (video/promo:) to their settings, not a %s", kindName(n))
		return nil
	}
	type entry struct {
		path string
		line int
		keys map[string]setting
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
		e := entry{path: dir, line: k.Line, keys: map[string]setting{}}
		if v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				fk, fv := v.Content[j], v.Content[j+1]
				if !slices.Contains(folderKeys, fk.Value) {
					errs.add(p, fk.Line, "folder %s: unknown setting %q%s; a folder takes %s", dir, fk.Value, didYouMean(fk.Value, folderKeys), strings.Join(folderKeys, ", "))
					continue
				}
				value, err := scalarOrList(fv)
				if err != nil {
					errs.add(p, fv.Line, "folder %s: %s: %v", dir, fk.Value, err)
					continue
				}
				e.keys[fk.Value] = setting{Name: fk.Value, Value: value, Line: fv.Line}
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
	var out []folderConfig
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
		for _, k := range folderKeys[2:] {
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
			out = append(out, folderConfig{Path: e.path, Line: e.line, Rule: rule})
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

// scalarOrList reads a setting's value: a scalar, or a list of scalars (joined by commas: tags,
// temp-names).
func scalarOrList(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", errors.New("no value")
		}
		return n.Value, nil
	case yaml.SequenceNode:
		var items []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("want a list of plain values, not of %ss", kindName(c))
			}
			items = append(items, c.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", fmt.Errorf("want a value, not a %s", kindName(n))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// apply sets the flags the command line did not give from the file, and returns the folder
// layout: the default one with the file's folders added.
func (c *config) apply(ctx *cli.Context) (*fs.Mapping, error) {
	for _, s := range c.Settings {
		if ctx.IsSet(s.Name) {
			continue // the command line wins
		}
		if err := ctx.Set(s.Name, s.Value); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", c.Path, s.Line, s.Name, err)
		}
	}
	rules := fs.DefaultRules()
	for _, f := range c.Folders {
		rules[f.Path] = f.Rule
	}
	return fs.NewMapping(rules), nil
}

// newConfigCommand is `imsfs config`: an example file, and a check of one.
func newConfigCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "print an example configuration file, or check one",
		Subcommands: []*cli.Command{
			{
				Name:  "example",
				Usage: "print a commented configuration file (every setting, with its default)",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprint(c.App.Writer, exampleConfig)
					return err
				},
			},
			{
				Name:      "check",
				Usage:     "check a configuration file as a mount would read it: every problem with its line",
				ArgsUsage: "[FILE]",
				Action: func(c *cli.Context) error {
					p := c.Args().First()
					if p == "" {
						p = defaultConfigPath()
					}
					cfg, err := loadConfig(p)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: ok: %d settings, %d folders\n", p, len(cfg.Settings), len(cfg.Folders))
					for _, f := range cfg.Folders {
						fmt.Fprintf(c.App.Writer, "  %s/ → type %s, business type %s\n", f.Path, f.Rule.Type, f.Rule.BusinessType)
					}
					return nil
				},
			},
		},
	}
}

// exampleConfig is what `imsfs config example` prints; TestConfigExamplePasses checks it.
const exampleConfig = `# imsfs configuration (YAML). imsfs mount reads it from --config FILE, or from
# ~/.config/imsfs/config.yaml ($XDG_CONFIG_HOME/imsfs/config.yaml) when there is one.
# Each setting is a flag of imsfs mount, by the same name; a flag on the command line wins.
# Check a file with: imsfs config check FILE

# Where the assets go. CreateUploadMedia exists in cn-shanghai, cn-beijing and cn-shenzhen.
region: cn-shanghai
# endpoint: ice.cn-shanghai.aliyuncs.com   # default: the region's
# app-id: app-1000000                      # the AppId of every asset (default: IMS's)

# Uploads.
upload-delay: 2s        # settle time after the last close
transfers: 4            # files over one PUT (larger than part-size) uploaded at once
# small-transfers: 16     # files of one PUT (up to part-size) at once (default: 4 × transfers)
part-size: 8MiB         # multipart part size (at least 100KiB)
ready-timeout: 1h       # how long IMS may take to prepare an asset
drain-timeout: 30s      # on unmount, how long running uploads may go on
on-overwrite: keep      # keep or delete the asset of a file that gets new bytes
on-delete: keep         # keep or delete the asset of a file that is deleted
# temp-names: [".*.swp", "*~", "*.tmp"]    # names never uploaded (default: the editors' and tools')

# The cache.
# cache-dir: /var/cache/imsfs              # default: ~/.cache/imsfs
# cache-max-size: 20GiB                    # default: no bound
sidecars: true          # NAME.ims.json beside each file
library: true           # library/: every asset in IMS, read-only, read on demand
library-refresh: 30s    # how often library/ looks for new assets
passthrough: true       # the kernel writes new files straight to the cache (Linux 6.9+, as root)
sync-on-close: false    # fsync each file, its name and its record at every close (slower)

# Who and what.
allow-other: false      # let other users in (a folder re-exported over SMB or NFS)
allow-non-empty: false  # mount over a folder that holds files (hidden while mounted)
notify: false           # desktop notifications (session D-Bus)

# Logs and metrics.
log-level: info         # debug, info, warn or error
log-format: text        # text or json
# metrics-addr: 127.0.0.1:9464             # Prometheus metrics at /metrics (default: off)

# Folders: new ones, with their Type and BusinessType, and what the assets of the files saved
# in a folder (and in the folders below it) get. The default folders (video/, video/opening/,
# image/cover/, …) are there in any case; an entry for one adds settings to it.
folders:
  video/promo:                # a new folder: its files are video, business type opening
    type: video
    business-type: opening    # video: general, opening, ending
    cate-id: 1001             # the category of its assets
    tags: [promo, "2026"]     # at most 16
    workflow: 0123456789abcdef0123456789abcdef   # run after the upload (video and audio only)
    callback-url: https://example.com/ims-events # where IMS posts the assets' events
  image/cover:                # a default folder, with settings added
    tags: [cover]
    # app-id: app-1000000
    # entity-id: my-entity
    # storage-location: outin-0123456789abcdef.oss-cn-shanghai.aliyuncs.com
  video/raw:                  # names kept in the mount and never uploaded (no sidecar, status local);
    ignore: ["*.bak", ".DS_Store", "._*", "Thumbs.db"]   # the default: .DS_Store, ._*, Thumbs.db, desktop.ini, .~lock.*#, ~$*, .fuse_hidden*, .nfs*
`
