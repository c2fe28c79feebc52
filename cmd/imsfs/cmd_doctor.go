package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aliyun/credentials-go/credentials"
	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/imsfs/imsfs/fs"
	"github.com/imsfs/imsfs/uploader/ims"
)

func newDoctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check what a mount needs: FUSE, credentials, the endpoint and the key, the clock, the cache directory",
		Description: "Each line is ok, or FIX with what to do. It exits 0 when every line is ok, 1 otherwise.\n" +
			"It makes one signed call to IMS (ListMediaBasicInfos, one result), as a mount does at start.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "endpoint", Usage: "IMS API `HOST` or URL, as for mount (default: the region's)"},
			&cli.StringFlag{Name: "region", Value: "cn-shanghai", Usage: "IMS region, as for mount"},
			&cli.StringFlag{Name: "cache-dir", Usage: "`DIR` the mount would use (default: $XDG_CACHE_HOME/imsfs)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("imsfs doctor takes no arguments (see: imsfs doctor --help)")
			}
			d := &doctor{w: c.App.Writer}
			d.fuse()
			d.cacheDir(c.String("cache-dir"))
			d.service(c.Context, c.String("endpoint"), c.String("region"))
			if d.problems > 0 {
				return fmt.Errorf("doctor: %d of %d checks want a fix%s", d.problems, d.checks, d.notChecked())
			}
			return nil
		},
	}
}

// doctor prints one line per check: always the same checks, in the same order, so that its
// count is the same from run to run. A check an earlier one made impossible is printed as not
// checked, with why.
type doctor struct {
	w                         io.Writer
	checks, problems, skipped int
}

// line prints one check's line: one line, whatever the text holds.
func (d *doctor) line(mark, format string, args ...any) {
	d.checks++
	text := strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")
	fmt.Fprintf(d.w, "%-4s %s\n", mark, text)
}

func (d *doctor) ok(format string, args ...any) { d.line("ok", format, args...) }

func (d *doctor) fix(format string, args ...any) {
	d.problems++
	d.line("FIX", format, args...)
}

func (d *doctor) skip(format string, args ...any) {
	d.skipped++
	d.line("--", format, args...)
}

func (d *doctor) notChecked() string {
	if d.skipped == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d not checked)", d.skipped)
}

// fuse checks /dev/fuse, the mount helper, and FUSE passthrough.
func (d *doctor) fuse() {
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		d.fix("/dev/fuse: %v; load the module (modprobe fuse) or, in a container, pass the device (--device /dev/fuse)", err)
	} else {
		f.Close()
		d.ok("/dev/fuse opens")
	}
	root := os.Geteuid() == 0
	_, helperErr := exec.LookPath("fusermount3")
	switch {
	case root && helperErr != nil:
		d.ok("mount: as root the kernel mount needs no helper (fusermount3 is not installed; unmount with umount)")
	case root:
		d.ok("mount: as root the kernel mount needs no helper; fusermount3 is there too")
	case helperErr != nil:
		d.fix("fusermount3 is not installed: a mount by a user other than root needs it (apt-get install fuse3)")
	default:
		d.ok("fusermount3 is installed: mounts as this user go through it")
	}
	release, offered := fs.KernelOffersPassthrough()
	switch {
	case !offered:
		d.ok("passthrough: Linux %s has none (6.9 and later): writes go through imsfs, slower for large files", release)
	case !root:
		d.ok("passthrough: Linux %s has it, but only a mount as root may use it: writes go through imsfs", release)
	default:
		d.ok("passthrough: Linux %s, as root: new files are written straight to the cache", release)
	}
}

// cacheDir checks the cache directory, or the folder it would be made in.
func (d *doctor) cacheDir(dir string) {
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			d.fix("cache dir: no --cache-dir and no user cache dir (%v); give --cache-dir", err)
			return
		}
		dir = filepath.Join(base, "imsfs")
	}
	dir, _ = filepath.Abs(dir)
	where, made := dir, true
	st, err := os.Stat(dir)
	for errors.Is(err, os.ErrNotExist) && where != "/" {
		where, made = filepath.Dir(where), false
		st, err = os.Stat(where)
	}
	if err != nil {
		d.fix("cache dir %s: %v", dir, err)
		return
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(where, &fs); err != nil {
		d.fix("cache dir %s: statfs: %v", dir, err)
		return
	}
	free := fs.Bavail * uint64(fs.Bsize)
	kind, local := fsName(int64(fs.Type))
	what := fmt.Sprintf("%s free on %s", humanize.IBytes(free), kind)
	switch {
	case !local:
		d.fix("cache dir %s: on %s: it holds every saved file until it is uploaded; put it on a local disk", dir, kind)
	case free < 1<<30:
		d.fix("cache dir %s: %s: under 1 GiB; saving fails with ENOSPC when it is full; free space or choose another --cache-dir", dir, what)
	case !made:
		d.ok("cache dir %s: not made yet (the mount makes it, mode 0700); %s", dir, what)
	case st.Mode().Perm() != 0o700:
		d.ok("cache dir %s: mode %#o, the mount sets 0700; %s", dir, st.Mode().Perm(), what)
	default:
		d.ok("cache dir %s: mode 0700, %s", dir, what)
	}
}

// service checks the credentials, one signed call to the endpoint, and the clock against the
// endpoint's: three lines, whatever happens.
func (d *doctor) service(ctx context.Context, endpoint, region string) {
	endpoint, endpointErr := resolveEndpoint(endpoint, region)
	cred, err := credentials.NewCredential(nil)
	var m *credentials.CredentialModel
	if err == nil {
		m, err = cred.GetCredential()
	}
	haveKey := err == nil && m != nil && m.AccessKeyId != nil && *m.AccessKeyId != ""
	if haveKey {
		d.ok("credentials from %s (AccessKeyId %s): %s", deref(m.ProviderName), maskKey(*m.AccessKeyId), credentialKind(deref(m.ProviderName), m.SecurityToken != nil && *m.SecurityToken != ""))
	} else {
		d.fix("credentials: none found: %s", credentialsHelp())
	}

	var client *ims.Client
	switch {
	case endpointErr != nil:
		d.fix("IMS: %v", endpointErr)
	case !haveKey:
		d.skip("IMS at %s (region %s): not asked: no credentials to sign with", endpoint, region)
	default:
		if client, err = ims.New(endpoint, region, cred); err != nil {
			d.fix("IMS at %s: %v", endpoint, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	answered := false
	if client != nil {
		start := time.Now()
		// The call library/ lists with (IncludeFileBasicInfo), for one asset.
		_, err = client.ListMediaBasicInfos(cctx, ims.ListRequest{MaxResults: 1, Files: true})
		took := time.Since(start).Round(time.Millisecond)
		var api *ims.APIError
		switch {
		case err == nil:
			answered = true
			d.ok("IMS at %s (region %s) answered a signed call (ListMediaBasicInfos) in %v: the key is accepted, and library/ can list the assets", endpoint, region, took)
		case errors.As(err, &api) && !api.Temporary():
			answered = true
			d.fix("IMS at %s %s", endpoint, keyRefused(*m.AccessKeyId, api))
		default:
			d.fix("IMS at %s does not answer (%v): check the network, a proxy (HTTPS_PROXY), the endpoint", endpoint, err)
		}
	}
	if !answered {
		d.skip("clock: not compared: IMS did not answer")
		return
	}
	d.clock(cctx, endpoint)
}

// clock compares this machine's clock with the Date the endpoint answers with: signatures are
// refused past 15 minutes of skew.
func (d *doctor) clock(ctx context.Context, endpoint string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, endpoint, nil)
	if err != nil {
		d.fix("clock: %v", err)
		return
	}
	before := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.fix("clock: %v", err)
		return
	}
	resp.Body.Close()
	server, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		d.ok("clock: the endpoint sends no Date to compare with")
		return
	}
	skew := before.Add(time.Since(before) / 2).Sub(server)
	if skew < 0 {
		skew = -skew
	}
	if skew > 5*time.Minute {
		d.fix("clock: %v off the server's; signed calls are refused past 15 minutes: set the time (timedatectl set-ntp true)", skew.Round(time.Second))
		return
	}
	d.ok("clock: within %v of the server's", max(skew.Round(time.Second), time.Second))
}

func deref(s *string) string {
	if s == nil || *s == "" {
		return "?"
	}
	return *s
}

// fsName names a file system by its statfs magic, and says whether it is a local disk.
func fsName(magic int64) (string, bool) {
	switch magic {
	case 0xEF53:
		return "ext4", true
	case 0x58465342:
		return "xfs", true
	case 0x9123683E:
		return "btrfs", true
	case 0x2FC12FC1:
		return "zfs", true
	case 0x01021994:
		return "tmpfs (memory: lost at a reboot)", true
	case 0x794C7630:
		return "overlayfs", true
	case 0x6969:
		return "NFS", false
	case 0xFF534D42, 0xFE534D42:
		return "SMB", false
	case 0x65735546:
		return "FUSE", false
	}
	return fmt.Sprintf("a file system of type %#x", magic), true
}

// credentialKind says in words where the credential chain found credentials, from the name of
// the provider that gave them (credentials-go's "default/env", "cli_profile/static_ak"…).
func credentialKind(provider string, temporary bool) string {
	key := "a long-term AccessKey"
	if temporary {
		key = "a temporary STS key"
	}
	parts := strings.Split(provider, "/")
	if len(parts) > 0 && parts[0] == "default" {
		parts = parts[1:]
	}
	if len(parts) == 0 {
		return key
	}
	switch parts[0] {
	case "env":
		return key + " from the environment (ALIBABA_CLOUD_ACCESS_KEY_ID, _SECRET" + map[bool]string{true: ", _SECURITY_TOKEN)", false: ")"}[temporary]
	case "cli_profile":
		where := "the Alibaba Cloud CLI's profile " + cliProfileName() + " in ~/.aliyun/config.json"
		if len(parts) > 1 {
			switch parts[1] {
			case "ram_role_arn":
				return "a RAM role assumed (STS AssumeRole) with " + where
			case "ecs_ram_role":
				return "the ECS instance role named by " + where
			case "oidc_role_arn":
				return "an OIDC role (RRSA) named by " + where
			}
		}
		return key + " from " + where
	case "profile":
		return key + " from ~/.alibabacloud/credentials (ALIBABA_CLOUD_CREDENTIALS_FILE)"
	case "ecs_ram_role":
		return "the ECS instance's RAM role, from the instance metadata service"
	case "oidc_role_arn":
		return "an OIDC role (RRSA: ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)"
	case "credential_uri", "credentials_uri":
		return key + " from ALIBABA_CLOUD_CREDENTIALS_URI"
	case "ram_role_arn":
		return "a RAM role assumed (STS AssumeRole)"
	}
	return key
}

// cliProfileName is the profile of ~/.aliyun/config.json the chain reads: ALIBABA_CLOUD_PROFILE,
// or the file's current one.
func cliProfileName() string {
	if p := os.Getenv("ALIBABA_CLOUD_PROFILE"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	data, err := os.ReadFile(filepath.Join(home, ".aliyun", "config.json"))
	var cfg struct {
		Current string `json:"current"`
	}
	if err != nil || json.Unmarshal(data, &cfg) != nil || cfg.Current == "" {
		return "default"
	}
	return cfg.Current
}
