package imsrules

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imsfs/imsfs/cache"
)

// The fuzz targets (make fuzz) check what the rules promise for any input: a name or a value
// from a user, a configuration file or IMS itself. What they found stays in testdata/fuzz as
// seeds, run by every go test.

// FuzzParseName: an accepted name is its base and extension around the last dot, and gives a
// Title IMS takes (valid UTF-8, at most MaxTitle bytes, which CheckMeta passes unless blank).
func FuzzParseName(f *testing.F) {
	for _, tc := range parseNameCases {
		f.Add(tc.file)
	}
	f.Fuzz(func(t *testing.T, file string) {
		n, err := ParseName(file)
		if err != nil {
			if !errors.Is(err, ErrNoExtension) {
				t.Fatalf("ParseName(%q): %v, want ErrNoExtension", file, err)
			}
			if dot := strings.LastIndexByte(file, '.'); dot > 0 && dot < len(file)-1 {
				t.Fatalf("ParseName(%q) finds no extension after its dot at %d", file, dot)
			}
			return
		}
		if n.Base == "" || n.Ext == "" || strings.Contains(n.Ext, ".") || n.Base+"."+n.Ext != file {
			t.Fatalf("ParseName(%q) = base %q, ext %q: not the name around its last dot", file, n.Base, n.Ext)
		}
		if n.Title == "" || !utf8.ValidString(n.Title) || len(n.Title) > MaxTitle {
			t.Fatalf("ParseName(%q): title %q (%d bytes) is not one IMS takes", file, n.Title, len(n.Title))
		}
		// The title is the base as far as it goes: cut only where MaxTitle says.
		base := strings.ToValidUTF8(n.Base, "\uFFFD")
		if !strings.HasPrefix(base, n.Title) || (n.Title != base && len(n.Title) <= MaxTitle-utf8.UTFMax) {
			t.Fatalf("ParseName(%q): title %q is not the base %q cut to %d bytes", file, n.Title, base, MaxTitle)
		}
		if got := Title(&cache.Record{Path: "video/" + file}); !strings.Contains(file, "/") && got != n.Title {
			t.Fatalf("Title of %q = %q, want the name's %q", file, got, n.Title)
		}
		// What CreateUploadMedia takes by the name, UpdateMediaInfo takes after a rename.
		if strings.TrimSpace(n.Title) != "" {
			for _, update := range []bool{false, true} {
				if _, err := CheckMeta("title", n.Title, update); err != nil {
					t.Fatalf("the title %q of %q is refused (update %v): %v", n.Title, file, update, err)
				}
			}
		}
	})
}

// FuzzCheckMeta: a value is refused with ErrMetaTooLong or ErrMetaInvalid, or taken within
// its field's limits as the action it goes by counts them (characters for CreateUploadMedia,
// bytes for UpdateMediaInfo), in the form it is sent; what is taken is taken again as it is.
func FuzzCheckMeta(f *testing.F) {
	fields := append(append([]string{}, cache.MetaFields...), "status")
	for _, tc := range checkMetaCases {
		i := 0
		for fields[i] != tc.field {
			i++
		}
		f.Add(uint8(i), tc.value, tc.update)
	}
	for _, v := range []string{" a , b ", "+12", "007", " ", "9223372036854775808"} {
		f.Add(uint8(2), v, false)
		f.Add(uint8(3), v, true)
	}
	f.Fuzz(func(t *testing.T, which uint8, value string, update bool) {
		field := fields[int(which)%len(fields)]
		got, err := CheckMeta(field, value, update)
		if err != nil {
			if !errors.Is(err, ErrMetaTooLong) && !errors.Is(err, ErrMetaInvalid) {
				t.Fatalf("CheckMeta(%s, %q, %v): %v, neither too long nor not valid", field, value, update, err)
			}
			if !strings.HasPrefix(err.Error(), field+": ") {
				t.Fatalf("CheckMeta(%s, %q, %v): %q does not name its field", field, value, update, err)
			}
			return
		}
		if value == "" {
			if got != "" {
				t.Fatalf("CheckMeta(%s, \"\") = %q, want the default", field, got)
			}
			return
		}
		if !utf8.ValidString(got) {
			t.Fatalf("CheckMeta(%s, %q) took what is not UTF-8", field, value)
		}
		length := utf8.RuneCountInString(got)
		if update {
			length = len(got)
		}
		switch field {
		case "title":
			if strings.TrimSpace(got) == "" || length > MaxTitle || got != value {
				t.Fatalf("CheckMeta(title, %q, %v) took %q (%d)", value, update, got, length)
			}
		case "description":
			if length > MaxDescription || got != value {
				t.Fatalf("CheckMeta(description, %q, %v) took %q (%d)", value, update, got, length)
			}
		case "tags":
			tags := strings.Split(got, ",")
			if len(tags) > MaxTags {
				t.Fatalf("CheckMeta(tags, %q) took %d tags", value, len(tags))
			}
			for _, tag := range tags {
				if tag == "" || tag != strings.TrimSpace(tag) || len(tag) > MaxTag {
					t.Fatalf("CheckMeta(tags, %q) took the tag %q", value, tag)
				}
			}
		case "cate_id":
			// As IMS gives it back (a number): "+12" or "012" would differ from the asset's.
			if n, err := strconv.ParseInt(got, 10, 64); err != nil || n <= 0 || CateID(got) != n || strconv.FormatInt(n, 10) != got {
				t.Fatalf("CheckMeta(cate_id, %q) took %q", value, got)
			}
		default:
			t.Fatalf("CheckMeta(%s) took a field that is not an asset's", field)
		}
		if again, err := CheckMeta(field, got, update); err != nil || again != got {
			t.Fatalf("CheckMeta(%s, %q) took %q, which it takes again as %q, %v", field, value, got, again, err)
		}
	})
}

// validName reports why name is not one a Linux file system takes ("": it is).
func validName(name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return "empty, . or .."
	case strings.ContainsAny(name, "/\x00"):
		return "a slash or NUL"
	case len(name) > nameMax:
		return "longer than " + strconv.Itoa(nameMax) + " bytes"
	}
	return ""
}

// FuzzLibraryName: whatever IMS says of an asset, library/ shows it under a valid name (valid
// UTF-8 too when what it was made from was), and so does FreeName when that name is taken.
func FuzzLibraryName(f *testing.F) {
	for _, tc := range libraryNameCases {
		f.Add(tc.a.FileName, tc.a.Title, tc.a.FileURL, tc.a.MediaID, uint8(0))
	}
	f.Add("a.mp4", "", "", "m2abcdefgh", uint8(1))
	f.Add("opening", "", "", "m2abcdefgh", uint8(3))
	f.Add(strings.Repeat("é", 125)+".mp4", "", "", "6b5ef4a0b1c2d3e4f5a6b7c8d9e0f1a2", uint8(3))
	f.Fuzz(func(t *testing.T, fileName, title, fileURL, mediaID string, taken uint8) {
		a := cache.LibraryAsset{FileName: fileName, Title: title, FileURL: fileURL, MediaID: mediaID}
		name := LibraryName(&a)
		if why := validName(name); why != "" {
			t.Fatalf("LibraryName(%+v) = %q (%d bytes): %s", a, name, len(name), why)
		}
		valid := utf8.ValidString(fileName) && utf8.ValidString(title) && utf8.ValidString(fileURL) && utf8.ValidString(mediaID)
		if valid && !utf8.ValidString(name) {
			t.Fatalf("LibraryName(%+v) = %q: not UTF-8", a, name)
		}
		// taken's bits: the name is taken, its short form is, its long form is.
		tries := 0
		free := FreeName("video", name, mediaID, func(dir, n, id string) bool {
			tries++
			return taken&(1<<(tries-1)) != 0
		})
		if why := validName(free); why != "" {
			t.Fatalf("FreeName of %q for %q = %q (%d bytes): %s", name, mediaID, free, len(free), why)
		}
		if valid && !utf8.ValidString(free) {
			t.Fatalf("FreeName of %q for %q = %q: not UTF-8", name, mediaID, free)
		}
		if taken&1 == 0 && free != name {
			t.Fatalf("FreeName of %q, not taken, = %q", name, free)
		}
	})
}
