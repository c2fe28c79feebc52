package fs

import (
	"reflect"
	"testing"
)

func TestDefaultMapping(t *testing.T) {
	m := DefaultMapping()
	tests := []struct {
		dir    string
		ok     bool
		typ    string
		bizTyp string
	}{
		{"", false, "", ""},
		{"video", true, "video", "general"},
		{"video/opening", true, "video", "opening"},
		{"video/ending", true, "video", "ending"},
		{"video/ending/season 2/ep1", true, "video", "ending"}, // user folders inherit
		{"video/mine", true, "video", "general"},
		{"image", true, "image", "default"},
		{"image/cover", true, "image", "cover"},
		{"audio", true, "audio", "general"},
		{"text", false, "", ""}, // a type folder with no business type of its own
		{"text/subtitles", true, "text", "subtitles"},
		{"text/font", true, "text", "font"},
		{"text/other", false, "", ""}, // cannot exist: nothing can be made in text/
		{"material", false, "", ""},
		{"material/watermark", true, "image", "watermark"},
		{"other", true, "other", "general"},
		{"nonsense", false, "", ""},
	}
	for _, tt := range tests {
		r, ok := m.RuleFor(tt.dir)
		if ok != tt.ok || r.Type != tt.typ || r.BusinessType != tt.bizTyp {
			t.Errorf("RuleFor(%q) = %+v, %v; want {%s %s}, %v", tt.dir, r, ok, tt.typ, tt.bizTyp, tt.ok)
		}
	}
}

func TestFixedFoldersComeParentsFirst(t *testing.T) {
	got := DefaultMapping().Fixed()
	want := []string{"audio", "image", "material", "other", "text", "video",
		"image/cover", "material/watermark", "text/font", "text/subtitles", "video/ending", "video/opening"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Fixed() = %v\nwant %v", got, want)
	}
	m := DefaultMapping()
	for _, d := range append(want, "") {
		if !m.IsFixed(d) {
			t.Errorf("IsFixed(%q) = false", d)
		}
	}
	if m.IsFixed("video/mine") {
		t.Error("a user folder is not fixed")
	}
}

func TestNearest(t *testing.T) {
	names := []string{"user.ims.title", "user.ims.tags", "user.ims.type", "status", "mount"}
	for name, want := range map[string]string{
		"user.ims.titel": "user.ims.title", "user.ims.tag": "user.ims.tags", "stauts": "status",
		"mont": "mount", "foo": "", "user.ims.colour": "", "": "",
	} {
		if got := Nearest(name, names); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", name, got, want)
		}
	}
}
