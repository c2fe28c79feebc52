package config

import "testing"

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
