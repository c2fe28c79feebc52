package uploader

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseName(t *testing.T) {
	long := strings.Repeat("長", 200)
	tests := []struct {
		file             string
		base, ext, title string
		err              error
	}{
		{"clip.mp4", "clip", "mp4", "clip", nil},
		{"My Holiday (final).MOV", "My Holiday (final)", "MOV", "My Holiday (final)", nil},
		{"archive.tar.gz", "archive.tar", "gz", "archive.tar", nil},
		{"片头.mp4", "片头", "mp4", "片头", nil},
		{long + ".mp4", long, "mp4", strings.Repeat("長", MaxTitle), nil},
		{"bad\xffname.png", "bad\xffname", "png", "bad\uFFFDname", nil},
		{"README", "", "", "", ErrNoExtension},
		{".profile", "", "", "", ErrNoExtension},
		{"trailing.", "", "", "", ErrNoExtension},
	}
	for _, tt := range tests {
		got, err := ParseName(tt.file)
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseName(%q) error %v, want %v", tt.file, err, tt.err)
			continue
		}
		if got.Base != tt.base || got.Ext != tt.ext || got.Title != tt.title {
			t.Errorf("ParseName(%q) = %+v, want {%s %s %s}", tt.file, got, tt.base, tt.ext, tt.title)
		}
		if tt.err == nil && (!utf8.ValidString(got.Title) || utf8.RuneCountInString(got.Title) > MaxTitle) {
			t.Errorf("ParseName(%q): title %q is not valid for IMS", tt.file, got.Title)
		}
	}
}
