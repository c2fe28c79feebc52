package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAConfigFileMakesFoldersAndFlagsWin: a configuration file adds a folder with its type,
// business type and what its assets get (category, tags, AppId, EntityId, a workflow, a storage
// location, a message callback), adds tags to a default folder, and sets policies; a flag on
// the command line wins over the file; without --config the file in the user's configuration
// directory is read; a file with a mistake stops the mount before it starts, with the file, the
// line and the reason.
func TestAConfigFileMakesFoldersAndFlagsWin(t *testing.T) {
	emu := startEmulator(t)
	conf := filepath.Join(t.TempDir(), "imsfs.yaml")
	os.WriteFile(conf, []byte(`# as a user writes it
upload-delay: 1h        # the harness's --upload-delay 0 wins
on-delete: delete
folders:
  video/promo:
    type: video
    business-type: opening
    cate-id: 7
    tags: [promo, launch]
    app-id: app-2000000
    entity-id: campaign-9
    workflow: 0123456789abcdef0123456789abcdef
    storage-location: outin-0123456789.oss-cn-shanghai.aliyuncs.com
    callback-url: https://example.com/ims-events
  image/cover:
    tags: [cover]
`), 0o644)
	m := startMount(t, emu, "", "--config", conf)
	if !strings.Contains(m.output(), "configuration read") {
		t.Errorf("the mount does not say it read %s:\n%s", conf, m.output())
	}
	promo := filepath.Join(m.Dir, "video", "promo")
	if st, err := os.Stat(promo); err != nil || !st.IsDir() {
		t.Fatalf("the configured folder video/promo: %v", err)
	}
	a := filepath.Join(promo, "a.mp4")
	b := filepath.Join(m.Dir, "image", "cover", "b.png")
	os.WriteFile(a, randomBytes(t, 50<<10), 0o644)
	os.WriteFile(b, randomBytes(t, 20<<10), 0o644)
	run(t, "setfattr", "-n", "user.ims.tags", "-v", "own", b) // the file's own tags win over the folder's
	// Ready in well under the file's upload-delay of an hour: the flag won.
	waitStatus(t, a, "ready", 60*time.Second)
	waitStatus(t, b, "ready", 60*time.Second)
	got, _ := emu.asset(t, mediaIDOf(t, a))
	if got.Type != "video" || got.BusinessType != "opening" || got.CateId != 7 || got.Tags != "promo,launch" ||
		got.AppId != "app-2000000" || got.EntityId != "campaign-9" || got.Workflow != "0123456789abcdef0123456789abcdef" ||
		got.Storage != "outin-0123456789.oss-cn-shanghai.aliyuncs.com" || !strings.Contains(got.UserData, `"CallbackURL":"https://example.com/ims-events"`) {
		t.Errorf("the asset of video/promo/a.mp4 is %+v", got)
	}
	if got, _ := emu.asset(t, mediaIDOf(t, b)); got.BusinessType != "cover" || got.Tags != "own" || got.AppId != "app-1000000" {
		t.Errorf("the asset of image/cover/b.png is %+v", got)
	}
	// on-delete: delete, from the file.
	id := mediaIDOf(t, a)
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, ok := emu.asset(t, id); ok; _, ok = emu.asset(t, id) {
		if time.Now().After(deadline) {
			t.Fatal("on-delete: delete from the file was not followed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Without --config, the user's configuration directory has the file.
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "imsfs"), 0o700)
	os.WriteFile(filepath.Join(home, "imsfs", "config.yaml"), []byte("folders:\n  audio/podcast:\n    tags: [podcast]\n"), 0o600)
	m2 := startMountEnv(t, emu, "", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + accountSecret, "XDG_CONFIG_HOME=" + home})
	if st, err := os.Stat(filepath.Join(m2.Dir, "audio", "podcast")); err != nil || !st.IsDir() {
		t.Errorf("the default configuration file's folder audio/podcast: %v", err)
	}

	// A mistake stops the mount before it mounts: exit status 2, the file, the line, the reason.
	os.WriteFile(conf, []byte("transfers: 4\nfolders:\n  video/promo:\n    business-type: cover\n"), 0o644)
	mnt := t.TempDir()
	cmd := exec.Command(imsfsBin, "mount", "--config", conf, "--endpoint", emu.URL, "--cache-dir", t.TempDir(), mnt)
	cmd.Env = append(testEnv(), "ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET="+accountSecret)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), conf+`:4: folder video/promo: business-type "cover" is not one IMS takes for type video`) {
		t.Errorf("a mount with a wrong file: exit %d (%v):\n%s", code, err, out)
	}
	if isMounted(mnt) {
		t.Error("it mounted anyway")
	}
}
