package imsrules

import (
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/imsfs/imsfs/cache"
)

// The names library/ shows assets under. IMS names an asset by its FileName or its Title, which
// may hold what a Linux name cannot ('/', NUL, more than 255 bytes), and many assets may share
// one: an asset's name is made valid here, and told apart by its MediaId where it is taken.

// LibraryName is the name an asset asks for: its file's name, else its title and the extension
// of its file's address, else its MediaId; made a valid name (no slash, no NUL, at most
// nameMax bytes).
func LibraryName(a *cache.LibraryAsset) string {
	name := a.FileName
	if name == "" {
		ext := ""
		if u, err := url.Parse(a.FileURL); err == nil {
			ext = path.Ext(u.Path)
		}
		title := a.Title
		if title == "" {
			title = a.MediaID
		}
		name = title + ext
	}
	name = nameSafe(name)
	if name == "" || name == "." || name == ".." {
		name = nameSafe(a.MediaID)
	}
	if name == "" || name == "." || name == ".." {
		name = "_" // IMS gave nothing to name it by
	}
	return fitName(name, "")
}

// nameSafe is s with what a name cannot hold (a slash, NUL) made '_', and what is not UTF-8
// made U+FFFD.
func nameSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// nameMax is the longest name a Linux file system takes, in bytes.
const nameMax = 255

// fitName puts suffix before name's extension and cuts what is before it, on a character's
// boundary, so that the whole is at most nameMax bytes.
func fitName(name, suffix string) string {
	ext := path.Ext(name)
	if len(ext) > 32 || ext == name {
		ext = "" // not an extension worth keeping whole
	}
	base := strings.TrimSuffix(name, ext)
	return cut(base, nameMax-len(suffix)-len(ext)) + suffix + ext
}

// FreeName returns want if it is not taken in dir, else want with the first 8 characters of
// mediaID before its extension (the whole MediaId if even that is taken).
func FreeName(dir, want, mediaID string, taken func(dir, name, id string) bool) string {
	if !taken(dir, want, mediaID) {
		return want
	}
	// MediaIds are 32 hex characters; one IMS could give otherwise is made fit for a name.
	id := cut(nameSafe(mediaID), maxIDInName)
	if n := fitName(want, " ["+cut(id, 8)+"]"); !taken(dir, n, mediaID) {
		return n
	}
	return fitName(want, " ["+id+"]")
}

// maxIDInName is the most of a MediaId a name holds, in bytes: all of a real one, and room for
// an extension and a little of the name.
const maxIDInName = 64

// cut is s cut to at most n bytes, on a character's boundary.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
