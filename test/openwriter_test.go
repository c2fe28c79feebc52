package test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A file still open for writing is never uploaded, whatever the kernel sends while its writer
// holds it: a FLUSH comes with every close(2) of a descriptor — a reader's, a duplicate's, and
// one in each child the writer starts (close-on-exec, or exit) — not only with the writer's
// last. Each case runs with the kernel writing straight to the spool (passthrough) and through
// imsfs, at --upload-delay 0, where an upload begun too early would show at once; each checks
// that no asset exists while the writer holds the file, that the file says "writing" then, and
// that the one asset made holds the file's final bytes.

func TestAFileOpenForWritingIsNotUploaded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files int // assets asked for in all
		run   func(*testing.T, *emulatorProc, *mountProc)
		args  []string
	}{
		{"a preview its writer starts", 1, previewWhileWriting, nil},
		{"a child that inherited the descriptor", 1, inheritedDescriptor, nil},
		{"a pipeline", 6, pipelineWrites, nil},
		{"a recorder read by ffprobe", 1, recorderWithProbe, nil},
		{"a writer that has not written yet", 1, idleWriter, []string{"--upload-delay", "2s"}},
		{"an append while a reader holds the kernel's way to the spool", 2, appendBesideAReader, nil},
	}
	for _, passthrough := range []bool{true, false} {
		for _, c := range cases {
			// An emulator each: it serves this case's files alone, so that any asset it was
			// asked for is theirs, deleted since or not.
			t.Run(fmt.Sprintf("passthrough=%v/%s", passthrough, c.name), func(t *testing.T) {
				t.Parallel()
				emu := startEmulator(t)
				mp := startMount(t, emu, "", append([]string{fmt.Sprintf("--passthrough=%v", passthrough)}, c.args...)...)
				c.run(t, emu, mp)
				if n := emu.stats(t).Requests["ims.create"]; n != int64(c.files) {
					t.Errorf("%d assets asked for, for %d files", n, c.files)
				}
			})
		}
	}
}

// held checks that the file at path, which a writer holds, says so, and that no asset was
// asked for (the test's emulator serves files that are all held until their last writer ends).
func held(t *testing.T, emu *emulatorProc, path string) {
	t.Helper()
	if s, err := xattr(path, "user.ims.status"); err != nil || s != "writing" {
		t.Errorf("%s, held by its writer: status %q (%v), want writing", path, s, err)
	}
	if n := emu.stats(t).Requests["ims.create"]; n != 0 {
		t.Errorf("%s, held by its writer: %d assets asked for already", path, n)
	}
}

// oneFinalAsset waits until path is ready and checks that it has exactly one asset, and that
// the asset and the file both hold want.
func oneFinalAsset(t *testing.T, emu *emulatorProc, path string, want []byte) {
	t.Helper()
	waitStatus(t, path, "ready", 60*time.Second)
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s reads %d bytes that are not the %d written (%v)", path, len(got), len(want), err)
	}
	id, _ := xattr(path, "user.ims.media_id")
	var mine []asset
	for _, a := range emu.assets(t) {
		if a.FileName == filepath.Base(path) {
			mine = append(mine, a)
		}
	}
	if len(mine) != 1 || mine[0].MediaId != id || mine[0].MD5 != md5Bytes(want) || mine[0].Size != int64(len(want)) {
		t.Errorf("%s (ready as %s): assets %+v; want one, with the file's final %d bytes (MD5 %s)", path, id, mine, len(want), md5Bytes(want))
	}
}

func randomBytesT(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// previewWhileWriting: the writer writes, starts a preview of what it wrote (a child process:
// its descriptors close at exec, each with a FLUSH), reads it itself and closes that, waits past
// the settle delay, and writes on.
func previewWhileWriting(t *testing.T, emu *emulatorProc, mp *mountProc) {
	p := filepath.Join(mp.Dir, "video", "preview.mp4")
	first, second := randomBytesT(t, 200000), randomBytesT(t, 200000)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(first); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", `cat "$1" | wc -c`, "sh", p).Output()
	if err != nil || strings.TrimSpace(string(out)) != "200000" {
		t.Fatalf("the preview read %q (%v)", out, err)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, first) { // a reader's own open and close
		t.Fatalf("a reader read %d bytes (%v)", len(got), err)
	}
	time.Sleep(2 * time.Second) // an upload begun by any of those closes is under way by now
	held(t, emu, p)
	if _, err := f.Write(second); err != nil {
		t.Fatal(err)
	}
	held(t, emu, p)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	oneFinalAsset(t, emu, p, append(first, second...))
}

// inheritedDescriptor: a shell script holds the file open on descriptor 3 and runs a subshell,
// which inherits it and exits (a FLUSH), then waits, and writes on.
func inheritedDescriptor(t *testing.T, emu *emulatorProc, mp *mountProc) {
	dir := t.TempDir()
	p := filepath.Join(mp.Dir, "video", "inherited.mp4")
	local := filepath.Join(dir, "local")
	script := `exec 3>"$1"
head -c 200000 /dev/urandom | tee -a "$2" >&3
( true )
: > "$3/phase1"
while [ ! -e "$3/go" ]; do sleep 0.05; done
head -c 200000 /dev/urandom | tee -a "$2" >&3
exec 3>&-`
	cmd := exec.Command("bash", "-c", script, "bash", p, local, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "phase1")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the script did not write its first half: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	held(t, emu, p)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the script: %v: %s", err, stderr.String())
	}
	want, err := os.ReadFile(local)
	if err != nil || len(want) != 400000 {
		t.Fatalf("the script wrote %d bytes (%v)", len(want), err)
	}
	oneFinalAsset(t, emu, p, want)
}

// pipelineWrites: `producer | tee copy > FILE`, six at once: the shell opens FILE, the child
// running tee gets it as its standard output by dup2 and closes the descriptor it was opened on
// (a FLUSH) before it writes a byte. The producers pause midway, as one that encodes or
// downloads does.
func pipelineWrites(t *testing.T, emu *emulatorProc, mp *mountProc) {
	dir := t.TempDir()
	const n = 6
	var cmds []*exec.Cmd
	for i := range n {
		p := filepath.Join(mp.Dir, "video", fmt.Sprintf("pipe%d.mp4", i))
		copyPath := filepath.Join(dir, fmt.Sprintf("copy%d", i))
		cmd := exec.Command("bash", "-c", `{ head -c 100000 /dev/urandom; : > "$3.half"; while [ ! -e "$4" ]; do sleep 0.05; done; head -c 200000 /dev/urandom; } | tee "$1" > "$2"`,
			"bash", copyPath, p, copyPath, filepath.Join(dir, "go"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range n {
		for {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("copy%d.half", i))); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pipeline %d did not write its first part", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second)
	for i := range n {
		held(t, emu, filepath.Join(mp.Dir, "video", fmt.Sprintf("pipe%d.mp4", i)))
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("pipeline %d: %v", i, err)
		}
	}
	for i := range n {
		want, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("copy%d", i)))
		if err != nil || len(want) != 300000 {
			t.Fatalf("pipeline %d wrote %d bytes (%v)", i, len(want), err)
		}
		oneFinalAsset(t, emu, filepath.Join(mp.Dir, "video", fmt.Sprintf("pipe%d.mp4", i)), want)
	}
}

// recorderWithProbe: a recorder writes an MPEG-TS stream a piece every 3 s for 20 s; after each
// piece, ffprobe (started by the recorder) reads what is there.
func recorderWithProbe(t *testing.T, emu *emulatorProc, mp *mountProc) {
	src := filepath.Join(t.TempDir(), "src.ts")
	run(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=20:size=160x120:rate=10",
		"-c:v", "mpeg2video", "-f", "mpegts", src)
	stream, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mp.Dir, "video", "recording.ts")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const pieces = 7 // at 0, 3, … 18 s
	size := (len(stream) + pieces - 1) / pieces
	size -= size % 188 // whole TS packets
	for i := range pieces {
		if i > 0 {
			time.Sleep(3 * time.Second)
		}
		end := min((i+1)*size, len(stream))
		if i == pieces-1 {
			end = len(stream)
		}
		if _, err := f.Write(stream[i*size : end]); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=format_name", "-of", "csv=p=0", p).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "mpegts") {
			t.Errorf("ffprobe of the recording after piece %d: %v: %s", i+1, err, out)
		}
		held(t, emu, p)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	oneFinalAsset(t, emu, p, stream)
}

// idleWriter: a file waits out its settle delay; a writer opens it and writes nothing for a
// while: it is not uploaded meanwhile, and says so; then the writer appends and closes.
func idleWriter(t *testing.T, emu *emulatorProc, mp *mountProc) {
	p := filepath.Join(mp.Dir, "video", "idle.mp4")
	first, more := randomBytesT(t, 100000), randomBytesT(t, 50000)
	if err := os.WriteFile(p, first, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // past the settle delay of 2 s
	held(t, emu, p)
	if _, err := f.Write(more); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	oneFinalAsset(t, emu, p, append(first, more...))
}

// appendBesideAReader: a file written straight to its spool (passthrough) is read by a reader
// that opened it meanwhile and keeps it open: the kernel keeps passing the file straight to its
// spool, to an append too, which imsfs must take as new bytes all the same.
func appendBesideAReader(t *testing.T, emu *emulatorProc, mp *mountProc) {
	p := filepath.Join(mp.Dir, "video", "appended.mp4")
	first, more := randomBytesT(t, 300000), randomBytesT(t, 50000)
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(first); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p, "ready", 60*time.Second)
	a, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(more); err != nil {
		t.Fatal(err)
	}
	if s, _ := xattr(p, "user.ims.status"); s != "writing" {
		t.Errorf("appended to, with the appender open: status %q, want writing", s)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, _ := xattr(p, "user.ims.status")
		id, _ := xattr(p, "user.ims.media_id")
		if s == "ready" && id != "" {
			for _, as := range emu.assets(t) {
				if as.MediaId == id && as.MD5 == md5Bytes(append(first, more...)) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %q, asset %s: not the appended bytes; assets %+v", p, s, id, emu.assets(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadyIsProved: OSS stores other bytes than were sent (the emulator flips the first byte
// of each PUT and part while the fault is in force, and answers with the CRC-64 of what it
// stored, as OSS does). Nothing is called uploaded while that lasts; once it stops, each file
// ends ready with its own bytes, and the asset that held other bytes is deleted.
func TestReadyIsProved(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--faults", "oss.put=1:corrupt,oss.part=1:corrupt")
	mp := startMount(t, emu, "", "--part-size", "100KiB")
	files := map[string][]byte{"video/one-put.mp4": randomBytesT(t, 50000), "video/parts.mp4": randomBytesT(t, 250000)}
	for p, data := range files {
		if err := os.WriteFile(filepath.Join(mp.Dir, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for emu.stats(t).Faults["oss.put"] < 2 || emu.stats(t).Faults["oss.part"] < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the faults were not met: %v", emu.stats(t).Faults)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for p := range files {
		if s, _ := xattr(filepath.Join(mp.Dir, p), "user.ims.status"); s == "uploaded" || s == "ready" {
			t.Errorf("%s is %s while OSS stores other bytes than were sent", p, s)
		}
	}
	setFaults(t, emu, "")
	settled(t, emu, mp, files)
	if !strings.Contains(mp.output(), "the upload starts over with a new asset") {
		t.Errorf("the mount's log does not say that an object held other bytes:\n%s", mp.output())
	}
}
