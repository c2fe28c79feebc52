package fs

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/imsrules"
)

// FuzzSidecarJSON: whatever is written to a sidecar, fieldsOf takes a JSON object only, and of
// it the asset's fields only; a field's text is its string, its list of strings joined by
// commas, or its number, and what is none of those is refused; the text is what imsrules
// checks, refusing it as too long or not valid.
func FuzzSidecarJSON(f *testing.F) {
	for _, s := range []string{
		`{"title":"Opening night","description":"the wide shot","tags":["premiere","wide"],"cate_id":12,"status":"ready","media_id":"copied"}`,
		`{"title":"` + strings.Repeat("t", 129) + `"}`,
		`{"title":"Came first"}`, `{}`, `not json`, `null`, `[1]`, `{"tags":"a, b"}`, `{"cate_id":"12"}`,
		`{"title":null}`, `{"title":true}`, `{"tags":[1,2]}`, `{"description":{"en":"x"}}`, `{"cate_id":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, ok := fieldsOf(data)
		var obj map[string]json.RawMessage
		isObject := len(data) <= maxSidecarWrite && json.Unmarshal(data, &obj) == nil && obj != nil
		if ok != isObject {
			t.Fatalf("fieldsOf(%q): ok %v, but a JSON object: %v", data, ok, isObject)
		}
		for field, v := range fields {
			if !slices.Contains(cache.MetaFields, field) {
				t.Fatalf("fieldsOf(%q) gives %q, not an asset field", data, field)
			}
			raw := obj[field]
			text, isText := jsonText(raw)
			if v.err != nil {
				if isText || !errors.Is(v.err, imsrules.ErrMetaInvalid) || !strings.HasPrefix(v.err.Error(), field+": ") {
					t.Fatalf("fieldsOf(%q): %s (%s) refused: %v", data, field, raw, v.err)
				}
				continue
			}
			if !isText || v.text != text {
				t.Fatalf("fieldsOf(%q): %s (%s) = %q, want %q (text: %v)", data, field, raw, v.text, text, isText)
			}
			for _, update := range []bool{false, true} {
				if _, err := imsrules.CheckMeta(field, v.text, update); err != nil && !errors.Is(err, imsrules.ErrMetaTooLong) && !errors.Is(err, imsrules.ErrMetaInvalid) {
					t.Fatalf("fieldsOf(%q): %s %q: %v", data, field, v.text, err)
				}
			}
		}
	})
}

// jsonText is what a sidecar's JSON value says as text, as its reader takes it: a string, a
// list of strings joined by commas, a number, or null (the field's default); ok is false for
// what is none of those.
func jsonText(raw json.RawMessage) (string, bool) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case []any:
		list := make([]string, len(v))
		for i, e := range v {
			s, isString := e.(string)
			if !isString && e != nil {
				return "", false
			}
			list[i] = s
		}
		return strings.Join(list, ","), true
	}
	return "", false
}
