package test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test: files of mixed sizes written through the mount while the mount process is
// killed with SIGKILL again and again, at the points where a crash hurts most (during a write,
// after a close and before CreateUploadMedia, between parts, after the object is complete and
// before the asset is ready, at random moments of the uploads, and right after the closes of a
// burst of new files). After a last remount every
// file must end ready, its asset holding exactly its bytes, and the emulator must hold one
// Normal asset per file and nothing else.

type crashRun struct {
	t     *testing.T
	emu   *emulatorProc
	cache string
	m     *mountProc
	want  map[string][]byte // mount-relative path → the bytes its writer wrote and closed
	// partial: a file whose writer was cut off by a kill; what it must hold is any prefix of
	// these bytes at least as long as what the writer was told was written.
	partial map[string]partialFile
	kills   int
}

type partialFile struct {
	data  []byte
	acked int
}

func (c *crashRun) mount(args ...string) {
	c.t.Helper()
	c.m = startMount(c.t, c.emu, c.cache, args...)
}

// kill ends the mount with SIGKILL and detaches what the kernel still holds of it.
func (c *crashRun) kill(why string) {
	c.t.Helper()
	c.m.cmd.Process.Signal(syscall.SIGKILL)
	<-c.m.done
	exec.Command("umount", "-l", c.m.Dir).Run()
	c.kills++
	c.t.Logf("kill %d: %s", c.kills, why)
}

func (c *crashRun) faults(spec string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, c.emu.URL+"/_emulator/faults", strings.NewReader(spec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		c.t.Fatalf("set faults %q: %v", spec, err)
	}
	resp.Body.Close()
}

func (c *crashRun) write(p string, size int) {
	c.t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	full := filepath.Join(c.m.Dir, p)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, data, 0o644); err != nil {
		c.t.Fatalf("write %s: %v", p, err)
	}
	c.want[p] = data
}

// count returns the emulator's count of requests at point.
func (c *crashRun) count(point string) int64 { return c.emu.stats(c.t).Requests[point] }

// waitFor waits until the emulator's count of requests at point reaches n. Take the count to
// grow from before the writes that cause the requests: uploads may finish before they return.
func (c *crashRun) waitFor(point string, n int64) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.count(point) < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s did not reach %d", point, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var crashSizes = []int{1 << 10, 8 << 10, 64 << 10, 300 << 10, 1 << 20, 3 << 20, 9 << 20}

func TestCrashRecovery(t *testing.T) {
	emu := startEmulator(t)
	c := &crashRun{t: t, emu: emu, cache: t.TempDir(), want: map[string][]byte{}, partial: map[string]partialFile{}}
	n := 0
	ext := map[string]string{"image": "png", "audio": "mp3", "other": "bin"} // video: mp4
	next := func(dir string) string {
		n++
		e := ext[dir]
		if e == "" {
			e = "mp4"
		}
		return fmt.Sprintf("%s/f%02d.%s", dir, n, e)
	}

	// 1. After the close, before CreateUploadMedia: the settle delay holds them queued.
	c.mount("--upload-delay", "10s")
	for i := 0; i < 17; i++ {
		c.write(next("video"), crashSizes[i%len(crashSizes)])
	}
	c.kill("after close, before CreateUploadMedia")

	// 2. Between parts: parts are slowed, the kill lands once a few are through.
	c.faults("oss.part=0:latency=300ms")
	c.mount()
	parts := c.count("oss.part")
	c.write(next("video/big"), 64<<20)
	c.write(next("video/big"), 17<<20)
	for i := 0; i < 8; i++ {
		c.write(next("image"), crashSizes[i%len(crashSizes)])
	}
	c.waitFor("oss.part", parts+3)
	c.kill("between parts")

	// 3. After the object is complete and before the asset is ready.
	c.faults("media.ready=0:latency=2s")
	c.mount()
	puts := c.count("oss.put")
	for i := 0; i < 6; i++ {
		c.write(next("audio"), crashSizes[(i+3)%len(crashSizes)])
	}
	c.waitFor("oss.put", puts+2)
	time.Sleep(100 * time.Millisecond)
	c.kill("after the object is complete, before ready")

	// 4. During a write: the writer is cut off half-way through a file.
	c.faults("oss.part=0:latency=100ms")
	c.mount()
	p := next("other")
	data := make([]byte, 32<<20)
	rand.Read(data)
	f, err := os.Create(filepath.Join(c.m.Dir, p))
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for acked < 12<<20 {
		w, err := f.Write(data[acked : acked+1<<20])
		acked += w
		if err != nil {
			t.Fatal(err)
		}
	}
	c.kill("during a write")
	f.Close()
	c.partial[p] = partialFile{data: data, acked: acked}

	// 5. At random moments of the uploads.
	for round := 0; round < 4; round++ {
		c.mount()
		for i := 0; i < 4; i++ {
			c.write(next("video/opening"), crashSizes[(round+i)%len(crashSizes)])
		}
		time.Sleep(time.Duration(50+round*150) * time.Millisecond)
		c.kill(fmt.Sprintf("at a random moment (%d)", round+1))
	}

	// 6. Right after the closes of a burst of new files: the last records are still pending
	// (their commit waits a few milliseconds for others), kept by the log of new files alone.
	c.mount()
	for i := 0; i < 30; i++ {
		c.write(next("video"), 1<<10)
	}
	c.kill("right after the last close")

	// Last: remount without faults and let everything finish.
	c.faults("")
	c.mount()
	fromLog := "0" // a kill that came after their commit
	if _, line, ok := strings.Cut(c.m.output(), "recorded from the cache's log"); ok {
		if _, n, ok := strings.Cut(line, "files="); ok {
			fromLog, _, _ = strings.Cut(n, " ")
		}
	}
	final := map[string][]byte{}
	for p, d := range c.want {
		final[p] = d
	}
	for p, pf := range c.partial {
		got, err := os.ReadFile(filepath.Join(c.m.Dir, p))
		if err != nil {
			t.Fatalf("%s after the crash: %v", p, err)
		}
		if len(got) < pf.acked || !bytes.Equal(got, pf.data[:len(got)]) {
			t.Fatalf("%s holds %d bytes after the crash; want a prefix of what was written, at least the %d acknowledged", p, len(got), pf.acked)
		}
		final[p] = got
	}
	// Count, rather than stop at the first problem, so that the figures say how bad it is.
	lost, corrupt := 0, 0
	ids := map[string]bool{}
	for p, data := range final {
		full := filepath.Join(c.m.Dir, p)
		deadline := time.Now().Add(120 * time.Second)
		var status string
		for time.Now().Before(deadline) {
			if status, _ = xattr(full, "user.ims.status"); status == "ready" || status == "failed" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		id, _ := xattr(full, "user.ims.media_id")
		a, held := emu.asset(t, id)
		got, _ := os.ReadFile(full)
		switch {
		case status != "ready" || !held || a.Status != "Normal":
			lost++
			t.Errorf("%s: status %q, asset %+v", p, status, a)
		case a.MD5 != md5Bytes(data) || !bytes.Equal(got, data):
			corrupt++
			t.Errorf("%s: the asset or the file does not hold the bytes written", p)
		}
		ids[id] = true
	}
	var orphans []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		orphans = orphans[:0]
		for _, a := range emu.assets(t) {
			if !ids[a.MediaId] {
				orphans = append(orphans, a.MediaId+" "+a.Title+" ("+a.Status+")")
			}
		}
		if len(orphans) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // voided assets are deleted in the background
	}
	figure(t, "%d files, %d kills, %d lost, %d corrupt, %d orphans; %s new files' records taken from the log of new files", len(final), c.kills, lost, corrupt, len(orphans), fromLog)
	if len(orphans) > 0 {
		t.Errorf("orphan assets: %v", orphans)
	}
	if len(final) < 50 {
		t.Errorf("the crash test wrote %d files, want at least 50", len(final))
	}
}
