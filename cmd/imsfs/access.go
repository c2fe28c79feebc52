package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/imsfs/imsfs/cmd/imsfs/config"
	"github.com/imsfs/imsfs/uploader/ims"
)

// Reaching IMS: the endpoint, the credentials, and the one call that checks them before the
// mount serves anyone.

// resolveEndpoint returns the IMS endpoint to call: --endpoint as given (a bare host, as the
// documentation writes endpoints, is taken over HTTPS), or the region's.
func resolveEndpoint(endpoint, region string) (string, error) {
	if endpoint == "" {
		if !slices.Contains(config.UploadRegions(), region) {
			return "", fmt.Errorf("--region %s: CreateUploadMedia is available only in cn-shanghai, cn-beijing and cn-shenzhen; use one of them, or give an --endpoint", region)
		}
		return ims.DefaultEndpoint(region), nil
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	return endpoint, nil
}

// checkAccess makes one cheap signed call before the mount serves anyone, so that a missing or
// refused key is said at start, once, rather than by every file. An endpoint that does not
// answer is no reason to refuse: files wait in the queue until it does.
func checkAccess(ctx context.Context, client *ims.Client, cred credentials.Credential, endpoint string, log *slog.Logger) error {
	m, err := cred.GetCredential()
	if err != nil || m == nil || m.AccessKeyId == nil || *m.AccessKeyId == "" {
		return errors.New("no Alibaba Cloud credentials: " + credentialsHelp())
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err = client.ListMediaBasicInfos(cctx, ims.ListRequest{MaxResults: 1})
	var api *ims.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &api) && !api.Temporary():
		return fmt.Errorf("IMS at %s %s", endpoint, keyRefused(*m.AccessKeyId, api))
	}
	log.Warn("IMS does not answer; mounting anyway: files wait in the queue until it does", "endpoint", endpoint, "err", err)
	return nil
}

// credentialsHelp says, in its own words, where the credential chain looked and found none, and
// what to do. (The chain's own error is a paragraph of its providers' messages, typos included.)
func credentialsHelp() string {
	home, _ := os.UserHomeDir()
	looked := []string{"the environment (no ALIBABA_CLOUD_ACCESS_KEY_ID)"}
	cli := filepath.Join(home, ".aliyun", "config.json")
	switch data, err := os.ReadFile(cli); {
	case err != nil:
		looked = append(looked, "~/.aliyun/config.json (none)")
	default:
		var cfg struct {
			Profiles []struct{ Name string } `json:"profiles"`
		}
		name := cliProfileName()
		found := json.Unmarshal(data, &cfg) == nil && slices.ContainsFunc(cfg.Profiles, func(p struct{ Name string }) bool { return p.Name == name })
		if found {
			looked = append(looked, "~/.aliyun/config.json (its profile "+name+" gives no usable key)")
		} else {
			looked = append(looked, "~/.aliyun/config.json (no profile "+name+" in it)")
		}
	}
	creds := os.Getenv("ALIBABA_CLOUD_CREDENTIALS_FILE")
	if creds == "" {
		creds = filepath.Join(home, ".alibabacloud", "credentials")
	}
	if _, err := os.Stat(creds); err != nil {
		looked = append(looked, creds+" (none)")
	} else {
		looked = append(looked, creds+" (no usable key in it)")
	}
	if os.Getenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED") != "true" {
		looked = append(looked, "an ECS instance role (none answered)")
	}
	return "looked in " + strings.Join(looked, ", ") + ". Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, " +
		"or a profile in ~/.aliyun/config.json (ALIBABA_CLOUD_PROFILE names which), or mount with --emulator to try imsfs without an account"
}

// keyRefused says that IMS refused the key, with its answer and what to check.
func keyRefused(keyID string, api *ims.APIError) string {
	return fmt.Sprintf("refused the AccessKey %s: %s: %s (HTTP %d). Check the key pair (a typo, a disabled or deleted key), "+
		"that the account has IMS in this region, and that the key's RAM policy allows the ice: actions the README lists",
		maskKey(keyID), api.Code, api.Message, api.StatusCode)
}

// maskKey shows enough of an AccessKeyId to tell which it is.
func maskKey(id string) string {
	if len(id) <= 6 {
		return id
	}
	return id[:6] + "…"
}

func ptr[T any](v T) *T { return &v }

// configID names what uploads depend on, so that a mount started with other settings tries
// failed uploads again. The secret is hashed, never stored.
func configID(endpoint, region string, cred credentials.Credential) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", endpoint, region)
	if m, err := cred.GetCredential(); err == nil && m != nil {
		fmt.Fprintf(h, "%s\n%s\n", ptrValue(m.AccessKeyId), ptrValue(m.AccessKeySecret))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func ptrValue(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
