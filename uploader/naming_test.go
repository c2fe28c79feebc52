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

func TestSkip(t *testing.T) {
	a, err := NewAdmitter(DefaultTempNames)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		why  string // "" when it is uploaded
	}{
		{"video/clip.mp4", ""},
		{"video/Final Cut (v2).mov", ""},
		{"video/.hidden.mp4", ""},
		{"video/notes", "extension"},
		{"video/.hidden", "extension"},
		{"text/subtitles/.clip.srt.swp", "temporary"},
		{"text/subtitles/clip.srt~", "temporary"},
		{"text/subtitles/4913", "temporary"},
		{"text/subtitles/#clip.srt#", "temporary"},
		{"text/subtitles/.#clip.srt", "temporary"},
		{"other/.~lock.report.odt#", "temporary"},
		{"other/~$report.docx", "temporary"},
		{"other/lu12345abcd.tmp", "temporary"},
		{"other/~WRL0001.tmp", "temporary"},
		{"video/clip.mp4.crdownload", "temporary"},
		{"video/clip.mp4.part", "temporary"},
		{"video/.clip.mp4.Ab3xYz", "temporary"},
		{"text/subtitles/.goutputstream-ABC123", "temporary"},
		{"image/.DS_Store", "temporary"},
		{"image/._poster.png", "temporary"},
		{"image/Thumbs.db", "temporary"},
	} {
		got := a.Skip(tt.path)
		if (got == "") != (tt.why == "") || !strings.Contains(got, tt.why) {
			t.Errorf("Skip(%s) = %q, want one saying %q", tt.path, got, tt.why)
		}
	}
	if _, err := NewAdmitter("ok,[bad"); err == nil {
		t.Error("a malformed pattern was accepted")
	}
	none, _ := NewAdmitter("")
	if why := none.Skip("video/clip.mp4~x.mp4"); why != "" {
		t.Errorf("with no temporary names a real name was skipped: %s", why)
	}
}
