package imsrules

import (
	"errors"
	"strings"
	"testing"
)

// twoByte is n characters of two bytes each.
func twoByte(n int) string { return strings.Repeat("é", n) }

// checkMetaCases are TestCheckMetaCountsAsEachActionCounts's, and FuzzCheckMeta's seeds.
var checkMetaCases = []struct {
	field, value string
	update       bool
	want         error
}{
	{"title", twoByte(128), false, nil},
	{"title", twoByte(128), true, ErrMetaTooLong},
	{"title", twoByte(64), true, nil},
	{"description", twoByte(513), false, nil},
	{"description", twoByte(513), true, ErrMetaTooLong},
	{"description", strings.Repeat("a", 1024), true, nil},
	{"description", strings.Repeat("a", 1025), false, ErrMetaTooLong},
	{"tags", strings.Repeat("t", 32), true, nil},
	{"tags", strings.Repeat("t", 33), false, ErrMetaTooLong},
	{"tags", twoByte(17), true, ErrMetaTooLong},
	{"tags", strings.TrimSuffix(strings.Repeat("a,", 16), ","), true, nil},
	{"tags", strings.TrimSuffix(strings.Repeat("a,", 17), ","), false, ErrMetaTooLong},
	{"tags", "a,,b", false, ErrMetaInvalid},
	{"cate_id", "12", true, nil},
	{"cate_id", "x", false, ErrMetaInvalid},
	{"title", "\xff", false, ErrMetaInvalid},
}

// TestCheckMetaCountsAsEachActionCounts: CreateUploadMedia counts characters, UpdateMediaInfo
// bytes; a tag is at most 32 bytes and there are at most 16, whichever way they go.
func TestCheckMetaCountsAsEachActionCounts(t *testing.T) {
	for _, tc := range checkMetaCases {
		_, err := CheckMeta(tc.field, tc.value, tc.update)
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("%s of %d bytes (update %v): %v, want %v", tc.field, len(tc.value), tc.update, err, tc.want)
		}
	}
}

// TestCheckMetaWritesACategoryIDAsIMSDoes: found by FuzzCheckMeta.
func TestCheckMetaWritesACategoryIDAsIMSDoes(t *testing.T) {
	for _, v := range []string{"12", "+12", "012"} {
		if got, err := CheckMeta("cate_id", v, false); got != "12" || err != nil {
			t.Errorf("CheckMeta(cate_id, %q) = %q, %v, want 12", v, got, err)
		}
	}
}
