package imsrules

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imsfs/imsfs/cache"
)

// longBase is a base name of 600 bytes, 3 a character.
var longBase = strings.Repeat("長", 200)

// parseNameCases are TestParseName's, and FuzzParseName's seeds.
var parseNameCases = []struct {
	file             string
	base, ext, title string
	err              error
}{
	{"clip.mp4", "clip", "mp4", "clip", nil},
	{"My Holiday (final).MOV", "My Holiday (final)", "MOV", "My Holiday (final)", nil},
	{"archive.tar.gz", "archive.tar", "gz", "archive.tar", nil},
	{"片头.mp4", "片头", "mp4", "片头", nil},
	{longBase + ".mp4", longBase, "mp4", strings.Repeat("長", 42), nil}, // 126 bytes: a 43rd would make 129
	{strings.Repeat("a", 200) + ".mp4", strings.Repeat("a", 200), "mp4", strings.Repeat("a", 128), nil},
	{"bad\xffname.png", "bad\xffname", "png", "bad\uFFFDname", nil},
	{"README", "", "", "", ErrNoExtension},
	{".profile", "", "", "", ErrNoExtension},
	{"trailing.", "", "", "", ErrNoExtension},
}

func TestParseName(t *testing.T) {
	for _, tt := range parseNameCases {
		got, err := ParseName(tt.file)
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseName(%q) error %v, want %v", tt.file, err, tt.err)
			continue
		}
		if got.Base != tt.base || got.Ext != tt.ext || got.Title != tt.title {
			t.Errorf("ParseName(%q) = %+v, want {%s %s %s}", tt.file, got, tt.base, tt.ext, tt.title)
		}
		if tt.err == nil && (!utf8.ValidString(got.Title) || len(got.Title) > MaxTitle) {
			t.Errorf("ParseName(%q): title %q is not valid for IMS", tt.file, got.Title)
		}
	}
}

func TestRefuse(t *testing.T) {
	a, err := NewAdmitter(DefaultTempNames)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path     string
		typ, biz string
		size     int64
		state    cache.State
		why      string // "" when it is uploaded
	}{
		{"video/clip.mp4", "video", "general", 1, "", ""},
		{"video/Final Cut (v2).MOV", "video", "general", 1, "", ""},
		{"video/.hidden.mp4", "video", "general", 1, "", ""},
		{"video/notes", "video", "general", 1, cache.Skipped, "extension"},
		{"video/.hidden", "video", "general", 1, cache.Skipped, "extension"},
		{"video/notes.txt", "video", "general", 1, cache.Skipped, "IMS does not take .txt files as video; this folder takes mp4, ts"},
		{"image/scan.bmp", "image", "default", 1, cache.Skipped, "as image; this folder takes gif, webp, png, jpg, jpeg, heic"},
		{"text/subtitles/clip.ttf", "text", "subtitles", 1, cache.Skipped, "as subtitles; this folder takes srt, vtt, ass"},
		{"text/font/clip.ttf", "text", "font", 1, "", ""},
		{"other/anything.bin", "other", "general", 1, "", ""},
		{"audio/song.flac", "audio", "general", MaxMediaSize, "", ""},
		{"audio/song.flac", "audio", "general", MaxMediaSize + 1, cache.Failed, "at most 5 GiB"},
		{"image/huge.png", "image", "default", MaxMediaSize + 1, "", ""},
		{"text/subtitles/.clip.srt.swp", "text", "subtitles", 1, cache.Skipped, "temporary"},
		{"text/subtitles/clip.srt~", "text", "subtitles", 1, cache.Skipped, "temporary"},
		{"text/subtitles/4913", "text", "subtitles", 1, cache.Skipped, "temporary"},
		{"text/subtitles/#clip.srt#", "text", "subtitles", 1, cache.Skipped, "temporary"},
		{"text/subtitles/.#clip.srt", "text", "subtitles", 1, cache.Skipped, "temporary"},
		{"other/.~lock.report.odt#", "other", "general", 1, cache.Local, "kept in the mount, never uploaded"},
		{"other/~$report.docx", "other", "general", 1, cache.Local, "kept in the mount, never uploaded"},
		{"other/lu12345abcd.tmp", "other", "general", 1, cache.Skipped, "temporary"},
		{"other/~WRL0001.tmp", "other", "general", 1, cache.Skipped, "temporary"},
		{"video/clip.mp4.crdownload", "video", "general", 1, cache.Skipped, "temporary"},
		{"video/clip.mp4.part", "video", "general", 1, cache.Skipped, "temporary"},
		{"video/.clip.mp4.Ab3xYz", "video", "general", 1, cache.Skipped, "temporary"},
		{"text/subtitles/.goutputstream-ABC123", "text", "subtitles", 1, cache.Skipped, "temporary"},
		{"image/.DS_Store", "image", "default", 1, cache.Local, "kept in the mount, never uploaded"},
		{"image/._poster.png", "image", "default", 1, cache.Local, "kept in the mount, never uploaded"},
		{"image/Thumbs.db", "image", "default", 1, cache.Local, "kept in the mount, never uploaded"},
		{"video/desktop.ini", "video", "general", 1, cache.Local, "desktop.ini"},
		{"video/.fuse_hidden0001", "video", "general", 1, cache.Local, ".fuse_hidden*"},
		{"video/.nfs0001", "video", "general", 1, cache.Local, ".nfs*"},
		{"video/empty.mp4", "video", "general", 0, cache.Skipped, "is empty; it is uploaded once it is closed with bytes"},
		{"video/.DS_Store", "video", "general", 0, cache.Local, "never uploaded"},
		{"video/empty.mp4~", "video", "general", 0, cache.Skipped, "temporary"},
	} {
		r := cache.Record{Path: tt.path, Type: tt.typ, BusinessType: tt.biz, Size: tt.size}
		state, why := a.Refuse(&r)
		if state != tt.state || !strings.Contains(why, tt.why) || (why == "") != (tt.why == "") {
			t.Errorf("Refuse(%s %s/%s %d) = %s %q, want %s saying %q", tt.path, tt.typ, tt.biz, tt.size, state, why, tt.state, tt.why)
		}
	}
	// A folder's own list replaces the defaults there.
	a.SetJunk(func(dir string) []string {
		if dir == "video/raw" {
			return []string{"*.bak"}
		}
		return DefaultJunkNames
	})
	for p, want := range map[string]cache.State{"video/raw/take.bak": cache.Local, "video/raw/._take.mp4": "", "video/._take.mp4": cache.Local} {
		r := cache.Record{Path: p, Type: "video", BusinessType: "general", Size: 1}
		if state, why := a.Refuse(&r); state != want {
			t.Errorf("%s with video/raw ignoring *.bak: %s %q, want %s", p, state, why, want)
		}
	}
	if err := CheckPatterns([]string{"*.bak", "[bad"}); err == nil {
		t.Error("a malformed ignore pattern was accepted")
	}
	if _, err := NewAdmitter("ok,[bad"); err == nil {
		t.Error("a malformed pattern was accepted")
	}
	none, _ := NewAdmitter("")
	if state, why := none.Refuse(&cache.Record{Path: "other/clip.mp4~x.mp4", Type: "other", Size: 1}); state != "" {
		t.Errorf("with no temporary names a real name was skipped: %s", why)
	}
	if Formats("other", "general") != nil || len(Formats("image", "cover")) != 6 {
		t.Errorf("Formats: %v %v", Formats("other", "general"), Formats("image", "cover"))
	}
}

// TestUpdateBusinessTypesAreBusinessTypes: what UpdateMediaInfo may set is one a Type takes.
func TestUpdateBusinessTypesAreBusinessTypes(t *testing.T) {
	for _, bt := range UpdateBusinessTypes {
		found := false
		for _, bts := range BusinessTypes {
			found = found || slices.Contains(bts, bt)
		}
		if !found {
			t.Errorf("UpdateBusinessTypes has %q, which no Type takes", bt)
		}
	}
}
