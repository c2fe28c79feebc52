package uploader

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/imsfs/imsfs/cache"
)

// uploadAddress is the JSON inside CreateUploadMedia's base64 UploadAddress.
type uploadAddress struct {
	Endpoint string `json:"Endpoint"`
	Bucket   string `json:"Bucket"`
	FileName string `json:"FileName"` // the object key
}

// uploadAuth is the JSON inside the base64 UploadAuth: STS credentials, every value a string.
type uploadAuth struct {
	AccessKeyID     string `json:"AccessKeyId"`
	AccessKeySecret string `json:"AccessKeySecret"`
	SecurityToken   string `json:"SecurityToken"`
	Expiration      string `json:"Expiration"`    // seconds of validity, e.g. "3000"
	ExpireUTCTime   string `json:"ExpireUTCTime"` // e.g. "2024-01-01T01:00:00Z"
	Region          string `json:"Region"`
}

// DecodeTicket decodes UploadAddress and UploadAuth into where and how to upload. now is when
// the ticket was received; it dates the credentials when the answer gives only a duration.
func DecodeTicket(addressB64, authB64 string, now time.Time) (cache.Upload, error) {
	var addr uploadAddress
	if err := decodeB64JSON(addressB64, &addr); err != nil {
		return cache.Upload{}, fmt.Errorf("UploadAddress: %w", err)
	}
	var auth uploadAuth
	if err := decodeB64JSON(authB64, &auth); err != nil {
		return cache.Upload{}, fmt.Errorf("UploadAuth: %w", err)
	}
	if addr.Endpoint == "" || addr.Bucket == "" || addr.FileName == "" {
		return cache.Upload{}, fmt.Errorf("UploadAddress lacks Endpoint, Bucket or FileName: %+v", addr)
	}
	if auth.AccessKeyID == "" || auth.AccessKeySecret == "" {
		return cache.Upload{}, fmt.Errorf("UploadAuth lacks AccessKeyId or AccessKeySecret")
	}
	endpoint := addr.Endpoint
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u := cache.Upload{
		Endpoint: endpoint, Bucket: addr.Bucket, Key: addr.FileName,
		AccessKeyID: auth.AccessKeyID, AccessKeySecret: auth.AccessKeySecret, SecurityToken: auth.SecurityToken,
	}
	if t, err := time.Parse(time.RFC3339, auth.ExpireUTCTime); err == nil {
		u.Expires = t
	} else if secs, err := strconv.Atoi(auth.Expiration); err == nil && secs > 0 {
		u.Expires = now.Add(time.Duration(secs) * time.Second)
	}
	return u, nil
}

func decodeB64JSON(s string, v any) error {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some answers drop the padding; accept them too.
		var err2 error
		if raw, err2 = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err2 != nil {
			return fmt.Errorf("not base64: %w", err)
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return nil
}
