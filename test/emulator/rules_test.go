package emulator_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imsfs/imsfs/test/emulator"
)

// The tests in this file are the service's rules (ims-api.md § 6) as a client built from the
// public SDKs alone meets them: the darabonba-openapi client and the OSS SDK, nothing of imsfs.

func TestBatchGetMediaInfosAnswersForTheAssetsItKnows(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	done := ticket(t, s, nil)
	if err := done.Bucket.PutObject(done.Key, strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}
	empty := ticket(t, s, nil)
	body, err := call(c, "BatchGetMediaInfos", map[string]string{"MediaIds": done.MediaID + ",nope," + empty.MediaID, "AdditionType": "FileInfo", "AuthTimeout": "60"})
	if err != nil {
		t.Fatal(err)
	}
	infos := body["MediaInfos"].([]any)
	if len(infos) != 2 {
		t.Fatalf("%d MediaInfos for two known assets and an unknown one: %v", len(infos), infos)
	}
	first := infos[0].(map[string]any)
	if first["MediaId"] != done.MediaID || basic(first)["Status"] != "Normal" {
		t.Fatalf("first: %v", first)
	}
	files := first["FileInfoList"].([]any)
	if len(files) != 1 {
		t.Fatalf("FileInfoList of a complete asset: %v", files)
	}
	url := files[0].(map[string]any)["FileBasicInfo"].(map[string]any)["FileUrl"].(string)
	if !strings.Contains(url, "Signature=") || !strings.Contains(url, "Expires=") {
		t.Errorf("FileUrl %q is not signed", url)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "12345" {
		t.Errorf("GET of the signed FileUrl: %d %q", resp.StatusCode, got)
	}
	if files := infos[1].(map[string]any)["FileInfoList"].([]any); len(files) != 0 {
		t.Errorf("an asset without bytes lists files: %v", files)
	}
	body, err = call(c, "BatchGetMediaInfos", map[string]string{"MediaIds": done.MediaID})
	if err != nil {
		t.Fatal(err)
	}
	if _, has := body["MediaInfos"].([]any)[0].(map[string]any)["FileInfoList"]; has {
		t.Errorf("without AdditionType FileInfo, files are listed")
	}
	for _, q := range []map[string]string{
		{"MediaIds": done.MediaID, "AuthTimeout": "0"},
		{"MediaIds": done.MediaID, "AuthTimeout": "86401"},
		{"MediaIds": done.MediaID, "AdditionType": "Everything"},
	} {
		if code, _ := errCode(func() error { _, err := call(c, "BatchGetMediaInfos", q); return err }()); code != "InvalidParameter" {
			t.Errorf("BatchGetMediaInfos %v: %q, want InvalidParameter", q, code)
		}
	}
	if code, _ := errCode(func() error { _, err := call(c, "BatchGetMediaInfos", nil); return err }()); code != "MissingParameter" {
		t.Errorf("BatchGetMediaInfos without MediaIds: %q, want MissingParameter", code)
	}
}

// TestListMediaBasicInfosFiltersAsTheReferenceSays: by time window, MediaType, BusinessType and
// Status, at most 100 a page, among many assets.
func TestListMediaBasicInfosFiltersAsTheReferenceSays(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	for _, seed := range []string{"count=2000&type=image&business_type=default&spread=1h", "count=500&type=video&business_type=general&spread=24h"} {
		resp, err := http.Post(s.URL()+"/_emulator/seed?"+seed, "", nil)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("seed %s: %v %v", seed, resp, err)
		}
		resp.Body.Close()
	}
	start := time.Now().UTC().Add(-2 * time.Second)
	mine := ticket(t, s, map[string]string{"FileInfo": `{"Type":"video","Name":"a","Ext":"mp4"}`, "MediaMetaData": `{"Title":"a","BusinessType":"opening"}`})
	list := func(q map[string]string) []string {
		t.Helper()
		body, err := call(c, "ListMediaBasicInfos", q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range body["MediaInfos"].([]any) {
			ids = append(ids, m.(map[string]any)["MediaId"].(string))
		}
		return ids
	}
	window := start.Format("2006-01-02T15:04:05Z")
	if ids := list(map[string]string{"StartTime": window, "MediaType": "video", "MaxResults": "100"}); len(ids) != 1 || ids[0] != mine.MediaID {
		t.Errorf("video since the window's start: %v, want only %s", ids, mine.MediaID)
	}
	if ids := list(map[string]string{"MediaType": "video", "BusinessType": "opening", "MaxResults": "100"}); len(ids) != 1 {
		t.Errorf("video/opening: %v", ids)
	}
	if ids := list(map[string]string{"MediaType": "video", "Status": "Init", "MaxResults": "100"}); len(ids) != 1 {
		t.Errorf("video in Init: %v", ids)
	}
	if ids := list(map[string]string{"MediaType": "image", "MaxResults": "100"}); len(ids) != 100 {
		t.Errorf("a page holds %d, want 100", len(ids))
	}
	before := start.Add(-time.Minute).Format("2006-01-02T15:04:05Z")
	if ids := list(map[string]string{"EndTime": before, "MediaType": "video", "BusinessType": "opening"}); len(ids) != 0 {
		t.Errorf("an EndTime before the asset lists %v", ids)
	}
}

// TestUpdateMediaInfoCountsTheTitleInBytes: CreateUploadMedia counts 128 characters, and
// UpdateMediaInfo 128 bytes, as their references say.
func TestUpdateMediaInfoCountsTheTitleInBytes(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	u := ticket(t, s, map[string]string{"FileInfo": video["FileInfo"], "MediaMetaData": `{"Title":"` + strings.Repeat("長", 128) + `","BusinessType":"general"}`})
	if _, err := call(c, "UpdateMediaInfo", map[string]string{"MediaId": u.MediaID, "Title": strings.Repeat("長", 43)}); err == nil {
		t.Errorf("a Title of 43 CJK characters (129 bytes) was taken")
	}
	if _, err := call(c, "UpdateMediaInfo", map[string]string{"MediaId": u.MediaID, "Title": strings.Repeat("長", 42)}); err != nil {
		t.Errorf("a Title of 42 CJK characters (126 bytes): %v", err)
	}
}

// TestAMediaFileOverTheLimitIsNotPrepared: the object store takes a video over the media
// library's limit; the library does not process it.
func TestAMediaFileOverTheLimitIsNotPrepared(t *testing.T) {
	s := startEmulator(t, emulator.Options{MaxMediaSize: 1000})
	v := ticket(t, s, nil)
	if err := v.Bucket.PutObject(v.Key, strings.NewReader(strings.Repeat("v", 1001))); err != nil {
		t.Fatal(err)
	}
	if st := basic(mediaInfo(t, s, v.MediaID))["Status"]; st != "PrepareFail" {
		t.Errorf("a video over the limit is %v, want PrepareFail", st)
	}
	img := ticket(t, s, map[string]string{"FileInfo": `{"Type":"image","Name":"a","Ext":"png"}`, "MediaMetaData": `{"Title":"a","BusinessType":"default"}`})
	if err := img.Bucket.PutObject(img.Key, strings.NewReader(strings.Repeat("i", 1001))); err != nil {
		t.Fatal(err)
	}
	if st := basic(mediaInfo(t, s, img.MediaID))["Status"]; st != "Normal" {
		t.Errorf("an image of the same size is %v, want Normal", st)
	}
}

// TestListMediaBasicInfosTakesTheMediaTypesItsReferenceLists: image, video, audio or text; an
// asset of type other is listed without the filter.
func TestListMediaBasicInfosTakesTheMediaTypesItsReferenceLists(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	for _, mt := range []string{"image", "video", "audio", "text"} {
		if _, err := call(c, "ListMediaBasicInfos", map[string]string{"MediaType": mt}); err != nil {
			t.Errorf("MediaType %s: %v", mt, err)
		}
	}
	_, err := call(c, "ListMediaBasicInfos", map[string]string{"MediaType": "other"})
	if code, _ := errCode(err); code != "InvalidParameter" {
		t.Errorf("MediaType other: %v, want InvalidParameter", err)
	}
}

// TestListMediaBasicInfosReturnsTheFirst100: its reference, read strictly, returns at most the
// first 100 matches over all pages; a window of creation time holds the rest. Parameters it does
// not name are refused; seeded assets with bytes list their files, signed for AuthTimeout.
func TestListMediaBasicInfosReturnsTheFirst100(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	resp, err := http.Post(s.URL()+"/_emulator/seed?count=250&spread=250s&size=10", "", nil)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("seed: %v %v", resp, err)
	}
	resp.Body.Close()
	type listed struct {
		ids   []string
		times []string
		files []any
	}
	list := func(q map[string]string) listed {
		t.Helper()
		var l listed
		for {
			body, err := call(c, "ListMediaBasicInfos", q)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range body["MediaInfos"].([]any) {
				m := m.(map[string]any)
				l.ids = append(l.ids, m["MediaId"].(string))
				l.times = append(l.times, m["MediaBasicInfo"].(map[string]any)["CreateTime"].(string))
				if f, ok := m["FileInfoList"].([]any); ok {
					l.files = append(l.files, f...)
				}
			}
			next, _ := body["NextToken"].(string)
			if next == "" {
				return l
			}
			q["NextToken"] = next
		}
	}
	all := list(map[string]string{"MaxResults": "30", "SortBy": "asc"})
	if len(all.ids) != 100 {
		t.Fatalf("paged through %d matches, want the first 100", len(all.ids))
	}
	// The rest, in a window that starts (exclusive) at the 100th's creation time.
	rest := list(map[string]string{"MaxResults": "100", "SortBy": "asc", "StartTime": all.times[99], "IncludeFileBasicInfo": "true", "AuthTimeout": "60"})
	if len(rest.ids) != 100 || rest.times[0] <= all.times[99] {
		t.Errorf("the next window: %d from %v, after %s", len(rest.ids), rest.times[:1], all.times[99])
	}
	if len(rest.files) != 100 {
		t.Fatalf("%d files listed with IncludeFileBasicInfo", len(rest.files))
	}
	f := rest.files[0].(map[string]any)["FileBasicInfo"].(map[string]any)
	u, _ := url.Parse(f["FileUrl"].(string))
	if exp, _ := strconv.ParseInt(u.Query().Get("Expires"), 10, 64); f["FileSize"] != "10" || exp > time.Now().Add(61*time.Second).Unix() {
		t.Errorf("a seeded file: %v", f)
	}
	get, err := http.Get(f["FileUrl"].(string))
	if err != nil || get.StatusCode != 200 {
		t.Fatalf("GET of a seeded file's URL: %v %v", get, err)
	}
	data, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if len(data) != 10 {
		t.Errorf("a seeded object holds %d bytes", len(data))
	}
	for _, q := range []map[string]string{{"Title": "x"}, {"Category": "x"}, {"UserData": "x"}, {"IncludeFileBasicInfo": "yes"}} {
		if _, err := call(c, "ListMediaBasicInfos", q); func() string { c, _ := errCode(err); return c }() != "InvalidParameter" {
			t.Errorf("ListMediaBasicInfos %v: %v, want InvalidParameter", q, err)
		}
	}
}
