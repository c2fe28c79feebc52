package uploader

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imsfs/imsfs/cache"
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

func TestAdmit(t *testing.T) {
	due := time.Unix(100, 0)
	for _, tt := range []struct {
		path  string
		queue bool
		want  cache.State
	}{
		{"video/clip.mp4", true, cache.Queued},
		{"video/notes", false, cache.Skipped},
		{"video/.hidden", false, cache.Skipped},
	} {
		r := cache.Record{Path: tt.path, State: cache.Writing, Attempts: 3, Error: "old"}
		if got := Admit(&r, due); got != tt.queue || r.State != tt.want {
			t.Errorf("Admit(%s) = %v, state %s; want %v, %s", tt.path, got, r.State, tt.queue, tt.want)
		}
		if tt.queue && (!r.Due.Equal(due) || r.Error != "" || r.Attempts != 0) {
			t.Errorf("Admit(%s) left %+v", tt.path, r)
		}
		if !tt.queue && !strings.Contains(r.Error, "extension") {
			t.Errorf("Admit(%s): a skipped record must say why, got %q", tt.path, r.Error)
		}
	}
}
