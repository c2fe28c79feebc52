package ims

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestDecodeTicket(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	addr := b64(`{"Endpoint":"https://oss-cn-shanghai.aliyuncs.com","Bucket":"outin-abc","FileName":"sv/40360f05-181f63c3110.mp4"}`)
	auth := b64(`{"SecurityToken":"CAIS123","AccessKeyId":"STS.NT1","ExpireUTCTime":"2026-11-27T00:50:00Z","AccessKeySecret":"sec","Expiration":"3000","Region":"cn-shanghai"}`)

	tests := []struct {
		name       string
		addr, auth string
		wantErr    string
		endpoint   string
		expires    time.Time
	}{
		{"as IMS answers", addr, auth, "", "https://oss-cn-shanghai.aliyuncs.com", time.Date(2026, 11, 27, 0, 50, 0, 0, time.UTC)},
		{"duration only", addr, b64(`{"AccessKeyId":"STS.NT1","AccessKeySecret":"sec","SecurityToken":"t","Expiration":"3600"}`), "",
			"https://oss-cn-shanghai.aliyuncs.com", now.Add(time.Hour)},
		{"endpoint without scheme", b64(`{"Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"b","FileName":"k"}`), auth, "",
			"https://oss-cn-shanghai.aliyuncs.com", time.Date(2026, 11, 27, 0, 50, 0, 0, time.UTC)},
		{"unpadded base64", strings.TrimRight(addr, "="), auth, "", "https://oss-cn-shanghai.aliyuncs.com", time.Date(2026, 11, 27, 0, 50, 0, 0, time.UTC)},
		{"not base64", "%%%", auth, "UploadAddress of m1: not base64", "", time.Time{}},
		{"not JSON", b64("nope"), auth, "UploadAddress of m1: not JSON", "", time.Time{}},
		{"no bucket", b64(`{"Endpoint":"e","FileName":"k"}`), auth, "lacks Endpoint, Bucket or FileName", "", time.Time{}},
		{"no key", addr, b64(`{"SecurityToken":"t"}`), "lacks AccessKeyId", "", time.Time{}},
		{"no secret quoted", addr, b64(`{"AccessKeyId":"STS.NT1","AccessKeySecret":"sec",`), "UploadAuth of m1: not JSON", "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, auth, err := (&Ticket{MediaID: "m1", UploadAddress: tt.addr, UploadAuth: tt.auth}).Decode(now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if up.Endpoint != tt.endpoint || up.Bucket == "" || up.Key == "" || auth.AccessKeyID != "STS.NT1" || auth.AccessKeySecret != "sec" {
				t.Fatalf("decoded %+v", up)
			}
			if !auth.Expires.Equal(tt.expires) {
				t.Fatalf("expires %v, want %v", auth.Expires, tt.expires)
			}
		})
	}
}
