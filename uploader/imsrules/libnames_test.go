package imsrules

import (
	"strings"
	"testing"

	"github.com/imsfs/imsfs/cache"
)

// libraryNameCases are TestLibraryNames's, and FuzzLibraryName's seeds.
var libraryNameCases = []struct {
	a    cache.LibraryAsset
	want string
}{
	{cache.LibraryAsset{FileName: "clip.mp4", Title: "t"}, "clip.mp4"},
	{cache.LibraryAsset{Title: "a/b", FileURL: "http://b.oss/sv/x.mov"}, "a_b.mov"},
	{cache.LibraryAsset{Title: "nul\x00", FileURL: "http://b.oss/sv/x"}, "nul_"},
	{cache.LibraryAsset{MediaID: "abc", FileURL: "http://b.oss/sv/x.png"}, "abc.png"},
	{cache.LibraryAsset{MediaID: "abc", Title: ".."}, "abc"},
	{cache.LibraryAsset{Title: strings.Repeat("é", 200), FileURL: "http://b.oss/sv/x.mp4"}, strings.Repeat("é", 125) + ".mp4"},
}

func TestLibraryNames(t *testing.T) {
	for _, tc := range libraryNameCases {
		if got := LibraryName(&tc.a); got != tc.want || len(got) > nameMax {
			t.Errorf("LibraryName(%+v) = %q (%d bytes), want %q", tc.a, got, len(got), tc.want)
		}
	}
	taken := func(dir, name, id string) bool {
		return dir == "video" && (name == "a.mp4" && id != "m1" || name == "opening")
	}
	for _, tc := range []struct{ want, got string }{
		{"a [m2abcdef].mp4", FreeName("video", "a.mp4", "m2abcdefgh", taken)},
		{"a.mp4", FreeName("video", "a.mp4", "m1", taken)},
		{"opening [m2abcdef]", FreeName("video", "opening", "m2abcdefgh", taken)},
		{strings.Repeat("é", 120) + " [m2abcdef].mp4", fitName(strings.Repeat("é", 125)+".mp4", " [m2abcdef]")},
	} {
		if tc.got != tc.want || len(tc.got) > nameMax {
			t.Errorf("free name %q (%d bytes), want %q", tc.got, len(tc.got), tc.want)
		}
	}
}
