package config

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"go.yaml.in/yaml/v3"

	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// accepted are files Parse takes, besides Example, for FuzzConfig to start from.
func accepted() []string {
	return []string{
		"",
		"# nothing but a comment\n",
		"library: false\n",
		"region: cn-hangzhou\nendpoint: ice.cn-hangzhou.aliyuncs.com\ntemp-names: [\".*.swp\", \"*~\"]\n",
		"folders:\n  video/promo/teaser:\n    tags: [teaser]\n  video/promo:\n    type: video\n    business-type: ending\n    cate-id: 5\n  audio/podcast:\n    workflow: w1\n",
		"upload-delay: 1h\non-delete: delete\nfolders:\n  video/promo:\n    type: video\n    business-type: opening\n    cate-id: 7\n" +
			"    tags: [promo, launch]\n    app-id: app-2000000\n    entity-id: campaign-9\n    workflow: 0123456789abcdef0123456789abcdef\n" +
			"    storage-location: outin-0123456789.oss-cn-shanghai.aliyuncs.com\n    callback-url: https://example.com/ims-events\n  image/cover:\n    tags: [cover]\n",
		"folders:\n  video/raw:\n    ignore: []\n  video/raw/keep:\n    type: image\n  other/x:\n",
	}
}

// FuzzConfig: whatever bytes the file holds, Parse does not panic; what it refuses, it refuses
// with the file and a line; what it takes, the mount can use: every setting is one a flag takes,
// every folder a name a user could make, with a Type and BusinessType IMS takes and asset
// settings that pass its checks; the layout the file makes gives each folder its rule; and the
// file written back from what was read is read the same.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(Example))
	for _, file := range accepted() {
		f.Add([]byte(file))
	}
	for _, c := range refusals() {
		f.Add([]byte(c.file))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("refused with a configuration: %v", err)
			}
			checkRefusal(t, err)
			return
		}
		checkSettings(t, cfg)
		checkFolders(t, cfg)
		again, err := Parse("again.yaml", writeBack(t, cfg))
		if err != nil {
			t.Fatalf("what was read, written back, is refused: %v", err)
		}
		if got, want := unlined(again), unlined(cfg); !reflect.DeepEqual(got, want) {
			t.Fatalf("what was read, written back, reads otherwise:\n got %#v\nwant %#v", got, want)
		}
	})
}

var problemLine = regexp.MustCompile(`^f\.yaml:([1-9][0-9]*): `)

// checkRefusal: a refusal is YAML's (which names its line), or problems each with its line,
// in the order of the file.
func checkRefusal(t *testing.T, err error) {
	var problems *Error
	if !errors.As(err, &problems) {
		if !strings.HasPrefix(err.Error(), "f.yaml: yaml: ") {
			t.Fatalf("a refusal that is neither YAML's nor the file's problems: %v", err)
		}
		return
	}
	last := 0
	for _, l := range strings.Split(err.Error(), "\n") {
		m := problemLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("a problem without its file and line: %q", l)
		}
		n, _ := strconv.Atoi(m[1])
		if n < last {
			t.Fatalf("problems out of the file's order:\n%v", err)
		}
		last = n
	}
}

// checkSettings: each setting is one the file may hold, once, with a value its flag takes.
func checkSettings(t *testing.T, cfg *Config) {
	checks := settingChecks()
	seen := map[string]bool{}
	for _, s := range cfg.Settings {
		check, ok := checks[s.Name]
		switch {
		case !ok:
			t.Fatalf("unknown setting %q taken", s.Name)
		case seen[s.Name]:
			t.Fatalf("setting %q taken twice", s.Name)
		case check(s.Value) != nil:
			t.Fatalf("setting %s: %q taken: %v", s.Name, s.Value, check(s.Value))
		}
		seen[s.Name] = true
	}
	checkMountTakes(t, cfg)
}

// checkMountTakes: the mount, which checks its flags again once the file has set them, takes
// what the file gives; a refusal then would name a flag the user never gave, not the file's
// line. It uploads the bytes as OSS takes them, so part-size is within OSS's part sizes.
func checkMountTakes(t *testing.T, cfg *Config) {
	endpoint, _ := cfg.Setting("endpoint")
	if r, ok := cfg.Setting("region"); ok && endpoint.Value == "" && !slices.Contains(UploadRegions(), r.Value) {
		t.Fatalf("region %q taken without an endpoint", r.Value)
	}
	if s, ok := cfg.Setting("library-refresh"); ok {
		if d, err := time.ParseDuration(s.Value); err != nil || d < time.Second {
			t.Fatalf("library-refresh %q taken: the mount wants 1s or more", s.Value)
		}
	}
	if s, ok := cfg.Setting("part-size"); ok {
		if n, err := humanize.ParseBytes(s.Value); err != nil || n < 100<<10 || n > 5<<30 {
			t.Fatalf("part-size %q taken: OSS takes parts of 100KiB to 5GiB", s.Value)
		}
	}
}

// checkFolders: each folder is a path a user could make, parents first, with a rule IMS takes,
// and the layout gives it that rule.
func checkFolders(t *testing.T, cfg *Config) {
	m := cfg.Mapping()
	seen := map[string]bool{}
	depth := 0
	for _, f := range cfg.Folders {
		if seen[f.Path] {
			t.Fatalf("folder %q taken twice", f.Path)
		}
		seen[f.Path] = true
		if d := strings.Count(f.Path, "/"); d < depth {
			t.Fatalf("folder %q comes after a deeper one", f.Path)
		} else {
			depth = d
		}
		if err := folderName(f.Path); err != nil {
			t.Fatalf("folder %q taken: %v", f.Path, err)
		}
		if err := ruleIMSTakes(f.Rule); err != nil {
			t.Fatalf("folder %s: %v: %+v", f.Path, err, f.Rule)
		}
		if r, ok := m.RuleFor(f.Path); !ok || !reflect.DeepEqual(r, f.Rule) {
			t.Fatalf("folder %s: the layout gives it %+v (%v), the file %+v", f.Path, r, ok, f.Rule)
		}
	}
}

// folderName says what keeps p from being a folder a user could make in the mount: a name the
// kernel refuses, or one that is a sidecar's.
func folderName(p string) error {
	if p == "" || path.IsAbs(p) {
		return errors.New("not below the root")
	}
	for _, name := range strings.Split(p, "/") {
		switch {
		case name == "" || name == "." || name == "..":
			return fmt.Errorf("the name %q", name)
		case strings.ContainsRune(name, 0):
			return fmt.Errorf("a NUL in %q", name)
		case len(name) > 255:
			return fmt.Errorf("a name of %d bytes", len(name))
		case strings.HasSuffix(name, fs.SidecarSuffix):
			return fmt.Errorf("the sidecar's name %q", name)
		}
	}
	return nil
}

// ruleIMSTakes says what IMS would refuse of a folder's rule.
func ruleIMSTakes(r fs.Rule) error {
	a := r.Asset
	tags, tagsErr := imsrules.CheckMeta("tags", a.Tags, false)
	u, urlErr := url.Parse(a.CallbackURL)
	switch {
	case !slices.Contains(imsrules.BusinessTypes[r.Type], r.BusinessType):
		return errors.New("a Type and BusinessType IMS does not take")
	case r.Ignore != nil && imsrules.CheckPatterns(r.Ignore) != nil:
		return imsrules.CheckPatterns(r.Ignore)
	case a.CateID < 0:
		return errors.New("a negative category")
	case tagsErr != nil || tags != a.Tags:
		return fmt.Errorf("tags %q (%v)", a.Tags, tagsErr)
	case a.Workflow != "" && r.Type != "video" && r.Type != "audio":
		return errors.New("a workflow for a type that runs none")
	case a.CallbackURL != "" && (urlErr != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == ""):
		return fmt.Errorf("callback URL %q", a.CallbackURL)
	case strings.ContainsAny(a.StorageLocation, "/?#"):
		return fmt.Errorf("storage location %q", a.StorageLocation)
	}
	return nil
}

// writeBack writes cfg as a file: each setting with its value, each folder with every setting
// of its rule given, none inherited.
func writeBack(t *testing.T, cfg *Config) []byte {
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: s}
	}
	mapping := func(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }
	root := mapping()
	for _, s := range cfg.Settings {
		root.Content = append(root.Content, str(s.Name), str(s.Value))
	}
	if len(cfg.Folders) > 0 {
		folders := mapping()
		for _, f := range cfg.Folders {
			r, a := f.Rule, f.Rule.Asset
			cate := ""
			if a.CateID != 0 {
				cate = strconv.FormatInt(a.CateID, 10)
			}
			entry := mapping(str("type"), str(r.Type), str("business-type"), str(r.BusinessType), str("cate-id"), str(cate), str("tags"), str(a.Tags),
				str("app-id"), str(a.AppID), str("entity-id"), str(a.EntityID), str("storage-location"), str(a.StorageLocation))
			if r.Type == "video" || r.Type == "audio" {
				entry.Content = append(entry.Content, str("workflow"), str(a.Workflow))
			}
			if a.CallbackURL != "" { // "" is refused: only a new type clears an inherited one
				entry.Content = append(entry.Content, str("callback-url"), str(a.CallbackURL))
			}
			if r.Ignore != nil {
				list := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
				for _, p := range r.Ignore {
					list.Content = append(list.Content, str(p))
				}
				entry.Content = append(entry.Content, str("ignore"), list)
			}
			folders.Content = append(folders.Content, str(f.Path), entry)
		}
		root.Content = append(root.Content, str("folders"), folders)
	}
	out, err := yaml.Marshal(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}})
	if err != nil {
		t.Fatalf("writing the configuration back: %v", err)
	}
	return out
}

// unlined is cfg without its path and lines, which a file written back does not keep.
func unlined(cfg *Config) Config {
	out := Config{}
	for _, s := range cfg.Settings {
		out.Settings = append(out.Settings, Setting{Name: s.Name, Value: s.Value})
	}
	for _, f := range cfg.Folders {
		out.Folders = append(out.Folders, Folder{Path: f.Path, Rule: f.Rule})
	}
	return out
}
