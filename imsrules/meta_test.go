package imsrules

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckMetaCountsAsEachActionCounts: CreateUploadMedia counts characters, UpdateMediaInfo
// bytes; a tag is at most 32 bytes and there are at most 16, whichever way they go.
func TestCheckMetaCountsAsEachActionCounts(t *testing.T) {
	e := func(n int) string { return strings.Repeat("é", n) } // two bytes each
	for _, tc := range []struct {
		field, value string
		update       bool
		want         error
	}{
		{"title", e(128), false, nil},
		{"title", e(128), true, ErrMetaTooLong},
		{"title", e(64), true, nil},
		{"description", e(513), false, nil},
		{"description", e(513), true, ErrMetaTooLong},
		{"description", strings.Repeat("a", 1024), true, nil},
		{"description", strings.Repeat("a", 1025), false, ErrMetaTooLong},
		{"tags", strings.Repeat("t", 32), true, nil},
		{"tags", strings.Repeat("t", 33), false, ErrMetaTooLong},
		{"tags", e(17), true, ErrMetaTooLong},
		{"tags", strings.TrimSuffix(strings.Repeat("a,", 16), ","), true, nil},
		{"tags", strings.TrimSuffix(strings.Repeat("a,", 17), ","), false, ErrMetaTooLong},
		{"tags", "a,,b", false, ErrMetaInvalid},
		{"cate_id", "12", true, nil},
		{"cate_id", "x", false, ErrMetaInvalid},
		{"title", "\xff", false, ErrMetaInvalid},
	} {
		_, err := CheckMeta(tc.field, tc.value, tc.update)
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("%s of %d bytes (update %v): %v, want %v", tc.field, len(tc.value), tc.update, err, tc.want)
		}
	}
}
