package test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imsfs/imsfs/test/testutil"
)

// These tests run real tools and editors against the mount, and replays of the save sequences
// of programs that cannot run here. Each ends with the same check: the files read back as
// expected, and the emulator holds exactly one asset per final file, with its bytes; with
// --on-overwrite delete --on-delete delete, nothing else (no temporary name became an asset,
// and voided or replaced assets were cleaned up).

// toolMount is a mount whose policies delete replaced and deleted assets, so that the emulator
// must end up holding exactly the final files.
func toolMount(t *testing.T, args ...string) (*emulatorProc, *mountProc) {
	t.Helper()
	emu := startEmulator(t)
	m := startMount(t, emu, "", append([]string{"--on-overwrite", "delete", "--on-delete", "delete"}, args...)...)
	return emu, m
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testutil.SkipOutsideCI(t, name+" is not installed (make test and .ci/run install it when run as root)")
	}
}

// sh runs a shell command line in dir, failing the test with its output if it fails.
func sh(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-ec", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// uploadable lists the files under root (relative to the mount) whose names become assets.
func uploadable(t *testing.T, m *mountProc, under string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(m.Dir, under), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".ims.json") {
			return err
		}
		if s, _ := xattr(p, "user.ims.status"); s != "skipped" && s != "local" {
			rel, _ := filepath.Rel(m.Dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// settled waits until every file in want (mount-relative path → expected bytes) is ready with
// an asset holding those bytes (an empty one skipped, with none), and until the emulator holds no
// other asset than theirs.
func settled(t *testing.T, emu *emulatorProc, m *mountProc, want map[string][]byte) {
	t.Helper()
	ids := map[string]string{}
	for p, data := range want {
		full := filepath.Join(m.Dir, p)
		got, err := os.ReadFile(full)
		if err != nil {
			t.Fatalf("read back %s: %v", p, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s reads back %d bytes that differ from the %d expected", p, len(got), len(data))
		}
		if len(data) == 0 {
			// An empty file is kept, and no asset is made for it.
			waitStatus(t, full, "skipped", 60*time.Second)
			if id, _ := xattr(full, "user.ims.media_id"); id != "" {
				t.Fatalf("%s is empty and has asset %s", p, id)
			}
			continue
		}
		waitStatus(t, full, "ready", 60*time.Second)
		id, _ := xattr(full, "user.ims.media_id")
		ids[id] = p
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var extra []string
		held := map[string]bool{}
		for _, a := range emu.assets(t) {
			p, ok := ids[a.MediaId]
			if !ok {
				extra = append(extra, fmt.Sprintf("%s %q (%s)", a.MediaId, a.Title, a.Status))
				continue
			}
			held[a.MediaId] = true
			if sum := md5Bytes(want[p]); a.MD5 != sum || a.Status != "Normal" {
				t.Fatalf("%s: asset %+v, want Normal with MD5 %s", p, a, sum)
			}
		}
		if len(extra) == 0 && len(held) == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator holds %d of the %d final files' assets, and these others: %v", len(held), len(ids), extra)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// creates says how many assets the mount asked for: a temporary name that was uploaded, even
// if its asset was cleaned up later, shows here.
func creates(t *testing.T, emu *emulatorProc) int64 {
	t.Helper()
	return emu.stats(t).Requests["ims.create"]
}

func md5Bytes(b []byte) string {
	p := filepath.Join(os.TempDir(), fmt.Sprintf("imsfs-md5-%d", time.Now().UnixNano()))
	os.WriteFile(p, b, 0o600)
	defer os.Remove(p)
	return md5FileNoT(p)
}

// readTree reads every file under dir (a local directory) as mount-relative paths under prefix.
func readTree(t *testing.T, dir, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		out[filepath.Join(prefix, rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sourceTree makes a small tree of media files of mixed sizes.
func sourceTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for i, size := range []int{0, 1, 4 << 10, 300 << 10, 9 << 20} {
		sub := filepath.Join(dir, []string{"", "a", "a/b", "c", ""}[i])
		os.MkdirAll(sub, 0o755)
		src := randomFile(t, fmt.Sprintf("f%d.mp4", i), size)
		data, _ := os.ReadFile(src)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("clip%d.mp4", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCopyTools(t *testing.T) {
	emu, m := toolMount(t)
	src := sourceTree(t)
	past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error { return os.Chtimes(p, past, past) })

	want := map[string][]byte{}
	run(t, "cp", "-r", src+"/.", filepath.Join(m.Dir, "video", "cp-r"))
	for k, v := range readTree(t, src, "video/cp-r") {
		want[k] = v
	}
	run(t, "cp", "-rp", src+"/.", filepath.Join(m.Dir, "video", "cp-p"))
	for k, v := range readTree(t, src, "video/cp-p") {
		want[k] = v
	}
	settled(t, emu, m, want)
	st, err := os.Stat(filepath.Join(m.Dir, "video", "cp-p", "a", "b", "clip2.mp4"))
	if err != nil || !st.ModTime().Equal(past) {
		t.Errorf("cp -p kept mtime %v (%v), want %v", st.ModTime(), err, past)
	}
}

func TestRsync(t *testing.T) {
	needTool(t, "rsync")
	emu, m := toolMount(t)
	src := sourceTree(t)
	dst := filepath.Join(m.Dir, "video", "rs")
	run(t, "rsync", "-a", src+"/", dst+"/")
	want := readTree(t, src, "video/rs")
	settled(t, emu, m, want)

	// A second run that changes one file: rsync writes .clip3.mp4.XXXXXX and renames it over.
	changed := filepath.Join(src, "c", "clip3.mp4")
	os.WriteFile(changed, bytes.Repeat([]byte("new"), 100000), 0o644)
	os.Chtimes(changed, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	run(t, "rsync", "-a", src+"/", dst+"/")
	want = readTree(t, src, "video/rs")
	settled(t, emu, m, want)

	// --inplace writes into the existing file.
	os.WriteFile(changed, bytes.Repeat([]byte("in place"), 50000), 0o644)
	os.Chtimes(changed, time.Now().Add(2*time.Hour), time.Now().Add(2*time.Hour))
	run(t, "rsync", "-a", "--inplace", src+"/", dst+"/")
	want = readTree(t, src, "video/rs")
	settled(t, emu, m, want)
	st, _ := os.Stat(filepath.Join(dst, "c", "clip3.mp4"))
	if sst, _ := os.Stat(changed); !st.ModTime().Equal(sst.ModTime()) {
		t.Errorf("rsync -a kept mtime %v, want %v", st.ModTime(), sst.ModTime())
	}
}

func TestArchiveTools(t *testing.T) {
	needTool(t, "tar")
	needTool(t, "unzip")
	emu, m := toolMount(t)
	src := sourceTree(t)
	archive := filepath.Join(t.TempDir(), "src.tar")
	run(t, "tar", "-cf", archive, "-C", src, ".")
	dst := filepath.Join(m.Dir, "video", "tar")
	os.Mkdir(dst, 0o755)
	run(t, "tar", "-xf", archive, "-C", dst)
	want := readTree(t, src, "video/tar")

	zipPath := filepath.Join(t.TempDir(), "src.zip")
	zf, _ := os.Create(zipPath)
	zw := zip.NewWriter(zf)
	for p, data := range readTree(t, src, "") {
		w, _ := zw.Create(p)
		w.Write(data)
	}
	zw.Close()
	zf.Close()
	run(t, "unzip", "-q", zipPath, "-d", filepath.Join(m.Dir, "video", "zip"))
	for k, v := range readTree(t, src, "video/zip") {
		want[k] = v
	}
	settled(t, emu, m, want)
}

func TestInPlaceEdits(t *testing.T) {
	needTool(t, "dd")
	needTool(t, "sed")
	emu, m := toolMount(t)
	want := map[string][]byte{}

	// dd with seek and conv=notrunc: random writes into an existing file.
	base := bytes.Repeat([]byte("-"), 3<<20)
	p := filepath.Join(m.Dir, "other", "disk.img")
	os.WriteFile(p, base, 0o644)
	waitStatus(t, p, "ready", 30*time.Second)
	patch := randomFile(t, "patch", 5000)
	run(t, "dd", "if="+patch, "of="+p, "bs=1000", "seek=2000", "conv=notrunc", "status=none")
	patchData, _ := os.ReadFile(patch)
	copy(base[2000*1000:], patchData)
	run(t, "dd", "if="+patch, "of="+p, "bs=1000", "seek=4000", "conv=notrunc", "status=none") // past the end: grows it
	base = append(append(base, make([]byte, 4000*1000-len(base))...), patchData...)           // a hole, then the patch
	want["other/disk.img"] = base

	// truncate up (a sparse tail of zeros) and down.
	q := filepath.Join(m.Dir, "other", "sized.bin")
	os.WriteFile(q, []byte("0123456789"), 0o644)
	run(t, "truncate", "-s", "100000", q)
	run(t, "truncate", "-s", "50000", q)
	want["other/sized.bin"] = append([]byte("0123456789"), make([]byte, 50000-10)...)

	// sed -i writes a temporary file beside it and renames it over.
	s := filepath.Join(m.Dir, "text", "subtitles", "clip.srt")
	os.WriteFile(s, []byte("1\n00:00:01,000 --> 00:00:02,000\nHello world\n"), 0o644)
	waitStatus(t, s, "ready", 30*time.Second)
	run(t, "sed", "-i", "s/world/there/", s)
	want["text/subtitles/clip.srt"] = []byte("1\n00:00:01,000 --> 00:00:02,000\nHello there\n")

	// O_APPEND from the shell.
	sh(t, m.Dir, "printf one > text/subtitles/log.srt; printf two >> text/subtitles/log.srt")
	want["text/subtitles/log.srt"] = []byte("onetwo")
	settled(t, emu, m, want)
}

// TestFFmpegWritesIntoTheMount: ffmpeg writes an MP4 and seeks back to finish its header; the
// asset must be the same file ffmpeg writes on local disk.
func TestFFmpegWritesIntoTheMount(t *testing.T) {
	needTool(t, "ffmpeg")
	emu, m := toolMount(t)
	args := func(out string) []string {
		return []string{"-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25",
			"-c:v", "mpeg4", "-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", "-y", out}
	}
	local := filepath.Join(t.TempDir(), "test.mp4")
	run(t, "ffmpeg", args(local)...)
	run(t, "ffmpeg", args(filepath.Join(m.Dir, "video", "test.mp4"))...)
	data, _ := os.ReadFile(local)
	settled(t, emu, m, map[string][]byte{"video/test.mp4": data})
}

// TestVimSaves: vim creates a swap file and, on :w of an existing file, renames it to name~,
// writes a new file and deletes the backup. Only the final file may be an asset.
func TestVimSaves(t *testing.T) {
	needTool(t, "vim")
	emu, m := toolMount(t)
	p := filepath.Join(m.Dir, "text", "subtitles", "edit.srt")
	vim := func(keys string) {
		t.Helper()
		cmd := exec.Command("vim", "-u", "NONE", "-i", "NONE", "-N", "-X", "-e", "-s", "-c", keys, "-c", "wq", p)
		cmd.Dir = m.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vim %s: %v\n%s", keys, err, out)
		}
	}
	vim("normal ifirst line")
	settled(t, emu, m, map[string][]byte{"text/subtitles/edit.srt": []byte("first line\n")})
	vim("normal Gosecond line")
	settled(t, emu, m, map[string][]byte{"text/subtitles/edit.srt": []byte("first line\nsecond line\n")})
	left := uploadable(t, m, "text")
	if len(left) != 1 {
		t.Errorf("after two vim saves the folder holds %v", left)
	}
	if n := creates(t, emu); n != 2 {
		t.Errorf("two vim saves made %d CreateUploadMedia calls, want 2: a swap or backup file was uploaded", n)
	}
}

// TestGIOSaves uses GIO's own replace (what gedit and GNOME apps call): it writes
// .goutputstream-XXXXXX beside the file and renames it over.
func TestGIOSaves(t *testing.T) {
	needTool(t, "gio")
	emu, m := toolMount(t)
	p := filepath.Join(m.Dir, "text", "subtitles", "gio.srt")
	for _, content := range []string{"one\n", "two two\n"} {
		cmd := exec.Command("gio", "save", p)
		cmd.Stdin = strings.NewReader(content)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gio save: %v\n%s", err, out)
		}
		settled(t, emu, m, map[string][]byte{"text/subtitles/gio.srt": []byte(content)})
	}
	if n := creates(t, emu); n != 2 {
		t.Errorf("two GIO saves made %d CreateUploadMedia calls, want 2", n)
	}
}

// groupAlive lists the processes of process group pgid that are running (not zombies).
func groupAlive(pgid int) []string {
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so read after the last ')'.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[0] != "Z" && f[2] == fmt.Sprint(pgid) {
			out = append(out, s[:i+1])
		}
	}
	return out
}

// TestLibreOfficeSaves runs LibreOffice (headless, driven through UNO as a macro would) to
// save a Writer document into the mount, twice. As strace shows, it makes .~lock.NAME#, writes
// luXXXX.tmp, renames it over the document while it still holds the document open O_RDWR, and
// drops the lock when the document closes.
func TestLibreOfficeSaves(t *testing.T) {
	needTool(t, "soffice")
	needTool(t, "/usr/bin/python3")
	if err := exec.Command("/usr/bin/python3", "-c", "import uno").Run(); err != nil {
		testutil.SkipOutsideCI(t, "python3-uno is not installed (make test and .ci/run install it when run as root)")
	}
	emu, m := toolMount(t)
	pipe := fmt.Sprintf("imsfs-test-%d", os.Getpid())
	office := exec.Command("soffice", "--headless", "--invisible", "--norestore", "--nologo",
		"-env:UserInstallation=file://"+t.TempDir(), "--accept=pipe,name="+pipe+";urp;")
	// soffice is a shell wrapper around soffice.bin: the group is killed, not only the wrapper,
	// so that no LibreOffice outlives the test.
	office.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := office.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// TERM first: the wrapper then reaps soffice.bin itself (where PID 1 reaps nothing, a
		// killed wrapper would leave it a zombie); KILL what is left.
		pgid := office.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		deadline := time.Now().Add(15 * time.Second)
		for len(groupAlive(pgid)) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
		office.Wait()
		time.Sleep(200 * time.Millisecond)
		if left := groupAlive(pgid); len(left) > 0 {
			t.Errorf("LibreOffice is still running: %v", left)
		}
	})
	script, _ := filepath.Abs("testdata/libreoffice_save.py")
	doc := filepath.Join(m.Dir, "other", "report.odt")
	for _, text := range []string{"first version", "second version, longer"} {
		out, err := exec.Command("/usr/bin/python3", script, pipe, doc, text).CombinedOutput()
		if err != nil {
			t.Fatalf("LibreOffice save: %v\n%s", err, out)
		}
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("the saved document is not an ODF zip: %v", err)
		}
		var content []byte
		for _, f := range zr.File {
			if f.Name == "content.xml" {
				r, _ := f.Open()
				content, _ = io.ReadAll(r)
				r.Close()
			}
		}
		if !bytes.Contains(content, []byte(text)) {
			t.Fatalf("content.xml of the saved document lacks %q", text)
		}
		settled(t, emu, m, map[string][]byte{"other/report.odt": data})
	}
	if left := uploadable(t, m, "other"); len(left) != 1 {
		t.Errorf("after the saves the folder holds %v", left)
	}
	if n := creates(t, emu); n != 2 {
		t.Errorf("two saves made %d CreateUploadMedia calls, want 2: a lock or temporary file was uploaded", n)
	}
}

// TestOfficeSaveReplays replays, call for call, the save sequences of LibreOffice (as strace of
// the real program shows them; TestLibreOfficeSaves runs the real one too) and of MS Word on a
// share (which cannot run here): Word makes the owner file ~$name, writes ~WRD0000.tmp, renames
// the old file to ~WRL0001.tmp and the new one to the name, and deletes the old one and the
// owner file.
func TestOfficeSaveReplays(t *testing.T) {
	emu, m := toolMount(t)
	dir := filepath.Join(m.Dir, "other")
	write := func(name string, data []byte) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	mv := func(a, b string) {
		t.Helper()
		if err := os.Rename(filepath.Join(dir, a), filepath.Join(dir, b)); err != nil {
			t.Fatal(err)
		}
	}
	rm := func(name string) {
		t.Helper()
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	libre := func(content string) {
		write(".~lock.report.odt#", []byte(",user,host,27.11.2026 10:00,user;"))
		// It holds an existing document open O_RDWR while it writes the new version beside it.
		held, err := os.OpenFile(filepath.Join(dir, "report.odt"), os.O_RDWR, 0)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		write("lu3f2a1b9c.tmp", []byte(content))
		mv("lu3f2a1b9c.tmp", "report.odt")
		if held != nil {
			held.Close()
		}
		rm(".~lock.report.odt#")
	}
	word := func(content string) {
		write("~$budget.docx", []byte("owner"))
		write("~WRD0000.tmp", []byte(content))
		if _, err := os.Stat(filepath.Join(dir, "budget.docx")); err == nil {
			mv("budget.docx", "~WRL0001.tmp")
		}
		mv("~WRD0000.tmp", "budget.docx")
		if _, err := os.Stat(filepath.Join(dir, "~WRL0001.tmp")); err == nil {
			rm("~WRL0001.tmp")
		}
		rm("~$budget.docx")
	}
	libre("odt version 1")
	word("docx version 1")
	want := map[string][]byte{"other/report.odt": []byte("odt version 1"), "other/budget.docx": []byte("docx version 1")}
	settled(t, emu, m, want)
	libre("odt version 2, longer")
	word("docx version 2, longer")
	want = map[string][]byte{"other/report.odt": []byte("odt version 2, longer"), "other/budget.docx": []byte("docx version 2, longer")}
	settled(t, emu, m, want)
	if left := uploadable(t, m, "other"); len(left) != 2 {
		t.Errorf("after the saves the folder holds %v", left)
	}
	if n := creates(t, emu); n != 4 {
		t.Errorf("four saves made %d CreateUploadMedia calls, want 4: a lock or temporary file was uploaded", n)
	}
}
