// Package imsrules holds the rules of Intelligent Media Services that imsfs follows: what a file
// name gives CreateUploadMedia, which names and formats become assets, the BusinessTypes of each
// Type, the limits of the fields a user sets and which of them UpdateMediaInfo takes, and the
// names library/ gives assets. The file system and the commands ask them here, without the
// upload queue; it imports nothing of imsfs but cache, whose records the rules are asked about
// (the Admitter is the cache's Admission).
package imsrules

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/imsfs/imsfs/cache"
)

// MaxTitle is the longest Title imsfs sends, in bytes: CreateUploadMedia's reference counts 128
// characters, UpdateMediaInfo's 128 bytes; a Title both take is one of at most 128 bytes.
const MaxTitle = 128

// ErrNoExtension means a file name has no extension, which CreateUploadMedia requires (FileInfo.Ext).
var ErrNoExtension = errors.New("the name has no extension, which IMS requires")

// Name is what a file name gives CreateUploadMedia.
type Name struct {
	Base  string // FileInfo.Name: the name without its extension
	Ext   string // FileInfo.Ext: without the dot
	Title string // MediaMetaData.Title: Base, made valid UTF-8 and cut to MaxTitle bytes, between characters
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
	for len(title) > MaxTitle {
		_, size := utf8.DecodeLastRuneInString(title)
		title = title[:len(title)-size]
	}
	n.Title = title
	return n, nil
}

// DefaultTempNames are the names tools give files that are not (yet) the final ones, as
// path.Match patterns on the file name: vim's swap, backup and write-test files, emacs autosave
// and lock files, LibreOffice and MS Office temporary files, partial downloads, rsync's and
// GIO's temporary files. A file of such a name is skipped, and uploaded once renamed.
const DefaultTempNames = ".*.swp,.*.swo,.*.swx,*~,4913,#*#,.#*,*.tmp,*.temp,*.crdownload,*.part," +
	"*.partial,.*.??????,.goutputstream-*,*.kate-swp"

// DefaultJunkNames are the names desktops, office programs and file systems leave beside the
// files a user saves: macOS's .DS_Store and AppleDouble ._ files, Windows' Thumbs.db and
// desktop.ini, LibreOffice's and MS Office's lock files, FUSE's and NFS's placeholders of
// removed open files. They are kept in the mount, show no sidecar and never become assets
// (status local); a folder of the configuration file may name its own (ignore:).
var DefaultJunkNames = []string{".DS_Store", "._*", "Thumbs.db", "desktop.ini", ".~lock.*#", "~$*", ".fuse_hidden*", ".nfs*"}

// Admitter decides which closed files become assets.
type Admitter struct {
	temp []string // read only: path.Match patterns of temporary names
	// junk gives the junk-name patterns of the folder at dir (DefaultJunkNames, or the
	// configuration file's ignore: for it).
	junk func(dir string) []string // read only
}

// NewAdmitter takes a comma-separated list of temporary-name patterns (path.Match syntax, on
// the file name only). Junk names are DefaultJunkNames in every folder, unless SetJunk says.
func NewAdmitter(tempNames string) (*Admitter, error) {
	a := &Admitter{junk: func(string) []string { return DefaultJunkNames }}
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

// CheckPatterns checks path.Match patterns of file names (a folder's ignore:).
func CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil || p == "" || strings.Contains(p, "/") {
			return fmt.Errorf("pattern %q: want a shell glob of a file name (path.Match), no /", p)
		}
	}
	return nil
}

// SetJunk makes junk(dir) the junk-name patterns of the folder at dir; call it before use.
func (a *Admitter) SetJunk(junk func(dir string) []string) { a.junk = junk }

// Junk reports whether the file at p (mount-relative) has a junk name, and the pattern that
// says so.
func (a *Admitter) Junk(p string) (string, bool) {
	name := path.Base(p)
	for _, pat := range a.junk(path.Dir(p)) {
		if ok, _ := path.Match(pat, name); ok {
			return pat, true
		}
	}
	return "", false
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

// Refuse says whether the file r stands for is uploaded: not under a temporary name (it is
// once renamed to a real name), nor without an extension, nor in a format its folder's Type
// does not take, nor empty (skipped); not an audio or video file over the service's size limit (failed at
// once, as the service would fail it after the upload). It is the cache's Admission: the
// life-cycle asks it after a last close, a rename and a retry.
func (a *Admitter) Refuse(r *cache.Record) (cache.State, string) {
	name := path.Base(r.Path)
	if pat, ok := a.Junk(r.Path); ok {
		return cache.Local, fmt.Sprintf("kept in the mount, never uploaded: %q is a name desktops and systems leave beside files (pattern %q)", name, pat)
	}
	if pat, ok := a.TempName(name); ok {
		return cache.Skipped, fmt.Sprintf("not uploaded: %q is a temporary name (pattern %q); rename it to upload it", name, pat)
	}
	n, err := ParseName(name)
	if err != nil {
		return cache.Skipped, "not uploaded: " + err.Error()
	}
	if what, exts := formatsOf(r.Type, r.BusinessType); exts != nil && !slices.Contains(exts, strings.ToLower(n.Ext)) {
		return cache.Skipped, fmt.Sprintf("not uploaded: IMS does not take .%s files as %s; this folder takes %s", n.Ext, what, strings.Join(exts, ", "))
	}
	if r.Size == 0 {
		// touch, or an editor's placeholder: an asset with no media in it is of no use, and the
		// file is uploaded as soon as it is closed with bytes.
		return cache.Skipped, fmt.Sprintf("not uploaded yet: %q is empty; it is uploaded once it is closed with bytes in it", name)
	}
	if (r.Type == "video" || r.Type == "audio") && r.Size > MaxMediaSize {
		return cache.Failed, fmt.Sprintf("not uploaded: %d bytes; IMS takes %s files of at most 5 GiB (%d bytes)", r.Size, r.Type, int64(MaxMediaSize))
	}
	return "", ""
}

// BusinessTypes lists, for each FileInfo.Type, the BusinessTypes IMS takes: the reference's
// pairs (watermark for images: the reference's "material" is not a Type), and general.
var BusinessTypes = map[string][]string{
	"video": {"general", "opening", "ending"},
	"image": {"default", "cover", "watermark", "general"},
	"audio": {"general"},
	"text":  {"subtitles", "font", "general"},
	"other": {"general"},
}

// UpdateBusinessTypes are the BusinessTypes UpdateMediaInfo takes (its reference): an asset
// of another (an image's default or cover, a font) keeps the one it was made with.
var UpdateBusinessTypes = []string{"subtitles", "watermark", "opening", "ending", "general"}

// MaxMediaSize is the largest audio or video file IMS takes: 5 GB, as the upload page says,
// read as 5 GiB.
const MaxMediaSize = 5 << 30

// formats are the extensions IMS takes, by FileInfo.Type and, for text, BusinessType, from the
// "Overview of media upload" page. Type other has no list: IMS names none.
var formats = map[string][]string{
	"video": {"mp4", "ts", "3gp", "mpg", "mpeg", "mpe", "dat", "vob", "asf", "avi", "wmv", "flv", "f4v", "rm", "rmvb",
		"mov", "mkv", "m3u8", "dv", "gif", "m2t", "m4v", "mj2", "mjpeg", "mts", "ogg", "qt", "swf", "webm"},
	"audio":          {"mp3", "wma", "wav", "aac", "ra", "m4a", "flac", "ape", "ac3", "amr", "caf", "acm"},
	"image":          {"gif", "webp", "png", "jpg", "jpeg", "heic"},
	"text/subtitles": {"srt", "vtt", "ass"},
	"text/font":      {"ttf", "ttc", "fon"},
	"text":           {"srt", "vtt", "ass", "ttf", "ttc", "fon"},
}

// formatsOf returns what the files of a Type and BusinessType are called ("video", "subtitles")
// and the extensions IMS takes for them (nil: any).
func formatsOf(typ, business string) (string, []string) {
	if exts, ok := formats[typ+"/"+business]; ok {
		return business, exts
	}
	return typ, formats[typ]
}

// Formats returns the extensions IMS takes for a Type and BusinessType (nil: any).
func Formats(typ, business string) []string {
	_, exts := formatsOf(typ, business)
	return exts
}
