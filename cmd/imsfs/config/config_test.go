package config

import (
	"strings"
	"testing"
)

// TestExamplePasses: what `imsfs config example` prints is a file the mount takes.
func TestExamplePasses(t *testing.T) {
	cfg, err := Parse("example.yaml", []byte(Example))
	if err != nil {
		t.Fatalf("the example does not pass:\n%v", err)
	}
	if len(cfg.Folders) != 3 || cfg.Folders[0].Path != "image/cover" && cfg.Folders[0].Path != "video/promo" {
		t.Fatalf("folders: %+v", cfg.Folders)
	}
	for _, f := range cfg.Folders {
		if f.Path == "video/promo" && (f.Rule.Type != "video" || f.Rule.BusinessType != "opening" || f.Rule.Asset.CateID != 1001 || f.Rule.Asset.Tags != "promo,2026") {
			t.Errorf("video/promo: %+v", f.Rule)
		}
		if f.Path == "image/cover" && (f.Rule.Type != "image" || f.Rule.BusinessType != "cover" || f.Rule.Asset.Tags != "cover") {
			t.Errorf("image/cover keeps its type and gets the tags: %+v", f.Rule)
		}
	}
}

// TestConfigRefusals: each thing a file may get wrong is refused with its line and reason.
func TestConfigRefusals(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"transfer: 4\n", `f.yaml:1: unknown setting "transfer" (did you mean transfers?)`},
		{"region: cn-shanghai\nupload-delay: soon\n", `f.yaml:2: upload-delay: "soon" is not a duration`},
		{"transfers: 0\n", `f.yaml:1: transfers: "0": want a whole number of 1 or more`},
		{"on-delete: erase\n", `f.yaml:1: on-delete: policy "erase": want keep or delete`},
		{"part-size: 1KiB\n", `f.yaml:1: part-size: "1KiB": want a size of at least 100KiB`},
		{"region: cn-hangzhou\n", `f.yaml:1: region cn-hangzhou: CreateUploadMedia is available only in`},
		{"transfers: 2\ntransfers: 3\n", `f.yaml:2: transfers is set twice (first on line 1)`},
		{"folders:\n  archive:\n    tags: [a]\n", `f.yaml:2: folder archive takes no files`},
		{"folders:\n  video/promo:\n    type: video\n    business-type: cover\n", `f.yaml:4: folder video/promo: business-type "cover" is not one IMS takes for type video: use general, opening, ending`},
		{"folders:\n  x:\n    type: movie\n", `f.yaml:3: folder x: type "movie": IMS takes audio, image, other, text, video`},
		{"folders:\n  image/x:\n    workflow: w1\n", `f.yaml:3: folder image/x: workflow: IMS runs a workflow after the upload of video and audio only`},
		{"folders:\n  video/x:\n    colour: red\n", `f.yaml:3: folder video/x: unknown setting "colour"`},
		{"folders:\n  video/x:\n    cate-id: news\n", `f.yaml:3: folder video/x: cate-id: cate_id: not valid: "news" is not a category id`},
		{"folders:\n  video/x:\n    tags: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]\n", `f.yaml:3: folder video/x: tags: tags: too long: 17 tags`},
		{"folders:\n  video/x:\n    storage-location: https://b.oss-cn-shanghai.aliyuncs.com/\n", `f.yaml:3: folder video/x: storage-location: "https://b.oss-cn-shanghai.aliyuncs.com/": want a storage address`},
		{"folders:\n  video/x:\n    callback-url: ftp://x\n", `f.yaml:3: folder video/x: callback-url: "ftp://x": want an http(s) URL`},
		{"folders:\n  video/x:\n    ignore: [\"[bad\"]\n", `f.yaml:3: folder video/x: ignore: pattern "[bad": want a shell glob`},
		{"folders:\n  ../etc:\n    type: video\n", `f.yaml:2: folder "../etc": want a plain path under the mount root`},
		{"folders: [video]\n", `f.yaml:1: folders: want a mapping of folder paths`},
		{"- a\n", `f.yaml:1: the file is to be a mapping of settings`},
	} {
		_, err := Parse("f.yaml", []byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.file, err, c.want)
		}
	}
}

// TestFoldersInherit: a folder below a configured one starts from its rule; one below a
// default folder from that folder's.
func TestFoldersInherit(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte("folders:\n  video/promo/teaser:\n    tags: [teaser]\n  video/promo:\n    type: video\n    business-type: ending\n    cate-id: 5\n  audio/podcast:\n    workflow: w1\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range cfg.Folders {
		got[f.Path] = f.Rule.Type + "/" + f.Rule.BusinessType + " " + f.Rule.Asset.Tags + " " + f.Rule.Asset.Workflow
		if f.Path == "video/promo/teaser" && f.Rule.Asset.CateID != 5 {
			t.Errorf("teaser does not inherit promo's category: %+v", f.Rule)
		}
	}
	want := map[string]string{"video/promo": "video/ending  ", "video/promo/teaser": "video/ending teaser ", "audio/podcast": "audio/general  w1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
