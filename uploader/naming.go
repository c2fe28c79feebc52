package uploader

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// MaxTitle is the longest Title IMS accepts, in characters.
const MaxTitle = 128

// ErrNoExtension means a file name has no extension, which CreateUploadMedia requires (FileInfo.Ext).
var ErrNoExtension = errors.New("the name has no extension, which IMS requires")

// Name is what a file name gives CreateUploadMedia.
type Name struct {
	Base  string // FileInfo.Name: the name without its extension
	Ext   string // FileInfo.Ext: without the dot
	Title string // MediaMetaData.Title: Base, made valid UTF-8 and cut to MaxTitle characters
}

// ParseName splits a file name (no folder) into what CreateUploadMedia needs. The extension is
// what follows the last dot; a leading dot does not start one (".profile" has none).
func ParseName(file string) (Name, error) {
	dot := strings.LastIndexByte(file, '.')
	if dot <= 0 || dot == len(file)-1 {
		return Name{}, ErrNoExtension
	}
	n := Name{Base: file[:dot], Ext: file[dot+1:]}
	title := strings.ToValidUTF8(n.Base, "\uFFFD")
	if utf8.RuneCountInString(title) > MaxTitle {
		title = string([]rune(title)[:MaxTitle])
	}
	n.Title = title
	return n, nil
}

// DefaultTempNames are the names tools give files that are not (yet) the final ones, as
// path.Match patterns on the file name: vim's swap, backup and write-test files, emacs autosave
// and lock files, LibreOffice and MS Office lock and temporary files, partial downloads,
// rsync's and GIO's temporary files, and the droppings of macOS and Windows.
const DefaultTempNames = ".*.swp,.*.swo,.*.swx,*~,4913,#*#,.#*,.~lock.*#,~$*,*.tmp,*.temp,*.crdownload,*.part," +
	"*.partial,.*.??????,.goutputstream-*,*.kate-swp,.DS_Store,._*,Thumbs.db,desktop.ini,.fuse_hidden*,.nfs*"

// Admitter decides which closed files become assets.
type Admitter struct {
	temp []string // read only: path.Match patterns of temporary names
}

// NewAdmitter takes a comma-separated list of temporary-name patterns (path.Match syntax, on
// the file name only).
func NewAdmitter(tempNames string) (*Admitter, error) {
	a := &Admitter{}
	for _, p := range strings.Split(tempNames, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil || strings.Contains(p, "/") {
			return nil, fmt.Errorf("temporary-name pattern %q: want a path.Match pattern for a file name", p)
		}
		a.temp = append(a.temp, p)
	}
	return a, nil
}

// TempName reports whether a file name is a temporary one, and the pattern that says so.
func (a *Admitter) TempName(name string) (string, bool) {
	for _, p := range a.temp {
		if ok, _ := path.Match(p, name); ok {
			return p, true
		}
	}
	return "", false
}

// Skip returns why the file at p (a path in the mount) is not uploaded, or "" when it is: a
// temporary name (it becomes an asset if it is renamed to a real name), or no extension. It is
// the cache's Names: the life-cycle asks it after a last close, a rename and a retry.
func (a *Admitter) Skip(p string) string {
	name := path.Base(p)
	if pat, ok := a.TempName(name); ok {
		return fmt.Sprintf("not uploaded: %q is a temporary name (pattern %q); rename it to upload it", name, pat)
	}
	if _, err := ParseName(name); err != nil {
		return "not uploaded: " + err.Error()
	}
	return ""
}
