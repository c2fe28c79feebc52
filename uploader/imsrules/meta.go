package imsrules

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imsfs/imsfs/cache"
)

// The limits of the asset fields a file's attributes set, as the references give them:
// CreateUploadMedia's MediaMetaData counts characters (Title 128, Description 1,024);
// UpdateMediaInfo's counts bytes (Title 128, Description 1,024, at most 16 tags of 32 each).
const (
	MaxDescription = 1024
	MaxTags        = 16
	MaxTag         = 32 // bytes
)

var (
	// ErrMetaTooLong: a value over its field's limit (E2BIG for the writer).
	ErrMetaTooLong = errors.New("too long")
	// ErrMetaInvalid: a value its field cannot take (EINVAL for the writer).
	ErrMetaInvalid = errors.New("not valid")
)

// CheckMeta checks value for the asset field (one of cache.MetaFields) as IMS would, and
// returns it as it is sent: tags without the spaces around them, a category id as IMS writes
// it. With update, the value goes by UpdateMediaInfo (the asset is made), whose limits are in
// bytes; else with CreateUploadMedia, whose are in characters. An empty value is the field's
// default and always passes.
func CheckMeta(field, value string, update bool) (string, error) {
	if value == "" {
		return "", nil
	}
	if !utf8.ValidString(value) {
		return "", fmt.Errorf("%s: %w: IMS takes UTF-8 text only", field, ErrMetaInvalid)
	}
	// length is value's length as the action it goes by counts it.
	length, unit, by := utf8.RuneCountInString(value), "characters", "CreateUploadMedia"
	if update {
		length, unit, by = len(value), "bytes", "UpdateMediaInfo"
	}
	switch field {
	case "title":
		if strings.TrimSpace(value) == "" {
			return "", fmt.Errorf("title: %w: it is blank", ErrMetaInvalid)
		}
		if length > MaxTitle {
			return "", fmt.Errorf("title: %w: %d %s, %s takes at most %d", ErrMetaTooLong, length, unit, by, MaxTitle)
		}
	case "description":
		if length > MaxDescription {
			return "", fmt.Errorf("description: %w: %d %s, %s takes at most %d", ErrMetaTooLong, length, unit, by, MaxDescription)
		}
	case "tags":
		tags := strings.Split(value, ",")
		if len(tags) > MaxTags {
			return "", fmt.Errorf("tags: %w: %d tags, IMS takes at most %d", ErrMetaTooLong, len(tags), MaxTags)
		}
		for i, t := range tags {
			if tags[i] = strings.TrimSpace(t); tags[i] == "" {
				return "", fmt.Errorf("tags: %w: an empty tag in %q (tags are separated by commas)", ErrMetaInvalid, value)
			}
			// UpdateMediaInfo's limit, whichever way they go: CreateUploadMedia's reference
			// gives none, and an asset's tags may have to be sent again.
			if len(tags[i]) > MaxTag {
				return "", fmt.Errorf("tags: %w: the tag %q is %d bytes, UpdateMediaInfo takes at most %d a tag", ErrMetaTooLong, tags[i], len(tags[i]), MaxTag)
			}
		}
		return strings.Join(tags, ","), nil
	case "cate_id":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n <= 0 {
			return "", fmt.Errorf("cate_id: %w: %q is not a category id (a positive integer)", ErrMetaInvalid, value)
		}
		// As IMS gives it back: "+12" or "012" would differ from the asset's 12.
		return strconv.FormatInt(n, 10), nil
	default:
		return "", fmt.Errorf("%s: %w: not an asset field (%s are)", field, ErrMetaInvalid, strings.Join(cache.MetaFields, ", "))
	}
	return value, nil
}

// Title is the Title the asset of r takes: the one set on the file, or its name's.
func Title(r *cache.Record) string {
	if r.Meta.Title != "" {
		return r.Meta.Title
	}
	name, err := ParseName(path.Base(r.Path))
	if err != nil {
		return ""
	}
	return name.Title
}

// CateID reads a CateId CheckMeta passed (0: none).
func CateID(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
