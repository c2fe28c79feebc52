package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusals: every way Parse refuses a file, each said in full: the file and the line, the
// setting or folder, what is wrong and what to write instead.
func TestRefusals(t *testing.T) {
	for _, c := range refusals() {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(c.file))
			var problems *Error
			if cfg != nil || !errors.As(err, &problems) || err.Error() != c.want {
				t.Errorf("%q:\n got %v (%T)\nwant %s", c.file, err, err, c.want)
			}
		})
	}
}

// refusals are files Parse refuses, one for each of its reasons, with the whole message: the
// refusal tests check them, and FuzzConfig starts from them.
func refusals() []struct{ name, file, want string } {
	settings := "the settings are folders and " + strings.Join(Keys(), ", ")
	folderTakes := "a folder takes type, business-type, cate-id, tags, app-id, entity-id, workflow, storage-location, callback-url, ignore"
	return []struct{ name, file, want string }{
		// The file as a whole.
		{"not a mapping: a list", "- a\n", `f.yaml:1: the file is to be a mapping of settings (key: value), not a list`},
		{"not a mapping: a value", "hello\n", `f.yaml:1: the file is to be a mapping of settings (key: value), not a value`},

		// Settings: their names.
		{"unknown setting, misspelt", "transfer: 4\n", `f.yaml:1: unknown setting "transfer" (did you mean transfers?); ` + settings},
		{"unknown setting", "colour: red\n", `f.yaml:1: unknown setting "colour"; ` + settings},
		{"a key that is no name", "? [a]\n: 1\n", `f.yaml:1: a setting's name is to be a word (upload-delay:), not a list`},
		{"set twice", "transfers: 2\ntransfers: 3\n", `f.yaml:2: transfers is set twice (first on line 1)`},

		// Settings: the shape of their values.
		{"no value", "transfers:\n", `f.yaml:1: transfers: no value`},
		{"a mapping for a value", "transfers: {a: 1}\n", `f.yaml:1: transfers: want a value, not a mapping`},
		{"an alias for a value", "upload-delay: &d 2s\ndrain-timeout: *d\n", `f.yaml:2: drain-timeout: want a value, not an alias`},
		{"a list of lists", "temp-names: [[a]]\n", `f.yaml:1: temp-names: want a list of plain values, not of lists`},

		// Settings: their values, as the flag of the same name checks them.
		{"bad duration", "region: cn-shanghai\nupload-delay: soon\n", `f.yaml:2: upload-delay: "soon" is not a duration (e.g. 2s, 5m, 1h)`},
		{"negative duration", "ready-timeout: -1s\n", `f.yaml:1: ready-timeout: a duration of 0 or more is wanted`},
		{"library listed too often", "library-refresh: 0\n", `f.yaml:1: library-refresh: "0": want 1s or more`},
		{"no transfers", "transfers: 0\n", `f.yaml:1: transfers: "0": want a whole number of 1 or more`},
		{"a count that is no number", "small-transfers: many\n", `f.yaml:1: small-transfers: "many": want a whole number of 1 or more`},
		{"part too small", "part-size: 1KiB\n", `f.yaml:1: part-size: "1KiB": want a size of at least 100KiB, e.g. 8MiB`},
		{"part too large", "part-size: 8EiB\n", `f.yaml:1: part-size: "8EiB": want a size of at most 5GiB, the largest part OSS takes`},
		{"size that is no size", "cache-max-size: lots\n", `f.yaml:1: cache-max-size: "lots": want a size, e.g. 20GiB`},
		{"temp name with a slash", "temp-names: [\"*.swp\", a/b]\n", `f.yaml:1: temp-names: temporary-name pattern "a/b": want a path.Match pattern for a file name`},
		{"no such delete policy", "on-delete: erase\n", `f.yaml:1: on-delete: policy "erase": want keep or delete`},
		{"no such overwrite policy", "on-overwrite: replace\n", `f.yaml:1: on-overwrite: policy "replace": want keep or delete`},
		{"not a bool", "sidecars: yes\n", `f.yaml:1: sidecars: "yes": want true or false`},
		{"no such log level", "log-level: loud\n", `f.yaml:1: log-level: "loud": want debug or info or warn or error`},
		{"no such log format", "log-format: xml\n", `f.yaml:1: log-format: "xml": want text or json`},
		{"region without uploads", "region: cn-hangzhou\n", `f.yaml:1: region cn-hangzhou: CreateUploadMedia is available only in cn-shanghai, cn-beijing, cn-shenzhen; use one of them, or set an endpoint`},
		{"region without uploads, endpoint empty", "region: cn-hangzhou\nendpoint: \"\"\n", `f.yaml:1: region cn-hangzhou: CreateUploadMedia is available only in cn-shanghai, cn-beijing, cn-shenzhen; use one of them, or set an endpoint`},

		// Folders: the mapping and its paths.
		{"folders a list", "folders: [video]\n", `f.yaml:1: folders: want a mapping of folder paths (video/promo:) to their settings, not a list`},
		{"folders a value", "folders: video\n", `f.yaml:1: folders: want a mapping of folder paths (video/promo:) to their settings, not a value`},
		{"a folder key that is no path", "folders:\n  ? [a]\n  : {type: video}\n", `f.yaml:2: folders: a folder is named by its path (video/promo:), not a list`},
		{"the root", "folders:\n  /:\n    type: video\n", `f.yaml:2: folder "/": the root takes no files; name a folder under it`},
		{"above the root", "folders:\n  ../etc:\n    type: video\n", `f.yaml:2: folder "../etc": want a plain path under the mount root, like video/promo`},
		{"an unclean path", "folders:\n  video//x:\n    tags: [a]\n", `f.yaml:2: folder "video//x": want a plain path under the mount root, like video/promo`},
		{"a sidecar's name", "folders:\n  video/x.ims.json:\n    tags: [a]\n", `f.yaml:2: folder "video/x.ims.json": a name ending in .ims.json is a sidecar's`},
		{"a sidecar's name above", "folders:\n  video/x.ims.json/y:\n    tags: [a]\n", `f.yaml:2: folder "video/x.ims.json/y": a name ending in .ims.json is a sidecar's`},
		{"a NUL in a name", "folders:\n  \"video/a\\0b\":\n", `f.yaml:2: folder "video/a\x00b": a name with a NUL byte, which no file system takes`},
		{"a name too long", "folders:\n  video/" + strings.Repeat("n", 256) + ":\n", `f.yaml:2: folder "video/` + strings.Repeat("n", 256) + `": a name of 256 bytes; at most 255 are allowed`},
		{"folder given twice", "folders:\n  video/x:\n    tags: [a]\n  /video/x/:\n    tags: [b]\n", `f.yaml:4: folder video/x is given twice (first on line 2)`},
		{"folder settings a list", "folders:\n  video/x: [a]\n", `f.yaml:2: folder video/x: want its settings (type:, business-type:, …), not a list`},

		// Folders: the names of their settings, and the shape of their values.
		{"unknown folder setting", "folders:\n  video/x:\n    colour: red\n", `f.yaml:3: folder video/x: unknown setting "colour"; ` + folderTakes},
		{"unknown folder setting, misspelt", "folders:\n  video/x:\n    tag: [a]\n", `f.yaml:3: folder video/x: unknown setting "tag" (did you mean tags?); ` + folderTakes},
		{"a folder key that is no name", "folders:\n  video/x:\n    ? [a]\n    : b\n", `f.yaml:3: folder video/x: a setting's name is to be a word (tags:), not a list`},
		{"folder setting twice", "folders:\n  video/x:\n    tags: [a]\n    tags: [b]\n", `f.yaml:4: folder video/x: tags is set twice (first on line 3)`},
		{"folder setting without a value", "folders:\n  video/x:\n    tags:\n", `f.yaml:3: folder video/x: tags: no value`},

		// Folders: their Type and BusinessType, as IMS takes them.
		{"no such type", "folders:\n  x:\n    type: movie\n", `f.yaml:3: folder x: type "movie": IMS takes audio, image, other, text, video`},
		{"business type without a type", "folders:\n  archive:\n    business-type: general\n", `f.yaml:3: folder archive: a business-type needs a type (video, image, audio, text or other)`},
		{"business type of another type", "folders:\n  video/promo:\n    type: video\n    business-type: cover\n", `f.yaml:4: folder video/promo: business-type "cover" is not one IMS takes for type video: use general, opening, ending`},
		{"a folder that takes no files", "folders:\n  archive:\n    tags: [a]\n", `f.yaml:2: folder archive takes no files: it is not below a folder that does (video/, image/…); give it a type (video, image, audio, text or other)`},

		// Folders: their junk names, and what their files' assets get.
		{"bad glob in ignore", "folders:\n  video/x:\n    ignore: [\"[bad\"]\n", `f.yaml:3: folder video/x: ignore: pattern "[bad": want a shell glob of a file name (path.Match), no /`},
		{"a slash in ignore", "folders:\n  video/x:\n    ignore: [a/b]\n", `f.yaml:3: folder video/x: ignore: pattern "a/b": want a shell glob of a file name (path.Match), no /`},
		{"an empty ignore pattern", "folders:\n  video/x:\n    ignore: [a, \"\"]\n", `f.yaml:3: folder video/x: ignore: pattern "": want a shell glob of a file name (path.Match), no /`},
		{"category that is no id", "folders:\n  video/x:\n    cate-id: news\n", `f.yaml:3: folder video/x: cate-id: cate_id: not valid: "news" is not a category id (a positive integer)`},
		{"too many tags", "folders:\n  video/x:\n    tags: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]\n", `f.yaml:3: folder video/x: tags: tags: too long: 17 tags, IMS takes at most 16`},
		{"an empty tag", "folders:\n  video/x:\n    tags: [\"a,\", b]\n", `f.yaml:3: folder video/x: tags: tags: not valid: an empty tag in "a,,b" (tags are separated by commas)`},
		{"a tag too long", "folders:\n  video/x:\n    tags: [an-exceedingly-long-tag-of-more-than-32-bytes]\n", `f.yaml:3: folder video/x: tags: tags: too long: the tag "an-exceedingly-long-tag-of-more-than-32-bytes" is 45 bytes, UpdateMediaInfo takes at most 32 a tag`},
		{"workflow for images", "folders:\n  image/x:\n    workflow: w1\n", `f.yaml:3: folder image/x: workflow: IMS runs a workflow after the upload of video and audio only (PostProcessConfig), not image`},
		{"storage location an OSS URL", "folders:\n  video/x:\n    storage-location: https://b.oss-cn-shanghai.aliyuncs.com/\n", `f.yaml:3: folder video/x: storage-location: "https://b.oss-cn-shanghai.aliyuncs.com/": want a storage address of the media service (outin-….oss-cn-shanghai.aliyuncs.com, as the console lists it), not an OSS URL`},
		{"callback not over HTTP", "folders:\n  video/x:\n    callback-url: ftp://x\n", `f.yaml:3: folder video/x: callback-url: "ftp://x": want an http(s) URL`},
	}
}

// TestRefusalsComeAllAtOnce: a file with several mistakes gets them all, one a line in the
// order of the file, whether at the top level or in a folder.
func TestRefusalsComeAllAtOnce(t *testing.T) {
	_, err := Parse("f.yaml", []byte("on-delete: erase\nfolders:\n  video/x:\n    colour: red\ntransfers: 0\n"))
	want := []string{
		`f.yaml:1: on-delete: policy "erase": want keep or delete`,
		`f.yaml:4: folder video/x: unknown setting "colour"`,
		`f.yaml:5: transfers: "0": want a whole number of 1 or more`,
	}
	lines := strings.Split(strings.TrimSpace(errString(err)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("problem %d: %s\nwant %s…", i+1, lines[i], want[i])
		}
	}
}

// TestRefusalsOfTheFile: a file that is no YAML is refused with the YAML parser's line; one
// that cannot be read, with why.
func TestRefusalsOfTheFile(t *testing.T) {
	if _, err := Parse("f.yaml", []byte("a: [\n")); errString(err) != "f.yaml: yaml: line 1: did not find expected node content" {
		t.Errorf("not YAML: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "none.yaml")
	if _, err := Load(missing); !errors.Is(err, os.ErrNotExist) || errString(err) != "configuration file: open "+missing+": no such file or directory" {
		t.Errorf("a missing file: %v", err)
	}
}

// TestCheckLibrary: with the library shown, no configured folder may be library/ or below it.
func TestCheckLibrary(t *testing.T) {
	const why = "the configuration's folders hold library/, which is the library's (every asset in IMS): name that folder otherwise, or set library: false"
	for _, c := range []struct {
		file string
		want string
	}{
		{"folders:\n  library/raw:\n    type: video\n    business-type: general\n", why},
		{"folders:\n  library:\n    type: image\n", why},
		{"folders:\n  librarian:\n    type: image\n", ""},
		{"", ""},
	} {
		cfg, err := Parse("f.yaml", []byte(c.file))
		if err != nil {
			t.Fatalf("%q: %v", c.file, err)
		}
		if err := CheckLibrary(cfg.Mapping()); errString(err) != c.want {
			t.Errorf("%q: %v, want %q", c.file, err, c.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
