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
	a, err := NewAdmitter(DefaultTempNames)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path  string
		queue bool
		why   string
	}{
		{"video/clip.mp4", true, ""},
		{"video/Final Cut (v2).mov", true, ""},
		{"video/.hidden.mp4", true, ""},
		{"video/notes", false, "extension"},
		{"video/.hidden", false, "extension"},
		{"text/subtitles/.clip.srt.swp", false, "temporary"},
		{"text/subtitles/clip.srt~", false, "temporary"},
		{"text/subtitles/4913", false, "temporary"},
		{"text/subtitles/#clip.srt#", false, "temporary"},
		{"text/subtitles/.#clip.srt", false, "temporary"},
		{"other/.~lock.report.odt#", false, "temporary"},
		{"other/~$report.docx", false, "temporary"},
		{"other/lu12345abcd.tmp", false, "temporary"},
		{"other/~WRL0001.tmp", false, "temporary"},
		{"video/clip.mp4.crdownload", false, "temporary"},
		{"video/clip.mp4.part", false, "temporary"},
		{"video/.clip.mp4.Ab3xYz", false, "temporary"},
		{"text/subtitles/.goutputstream-ABC123", false, "temporary"},
		{"image/.DS_Store", false, "temporary"},
		{"image/._poster.png", false, "temporary"},
		{"image/Thumbs.db", false, "temporary"},
	} {
		r := cache.Record{Path: tt.path, State: cache.Writing, Attempts: 3, Error: "old"}
		if got := a.Admit(&r, due); got != tt.queue || (r.State == cache.Queued) != tt.queue {
			t.Errorf("Admit(%s) = %v, state %s; want %v", tt.path, got, r.State, tt.queue)
		}
		if tt.queue && (!r.Due.Equal(due) || r.Error != "" || r.Attempts != 0) {
			t.Errorf("Admit(%s) left %+v", tt.path, r)
		}
		if !tt.queue && (r.State != cache.Skipped || !strings.Contains(r.Error, tt.why)) {
			t.Errorf("Admit(%s): %s %q, want skipped saying %q", tt.path, r.State, r.Error, tt.why)
		}
	}
	if _, err := NewAdmitter("ok,[bad"); err == nil {
		t.Error("a malformed pattern was accepted")
	}
	none, _ := NewAdmitter("")
	if r := (cache.Record{Path: "video/clip.mp4~x.mp4"}); !none.Admit(&r, due) {
		t.Error("with no temporary names a real name was skipped")
	}
}

func TestAdmitClosedAfterAFailedWrite(t *testing.T) {
	a, _ := NewAdmitter(DefaultTempNames)
	r := cache.Record{Path: "video/clip.mp4", State: cache.Writing}
	if a.AdmitClosed(&r, time.Time{}, errors.New("no space left on device")) || r.State != cache.Failed || !r.Damaged ||
		!strings.Contains(r.Error, "no space left") {
		t.Fatalf("after a failed write: %+v", r)
	}
	if err := cache.Transition(cache.Writing, r.State); err != nil {
		t.Fatal(err)
	}
	r = cache.Record{Path: "video/clip.mp4", State: cache.Writing}
	if !a.AdmitClosed(&r, time.Time{}, nil) || r.State != cache.Queued {
		t.Fatalf("after a good session: %+v", r)
	}
}
