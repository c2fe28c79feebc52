// Package config reads imsfs's configuration file (--config, YAML): the mount's settings under
// the names of its flags, and folders: new ones with their Type and BusinessType, and what each
// folder's files get in their CreateUploadMedia. The file is strict: an unknown key, a value a
// flag would refuse, or a folder IMS could not take is refused before the mount starts, with the
// file, the line and the reason. Flags given on the command line win over the file; applying
// the settings to them is the mount command's job.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/imsfs/imsfs/fs"
)

// Config is a configuration file, read and checked.
type Config struct {
	Path     string
	Settings []Setting // in the file's order
	Folders  []Folder  // parents before children
}

// Setting is one setting of the file, by the name of its flag.
type Setting struct {
	Name, Value string
	Line        int
}

// Folder is one entry of folders: the rule it makes for its folder (Type and BusinessType
// given or inherited, and what its files' assets get).
type Folder struct {
	Path string
	Line int
	Rule fs.Rule
}

// DefaultPath is where the configuration file is looked for without --config.
func DefaultPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "imsfs", "config.yaml")
}

// Load reads and checks the configuration file at p.
func Load(p string) (*Config, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	return Parse(p, data)
}

// Parse checks data, the configuration file p, the way Load does. A file with problems gives
// an *Error with each of them.
func Parse(p string, data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	cfg := &Config{Path: p}
	errs := &Error{}
	if len(doc.Content) == 0 {
		return cfg, nil // empty: every default
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		errs.add(p, root.Line, "the file is to be a mapping of settings (key: value), not %s", kindName(root))
		return nil, errs
	}
	folders := cfg.readSettings(root, errs)
	cfg.checkRegion(errs)
	if folders != nil {
		cfg.Folders = parseFolders(p, folders, errs)
	}
	if len(errs.problems) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// readSettings reads the settings of the mapping root, each checked as its flag would check
// it, and returns its folders mapping, if it has one, for parseFolders.
func (c *Config) readSettings(root *yaml.Node, errs *Error) (folders *yaml.Node) {
	seen := map[string]int{}
	checks := settingChecks()
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			errs.add(c.Path, k.Line, "a setting's name is to be a word (upload-delay:), not %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			errs.add(c.Path, k.Line, "%s is set twice (first on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if k.Value == "folders" {
			folders = v
			continue
		}
		check, ok := checks[k.Value]
		if !ok {
			errs.add(c.Path, k.Line, "unknown setting %q%s; the settings are folders and %s", k.Value, didYouMean(k.Value, Keys()), strings.Join(Keys(), ", "))
			continue
		}
		value, err := scalarOrList(v)
		if err == nil {
			err = check(value)
		}
		if err != nil {
			errs.add(c.Path, v.Line, "%s: %v", k.Value, err)
			continue
		}
		c.Settings = append(c.Settings, Setting{Name: k.Value, Value: value, Line: v.Line})
	}
	return folders
}

// checkRegion refuses a region where IMS takes no uploads, unless an endpoint says where to
// go instead. An empty endpoint says nothing: the mount then goes by the region.
func (c *Config) checkRegion(errs *Error) {
	region, ok := c.Setting("region")
	if !ok {
		return
	}
	if endpoint, _ := c.Setting("endpoint"); endpoint.Value == "" && !slices.Contains(UploadRegions(), region.Value) {
		errs.add(c.Path, region.Line, "region %s: CreateUploadMedia is available only in %s; use one of them, or set an endpoint", region.Value, strings.Join(UploadRegions(), ", "))
	}
}

// Setting returns the setting name of the file, if it has one.
func (c *Config) Setting(name string) (Setting, bool) {
	for _, s := range c.Settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

// Mapping is the folder layout the file makes: the default one with its folders added.
func (c *Config) Mapping() *fs.Mapping {
	rules := fs.DefaultRules()
	for _, f := range c.Folders {
		rules[f.Path] = f.Rule
	}
	return fs.NewMapping(rules)
}

// CheckLibrary refuses a folder layout that holds library/ while the library is shown there
// (library: true, the default): the two would hide each other. Whether it is shown is known
// only once the command line is read, so the mount asks, not Parse.
func CheckLibrary(m *fs.Mapping) error {
	if m.IsFixed(fs.LibraryDir) {
		return fmt.Errorf("the configuration's folders hold %s/, which is the library's (every asset in IMS): name that folder otherwise, or set library: false", fs.LibraryDir)
	}
	return nil
}
