package uploader

import (
	"errors"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imsfs/imsfs/cache"
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

// Admit decides what a closed file's record becomes: Queued until due, or Skipped, with the
// reason, when its name cannot become an asset. It is asked after a last close, a rename and a
// restart, and reports whether the record is to be queued.
func Admit(r *cache.Record, due time.Time) bool {
	r.Attempts, r.Error = 0, ""
	if _, err := ParseName(path.Base(r.Path)); err != nil {
		r.State, r.Error = cache.Skipped, "not uploaded: "+err.Error()
		return false
	}
	r.State, r.Due = cache.Queued, due
	return true
}
