package emulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/imsfs/imsfs/test/emulator"
)

// TestCreateUploadMediaEnforcesTheReferenceRules drives every CreateUploadMedia rule, accepted
// and refused, through the real client, and checks the code, the status and the JSON shape.
func TestCreateUploadMediaEnforcesTheReferenceRules(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	exts := map[string]string{"video": "mp4", "image": "png", "audio": "mp3", "text": "srt", "other": "bin"}
	fi := func(typ string) string { return `{"Type":"` + typ + `","Name":"clip","Ext":"` + exts[typ] + `"}` }
	fiExt := func(typ, ext string) string { return `{"Type":"` + typ + `","Name":"clip","Ext":"` + ext + `"}` }
	md := func(biz string) string { return `{"Title":"clip","BusinessType":"` + biz + `"}` }
	long := func(n int, r string) string { return strings.Repeat(r, n) }
	tests := []struct {
		name   string
		params map[string]string
		code   string // "" for accepted
	}{
		{"video general", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general")}, ""},
		{"video opening", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("opening")}, ""},
		{"video ending", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("ending")}, ""},
		{"video cover", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("cover")}, "InvalidParameter"},
		{"video subtitles", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("subtitles")}, "InvalidParameter"},
		{"image default", map[string]string{"FileInfo": fi("image"), "MediaMetaData": md("default")}, ""},
		{"image cover", map[string]string{"FileInfo": fi("image"), "MediaMetaData": md("cover")}, ""},
		{"image watermark", map[string]string{"FileInfo": fi("image"), "MediaMetaData": md("watermark")}, ""},
		{"image opening", map[string]string{"FileInfo": fi("image"), "MediaMetaData": md("opening")}, "InvalidParameter"},
		{"text subtitles", map[string]string{"FileInfo": fi("text"), "MediaMetaData": md("subtitles")}, ""},
		{"text font", map[string]string{"FileInfo": fiExt("text", "ttf"), "MediaMetaData": md("font")}, ""},
		{"a font as subtitles", map[string]string{"FileInfo": fiExt("text", "ttf"), "MediaMetaData": md("subtitles")}, "InvalidParameter"},
		{"subtitles as a font", map[string]string{"FileInfo": fiExt("text", "srt"), "MediaMetaData": md("font")}, "InvalidParameter"},
		{"a .txt video", map[string]string{"FileInfo": fiExt("video", "txt"), "MediaMetaData": md("general")}, "InvalidParameter"},
		{"an upper-case .MOV video", map[string]string{"FileInfo": fiExt("video", "MOV"), "MediaMetaData": md("general")}, ""},
		{"a .bmp image", map[string]string{"FileInfo": fiExt("image", "bmp"), "MediaMetaData": md("default")}, "InvalidParameter"},
		{"a .heic image", map[string]string{"FileInfo": fiExt("image", "heic"), "MediaMetaData": md("default")}, ""},
		{"a .wav audio", map[string]string{"FileInfo": fiExt("audio", "wav"), "MediaMetaData": md("general")}, ""},
		{"an .mp4 audio", map[string]string{"FileInfo": fiExt("audio", "mp4"), "MediaMetaData": md("general")}, "InvalidParameter"},
		{"anything as other", map[string]string{"FileInfo": fiExt("other", "xyz"), "MediaMetaData": md("general")}, ""},
		{"a video of 5 GiB", map[string]string{"FileInfo": `{"Type":"video","Name":"a","Ext":"mp4","Size":5368709120}`, "MediaMetaData": md("general")}, ""},
		{"a video over 5 GiB", map[string]string{"FileInfo": `{"Type":"video","Name":"a","Ext":"mp4","Size":5368709121}`, "MediaMetaData": md("general")}, "InvalidParameter"},
		{"an audio over 5 GiB", map[string]string{"FileInfo": `{"Type":"audio","Name":"a","Ext":"mp3","Size":5368709121}`, "MediaMetaData": md("general")}, "InvalidParameter"},
		{"an image over 5 GiB", map[string]string{"FileInfo": `{"Type":"image","Name":"a","Ext":"png","Size":5368709121}`, "MediaMetaData": md("default")}, ""},
		{"text cover", map[string]string{"FileInfo": fi("text"), "MediaMetaData": md("cover")}, "InvalidParameter"},
		{"audio general", map[string]string{"FileInfo": fi("audio"), "MediaMetaData": md("general")}, ""},
		{"audio opening", map[string]string{"FileInfo": fi("audio"), "MediaMetaData": md("opening")}, "InvalidParameter"},
		{"other general", map[string]string{"FileInfo": fi("other"), "MediaMetaData": md("general")}, ""},
		{"other font", map[string]string{"FileInfo": fi("other"), "MediaMetaData": md("font")}, "InvalidParameter"},
		{"unknown business type", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("trailer")}, "InvalidParameter"},
		{"material is not a type", map[string]string{"FileInfo": fi("material"), "MediaMetaData": md("watermark")}, "InvalidParameter"},
		{"unknown type", map[string]string{"FileInfo": fi("movie"), "MediaMetaData": md("general")}, "InvalidParameter"},
		{"no type", map[string]string{"FileInfo": `{"Name":"a","Ext":"mp4"}`, "MediaMetaData": md("general")}, "InvalidParameter"},
		{"no name", map[string]string{"FileInfo": `{"Type":"video","Ext":"mp4"}`, "MediaMetaData": md("general")}, "InvalidParameter"},
		{"no ext", map[string]string{"FileInfo": `{"Type":"video","Name":"a"}`, "MediaMetaData": md("general")}, "InvalidParameter"},
		{"size", map[string]string{"FileInfo": `{"Type":"video","Name":"a","Ext":"mp4","Size":108078336}`, "MediaMetaData": md("general")}, ""},
		{"negative size", map[string]string{"FileInfo": `{"Type":"video","Name":"a","Ext":"mp4","Size":-1}`, "MediaMetaData": md("general")}, "InvalidParameter"},
		{"FileInfo not JSON", map[string]string{"FileInfo": `{"Type":`, "MediaMetaData": md("general")}, "InvalidParameter"},
		{"no FileInfo", map[string]string{"MediaMetaData": md("general")}, "MissingParameter"},
		{"no MediaMetaData", map[string]string{"FileInfo": fi("video")}, "MissingParameter"},
		{"no title", map[string]string{"FileInfo": fi("video"), "MediaMetaData": `{"BusinessType":"general"}`}, "InvalidParameter"},
		{"128-character title", map[string]string{"FileInfo": fi("video"), "MediaMetaData": `{"Title":"` + long(128, "長") + `","BusinessType":"general"}`}, ""},
		{"129-character title", map[string]string{"FileInfo": fi("video"), "MediaMetaData": `{"Title":"` + long(129, "t") + `","BusinessType":"general"}`}, "InvalidParameter"},
		{"title not UTF-8", map[string]string{"FileInfo": fi("video"), "MediaMetaData": "{\"Title\":\"a\xff\",\"BusinessType\":\"general\"}"}, "InvalidParameter"},
		{"1024-character description", map[string]string{"FileInfo": fi("video"), "MediaMetaData": `{"Title":"a","Description":"` + long(1024, "d") + `","BusinessType":"general"}`}, ""},
		{"1025-character description", map[string]string{"FileInfo": fi("video"), "MediaMetaData": `{"Title":"a","Description":"` + long(1025, "d") + `","BusinessType":"general"}`}, "InvalidParameter"},
		{"no business type", map[string]string{"FileInfo": fi("video"), "MediaMetaData": `{"Title":"a"}`}, "InvalidParameter"},
		{"tags and CateId", map[string]string{"FileInfo": fi("video"), "MediaMetaData": `{"Title":"a","BusinessType":"general","Tags":"a,b","CateId":3049}`}, ""},
		{"CateId not a number", map[string]string{"FileInfo": fi("video"), "MediaMetaData": `{"Title":"a","BusinessType":"general","CateId":"x"}`}, "InvalidParameter"},
		{"UserData object", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "UserData": `{"Extend":{"imsfs":"1.1"}}`}, ""},
		{"UserData not JSON", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "UserData": `{"Extend":`}, "InvalidParameter"},
		{"UserData callback", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "UserData": `{"MessageCallback":{"CallbackURL":"http://127.0.0.1:1/cb"}}`}, ""},
		{"UserData callback not a URL", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "UserData": `{"MessageCallback":{"CallbackURL":"ftp:x"}}`}, "InvalidParameter"},
		{"workflow for video", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "PostProcessConfig": `{"ProcessType":"Workflow","ProcessID":"wf-1"}`}, ""},
		{"workflow for audio", map[string]string{"FileInfo": fi("audio"), "MediaMetaData": md("general"), "PostProcessConfig": `{"ProcessType":"Workflow","ProcessID":"wf-1"}`}, ""},
		{"workflow for an image", map[string]string{"FileInfo": fi("image"), "MediaMetaData": md("cover"), "PostProcessConfig": `{"ProcessType":"Workflow","ProcessID":"wf-1"}`}, "InvalidParameter"},
		{"process type not Workflow", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "PostProcessConfig": `{"ProcessType":"Transcode","ProcessID":"t"}`}, "InvalidParameter"},
		{"PostProcessConfig not JSON", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "PostProcessConfig": `Workflow`}, "InvalidParameter"},
		{"storage oss", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "UploadTargetConfig": `{"StorageType":"oss","StorageLocation":"outin-abc.oss-cn-shanghai.aliyuncs.com"}`}, ""},
		{"storage not oss", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "UploadTargetConfig": `{"StorageType":"vod","StorageLocation":"outin-abc.oss-cn-shanghai.aliyuncs.com"}`}, "InvalidParameter"},
		{"storage an OSS URL", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "UploadTargetConfig": `{"StorageType":"oss","StorageLocation":"https://mybucket.oss-cn-shanghai.aliyuncs.com/"}`}, "InvalidParameter"},
		{"storage an own bucket", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "UploadTargetConfig": `{"StorageType":"oss","StorageLocation":"mybucket.oss-cn-shanghai.aliyuncs.com"}`}, "InvalidParameter"},
		{"explicit AppId", map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "AppId": "app-2000000"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := call(c, "CreateUploadMedia", tt.params)
			code, status := errCode(err)
			if code != tt.code {
				t.Fatalf("got %q %d (%v), want %q", code, status, err, tt.code)
			}
			if tt.code != "" {
				if status != 400 {
					t.Fatalf("status %d, want 400", status)
				}
				return
			}
			for _, f := range []string{"RequestId", "MediaId", "MediaURL", "FileURL", "UploadAddress", "UploadAuth"} {
				if s, _ := body[f].(string); s == "" {
					t.Errorf("the answer has no %s: %v", f, body)
				}
			}
		})
	}
	t.Run("AppId defaults to app-1000000", func(t *testing.T) {
		appOf := func(params map[string]string) string {
			body, err := call(c, "CreateUploadMedia", params)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range s.Assets() {
				if a.MediaId == body["MediaId"] {
					return a.AppId
				}
			}
			t.Fatalf("no asset %v", body["MediaId"])
			return ""
		}
		if got := appOf(map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general")}); got != "app-1000000" {
			t.Errorf("without AppId the asset has %q, want app-1000000", got)
		}
		if got := appOf(map[string]string{"FileInfo": fi("video"), "MediaMetaData": md("general"), "AppId": "app-2000000"}); got != "app-2000000" {
			t.Errorf("with AppId app-2000000 the asset has %q", got)
		}
	})
}

// TestErrorAnswersHaveTheGatewayShape checks the raw JSON of an error: every field the real
// gateway sends, and the request id echoed in a header.
func TestErrorAnswersHaveTheGatewayShape(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	_, err := call(client(t, s, "", nil), "GetMediaInfo", map[string]string{"MediaId": "nope"})
	var se *tea.SDKError
	if !asSDKError(err, &se) {
		t.Fatalf("want an SDK error, got %v", err)
	}
	data, _ := se.Data, 0
	var body map[string]any
	if err := json.Unmarshal([]byte(tea.StringValue(data)), &body); err != nil {
		t.Fatalf("error data %q: %v", tea.StringValue(data), err)
	}
	for _, f := range []string{"RequestId", "HostId", "Code", "Message", "Recommend"} {
		if v, _ := body[f].(string); v == "" {
			t.Errorf("the error answer lacks %s: %v", f, body)
		}
	}
	resp, err := http.Post(s.URL()+"/?MediaId=x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("x-acs-request-id") == "" || !strings.Contains(string(raw), resp.Header.Get("x-acs-request-id")) {
		t.Errorf("x-acs-request-id %q is not the body's RequestId: %s", resp.Header.Get("x-acs-request-id"), raw)
	}
	if resp.StatusCode != 400 || !strings.Contains(string(raw), `"Code":"MissingParameter"`) {
		t.Errorf("an unsigned request got %d %s, want 400 MissingParameter", resp.StatusCode, raw)
	}
	_, err = call(client(t, s, "", nil), "SubmitTranscodeJob", nil)
	if code, status := errCode(err); code != "InvalidAction.NotFound" || status != 404 {
		t.Errorf("an action the emulator lacks: %s %d, want InvalidAction.NotFound 404", code, status)
	}
}

func asSDKError(err error, se **tea.SDKError) bool {
	e, ok := err.(*tea.SDKError)
	if ok {
		*se = e
	}
	return ok
}

// mediaInfo calls GetMediaInfo and returns MediaInfo.
func mediaInfo(t *testing.T, s *emulator.Server, id string) map[string]any {
	t.Helper()
	body, err := call(client(t, s, "", nil), "GetMediaInfo", map[string]string{"MediaId": id})
	if err != nil {
		t.Fatal(err)
	}
	return body["MediaInfo"].(map[string]any)
}

func basic(info map[string]any) map[string]any { return info["MediaBasicInfo"].(map[string]any) }

// TestAnAssetGoesFromInitToNormal follows the lifecycle through GetMediaInfo, including the
// FileInfoList and its presigned FileUrl, which must fetch the bytes.
func TestAnAssetGoesFromInitToNormal(t *testing.T) {
	s := startEmulator(t, emulator.Options{ReadyDelay: 300 * time.Millisecond})
	u := ticket(t, s, nil)
	info := mediaInfo(t, s, u.MediaID)
	if st := basic(info)["Status"]; st != "Init" {
		t.Fatalf("a new asset is %v, want Init", st)
	}
	if files := info["FileInfoList"].([]any); len(files) != 0 {
		t.Fatalf("an asset without bytes lists files: %v", files)
	}
	imur, err := u.Bucket.InitiateMultipartUpload(u.Key)
	if err != nil {
		t.Fatal(err)
	}
	if st := basic(mediaInfo(t, s, u.MediaID))["Status"]; st != "Preparing" {
		t.Fatalf("while its bytes arrive the asset is %v, want Preparing", st)
	}
	data := strings.Repeat("0123456789", 30000)
	p1, err := u.Bucket.UploadPart(imur, strings.NewReader(data[:200000]), 200000, 1)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := u.Bucket.UploadPart(imur, strings.NewReader(data[200000:]), int64(len(data)-200000), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Bucket.CompleteMultipartUpload(imur, []oss.UploadPart{p1, p2}); err != nil {
		t.Fatal(err)
	}
	if st := basic(mediaInfo(t, s, u.MediaID))["Status"]; st != "Preparing" {
		t.Fatalf("within --ready-delay the asset is %v, want Preparing", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for basic(mediaInfo(t, s, u.MediaID))["Status"] != "Normal" {
		if time.Now().After(deadline) {
			t.Fatal("the asset never became Normal")
		}
		time.Sleep(50 * time.Millisecond)
	}
	info = mediaInfo(t, s, u.MediaID)
	b := basic(info)
	for _, f := range []string{"MediaId", "InputURL", "MediaType", "BusinessType", "Source", "Title", "Status", "CreateTime", "ModifiedTime", "Biz"} {
		if v, _ := b[f].(string); v == "" {
			t.Errorf("MediaBasicInfo.%s is empty: %v", f, b)
		}
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", b["CreateTime"].(string)); err != nil {
		t.Errorf("CreateTime: %v", err)
	}
	files := info["FileInfoList"].([]any)
	if len(files) != 1 {
		t.Fatalf("FileInfoList %v, want one file", files)
	}
	fb := files[0].(map[string]any)["FileBasicInfo"].(map[string]any)
	if fb["FileSize"] != "300000" || fb["FileName"] != "clip.mp4" || fb["FileStatus"] != "Normal" || fb["FileType"] != "source_file" {
		t.Errorf("FileBasicInfo %v, want clip.mp4, 300000 bytes, Normal source_file", fb)
	}
	resp, err := http.Get(fb["FileUrl"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != data {
		t.Errorf("GET FileUrl: %d, %d bytes; want 200 and the object", resp.StatusCode, len(got))
	}
	plain, err := http.Get(b["InputURL"].(string))
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != 403 {
		t.Errorf("GET of the unsigned URL: %d, want 403 (the bucket is private)", plain.StatusCode)
	}
	byURL, err := call(client(t, s, "", nil), "GetMediaInfo", map[string]string{"InputURL": b["InputURL"].(string)})
	if err != nil || byURL["MediaInfo"].(map[string]any)["MediaId"] != u.MediaID {
		t.Errorf("GetMediaInfo by InputURL: %v %v", byURL, err)
	}
}

func TestAnAbortedUploadEndsPrepareFail(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	u := ticket(t, s, nil)
	imur, err := u.Bucket.InitiateMultipartUpload(u.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Bucket.AbortMultipartUpload(imur); err != nil {
		t.Fatal(err)
	}
	if st := basic(mediaInfo(t, s, u.MediaID))["Status"]; st != "PrepareFail" {
		t.Fatalf("after an abort the asset is %v, want PrepareFail", st)
	}
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("second try")); err != nil {
		t.Fatal(err)
	}
	if st := basic(mediaInfo(t, s, u.MediaID))["Status"]; st != "Normal" {
		t.Fatalf("after a new upload the asset is %v, want Normal", st)
	}
}

func TestUpdateMediaInfo(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	u := ticket(t, s, nil)
	tests := []struct {
		name   string
		params map[string]string
		code   string
	}{
		{"title", map[string]string{"MediaId": u.MediaID, "Title": "renamed"}, ""},
		{"long title", map[string]string{"MediaId": u.MediaID, "Title": strings.Repeat("t", 129)}, "InvalidParameter"},
		{"description", map[string]string{"MediaId": u.MediaID, "Description": "about"}, ""},
		{"tags", map[string]string{"MediaId": u.MediaID, "MediaTags": "a,b"}, ""},
		{"append tags", map[string]string{"MediaId": u.MediaID, "MediaTags": "c", "AppendTags": "true"}, ""},
		{"17 tags", map[string]string{"MediaId": u.MediaID, "MediaTags": strings.Repeat("t,", 16) + "t"}, "InvalidParameter"},
		{"business type for video", map[string]string{"MediaId": u.MediaID, "BusinessType": "opening"}, ""},
		{"business type for images", map[string]string{"MediaId": u.MediaID, "BusinessType": "cover"}, "InvalidParameter"},
		{"business type default", map[string]string{"MediaId": u.MediaID, "BusinessType": "default"}, "InvalidParameter"},
		{"business type font", map[string]string{"MediaId": u.MediaID, "BusinessType": "font"}, "InvalidParameter"},
		{"a 33-byte tag", map[string]string{"MediaId": u.MediaID, "MediaTags": "a," + strings.Repeat("t", 33)}, "InvalidParameter"},
		{"a 32-byte tag", map[string]string{"MediaId": u.MediaID, "MediaTags": strings.Repeat("t", 32), "AppendTags": "true"}, ""},
		{"a description of 1,025 bytes", map[string]string{"MediaId": u.MediaID, "Description": strings.Repeat("é", 513)}, "InvalidParameter"},
		{"CateId", map[string]string{"MediaId": u.MediaID, "CateId": "12"}, ""},
		{"CateId not a number", map[string]string{"MediaId": u.MediaID, "CateId": "x"}, "InvalidParameter"},
		{"UserData not JSON", map[string]string{"MediaId": u.MediaID, "UserData": "{"}, "InvalidParameter"},
		{"unknown asset", map[string]string{"MediaId": "nope", "Title": "x"}, "InvalidParameter"},
		{"no asset named", map[string]string{"Title": "x"}, "MissingParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := call(c, "UpdateMediaInfo", tt.params)
			if code, status := errCode(err); code != tt.code {
				t.Fatalf("got %q %d (%v), want %q", code, status, err, tt.code)
			}
			if tt.code == "" && body["MediaId"] != u.MediaID {
				t.Fatalf("answer %v lacks the MediaId", body)
			}
		})
	}
	b := basic(mediaInfo(t, s, u.MediaID))
	if b["Title"] != "renamed" || b["Description"] != "about" || b["MediaTags"] != "a,b,c,"+strings.Repeat("t", 32) || b["BusinessType"] != "opening" || b["CateId"] != json.Number("12") && b["CateId"] != float64(12) {
		t.Errorf("after the updates MediaBasicInfo is %v", b)
	}
}

func TestDeleteMediaInfos(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	keep, gone, physical := ticket(t, s, nil), ticket(t, s, nil), ticket(t, s, nil)
	for _, u := range []*upload{keep, gone, physical} {
		if err := u.Bucket.PutObject(u.Key, strings.NewReader("bytes")); err != nil {
			t.Fatal(err)
		}
	}
	body, err := call(c, "DeleteMediaInfos", map[string]string{"MediaIds": gone.MediaID + ",nope"})
	if err != nil {
		t.Fatal(err)
	}
	if ig, _ := body["IgnoredList"].([]any); len(ig) != 1 || ig[0] != "nope" {
		t.Errorf("IgnoredList %v, want [nope]", body["IgnoredList"])
	}
	if _, ok := body["ForbiddenList"].([]any); !ok {
		t.Errorf("no ForbiddenList in %v", body)
	}
	if _, err := call(c, "GetMediaInfo", map[string]string{"MediaId": gone.MediaID}); err == nil {
		t.Error("a deleted asset is still found")
	}
	if _, err := call(c, "DeleteMediaInfos", map[string]string{"MediaIds": physical.MediaID, "DeletePhysicalFiles": "true"}); err != nil {
		t.Fatal(err)
	}
	id, secret := s.AccessKey()
	admin := openBucket(t, s.URL(), keep.Addr.Bucket, id, secret)
	if ok, err := admin.IsObjectExist(gone.Key); err != nil || !ok {
		t.Errorf("without DeletePhysicalFiles the object should stay: %v %v", ok, err)
	}
	if ok, err := admin.IsObjectExist(physical.Key); err != nil || ok {
		t.Errorf("with DeletePhysicalFiles the object should go: %v %v", ok, err)
	}
	if err := gone.Bucket.PutObject(gone.Key, strings.NewReader("x")); ossCode(err) != "InvalidAccessKeyId" {
		t.Errorf("the upload credentials of a deleted asset: %v, want InvalidAccessKeyId", err)
	}
	many := strings.TrimSuffix(strings.Repeat("x,", 21), ",")
	for _, tt := range []struct {
		params map[string]string
		code   string
	}{
		{map[string]string{"MediaIds": many}, "InvalidParameter"},
		{map[string]string{}, "MissingParameter"},
		{map[string]string{"MediaIds": keep.MediaID, "DeletePhysicalFiles": "maybe"}, "InvalidParameter"},
	} {
		if _, err := call(c, "DeleteMediaInfos", tt.params); func() string { c, _ := errCode(err); return c }() != tt.code {
			t.Errorf("DeleteMediaInfos %v: %v, want %s", tt.params, err, tt.code)
		}
	}
}

// TestListMediaBasicInfosFindsAssetsByTimeAndPage is the call a client uses to find assets it
// created but never recorded (a crash between CreateUploadMedia and its own commit).
func TestListMediaBasicInfosFindsAssetsByTimeAndPage(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	before := time.Now().UTC().Add(-2 * time.Second).Format("2006-01-02T15:04:05Z")
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, ticket(t, s, map[string]string{
			"FileInfo": video["FileInfo"], "MediaMetaData": video["MediaMetaData"],
			"UserData": `{"Extend":{"imsfs":"` + string(rune('a'+i)) + `"}}`,
		}).MediaID)
	}
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		q := map[string]string{"StartTime": before, "MaxResults": "2", "SortBy": "asc", "IncludeFileBasicInfo": "true"}
		if token != "" {
			q["NextToken"] = token
		}
		body, err := call(c, "ListMediaBasicInfos", q)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := body["TotalCount"].(json.Number); n != "5" && body["TotalCount"] != float64(5) {
			t.Fatalf("TotalCount %v, want 5", body["TotalCount"])
		}
		for _, m := range body["MediaInfos"].([]any) {
			info := m.(map[string]any)
			b := info["MediaBasicInfo"].(map[string]any)
			if !strings.Contains(b["UserData"].(string), `"imsfs"`) {
				t.Errorf("UserData %q lost its Extend", b["UserData"])
			}
			seen[info["MediaId"].(string)] = true
		}
		token, _ = body["NextToken"].(string)
		if token == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("asset %s was not listed", id)
		}
	}
	body, err := call(c, "ListMediaBasicInfos", map[string]string{"StartTime": time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05Z")})
	if err != nil || len(body["MediaInfos"].([]any)) != 0 {
		t.Errorf("a StartTime in the future lists %v (%v)", body["MediaInfos"], err)
	}
	for _, q := range []map[string]string{{"MaxResults": "101"}, {"StartTime": "yesterday"}, {"SortBy": "size"}, {"NextToken": "!!"}} {
		if _, err := call(c, "ListMediaBasicInfos", q); func() string { c, _ := errCode(err); return c }() != "InvalidParameter" {
			t.Errorf("ListMediaBasicInfos %v: %v, want InvalidParameter", q, err)
		}
	}
}

// TestMessageCallbackPostsTheUploadEvent checks that a MessageCallback URL in UserData gets
// the FileUploadComplete event once the asset is complete.
func TestMessageCallbackPostsTheUploadEvent(t *testing.T) {
	events := make(chan map[string]any, 4)
	cb := newCallbackServer(t, events)
	s := startEmulator(t, emulator.Options{})
	u := ticket(t, s, map[string]string{
		"FileInfo": video["FileInfo"], "MediaMetaData": video["MediaMetaData"],
		"UserData": `{"MessageCallback":{"CallbackURL":"` + cb + `"},"Extend":{"k":"v"}}`,
	})
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		body, _ := ev["MessageBody"].(map[string]any)
		if ev["EventType"] != "FileUploadComplete" || body["MediaId"] != u.MediaID || body["Status"] != "Success" || body["Size"] != "5" {
			t.Fatalf("event %v, want FileUploadComplete for %s, Success, Size 5", ev, u.MediaID)
		}
		if _, err := time.Parse("2006-01-02T15:04:05Z", ev["EventTime"].(string)); err != nil {
			t.Errorf("EventTime: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback within 10 s")
	}
}

// TestBatchGetMediaInfosListsWhatItDoesNotKnow: an id of no asset (deleted, or never made) is
// answered in IgnoredList; the others are described.
func TestBatchGetMediaInfosListsWhatItDoesNotKnow(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	c := client(t, s, "", nil)
	u := ticket(t, s, nil)
	body, err := call(c, "BatchGetMediaInfos", map[string]string{"MediaIds": u.MediaID + ",gone"})
	if err != nil {
		t.Fatal(err)
	}
	infos, _ := body["MediaInfos"].([]any)
	ignored, _ := body["IgnoredList"].([]any)
	if len(infos) != 1 || len(ignored) != 1 || ignored[0] != "gone" {
		t.Errorf("answer %v: want one asset described and gone ignored", body)
	}
}
