package ims

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Address is where an asset's bytes go: the decoded UploadAddress.
type Address struct {
	Endpoint string // with its scheme: https:// when IMS gave none
	Bucket   string
	Key      string // the object key (FileName)
}

// Auth is the decoded UploadAuth: short-lived STS credentials for the one object. They are
// secrets: never log them, never keep them on disk.
type Auth struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	Expires         time.Time // zero when the answer gives neither a time nor a duration
	Region          string    // the OSS region, which V4 signatures name
}

// uploadAddress is the JSON inside CreateUploadMedia's base64 UploadAddress.
type uploadAddress struct {
	Endpoint string `json:"Endpoint"`
	Bucket   string `json:"Bucket"`
	FileName string `json:"FileName"`
}

// uploadAuth is the JSON inside the base64 UploadAuth: every value a string.
type uploadAuth struct {
	AccessKeyID     string `json:"AccessKeyId"`
	AccessKeySecret string `json:"AccessKeySecret"`
	SecurityToken   string `json:"SecurityToken"`
	Expiration      string `json:"Expiration"`    // seconds of validity, e.g. "3000"
	ExpireUTCTime   string `json:"ExpireUTCTime"` // e.g. "2024-01-01T01:00:00Z"
	Region          string `json:"Region"`
}

// Decode decodes UploadAddress and UploadAuth. now is when the ticket was received; it dates
// the credentials when the answer gives only a duration. Errors never quote the credentials.
func (t *Ticket) Decode(now time.Time) (Address, Auth, error) {
	var addr uploadAddress
	if err := decodeB64JSON(t.UploadAddress, &addr); err != nil {
		return Address{}, Auth{}, fmt.Errorf("UploadAddress of %s: %w", t.MediaID, err)
	}
	var auth uploadAuth
	if err := decodeB64JSON(t.UploadAuth, &auth); err != nil {
		return Address{}, Auth{}, fmt.Errorf("UploadAuth of %s: %w", t.MediaID, err)
	}
	if addr.Endpoint == "" || addr.Bucket == "" || addr.FileName == "" {
		return Address{}, Auth{}, fmt.Errorf("UploadAddress of %s lacks Endpoint, Bucket or FileName: %+v", t.MediaID, addr)
	}
	if auth.AccessKeyID == "" || auth.AccessKeySecret == "" {
		return Address{}, Auth{}, fmt.Errorf("UploadAuth of %s lacks AccessKeyId or AccessKeySecret", t.MediaID)
	}
	endpoint := addr.Endpoint
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	a := Auth{AccessKeyID: auth.AccessKeyID, AccessKeySecret: auth.AccessKeySecret, SecurityToken: auth.SecurityToken, Region: auth.Region}
	if exp, err := time.Parse(time.RFC3339, auth.ExpireUTCTime); err == nil {
		a.Expires = exp
	} else if secs, err := strconv.Atoi(auth.Expiration); err == nil && secs > 0 {
		a.Expires = now.Add(time.Duration(secs) * time.Second)
	}
	return Address{Endpoint: endpoint, Bucket: addr.Bucket, Key: addr.FileName}, a, nil
}

// decodeB64JSON decodes base64 JSON; its errors say what was wrong, not what was there.
func decodeB64JSON(s string, v any) error {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some answers drop the padding; accept them too.
		var err2 error
		if raw, err2 = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err2 != nil {
			return fmt.Errorf("not base64")
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("not JSON")
	}
	return nil
}
