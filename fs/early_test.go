package fs

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/test/testutil"
)

// TestAFileWrittenInOrderGoesUpWhileWritten: a file written from its start in order has its
// asset made and its parts sent before its close, whether its writes come through imsfs or
// the kernel passes them straight to the spool; one written out of order waits for its close.
// Both end as the bytes written.
func TestAFileWrittenInOrderGoesUpWhileWritten(t *testing.T) {
	const partSize = 256 << 10
	for _, direct := range []bool{true, false} {
		name := map[bool]string{true: "passthrough", false: "through imsfs"}[direct]
		t.Run(name, func(t *testing.T) {
			m := testMount(t, testOptions{partSize: partSize, noDirect: !direct, uploadDelay: time.Hour})
			if direct && !m.fsys.passthrough.Load() {
				// A kernel without passthrough, or a mount without root, cannot have it: the
				// writes then go through imsfs, as the other case checks. In CI, as root on a
				// kernel that offers it, it must work.
				release, offered := KernelOffersPassthrough()
				if !offered || os.Geteuid() != 0 {
					testutil.SkipOutsideCI(t, fmt.Sprintf("FUSE passthrough is not available here (Linux %s, uid %d)", release, os.Geteuid()))
				}
				testutil.SkipOutsideCI(t, "Linux "+release+" offers FUSE passthrough, but the mount does not use it")
			}
			data := make([]byte, 12*partSize+1000)
			rand.Read(data)

			// In order.
			p := filepath.Join(m.dir, "video", "in-order.mp4")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(data); off += 64 << 10 {
				if _, err := f.Write(data[off:min(off+64<<10, len(data))]); err != nil {
					t.Fatal(err)
				}
			}
			m.waitCalls(t, "oss.part", 8) // while the file is open
			if n := len(m.cloud.Assets()); n != 1 {
				t.Fatalf("%d assets while the file is written, want 1", n)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			rec := waitState(t, m, "video/in-order.mp4", cache.Ready) // the settle delay is an hour
			if got, _ := m.cloud.Object(rec.MediaID); !bytes.Equal(got, data) {
				t.Errorf("the object holds %d bytes, not the %d written", len(got), len(data))
			}

			// Out of order: the second half first.
			p = filepath.Join(m.dir, "video", "out-of-order.mp4")
			f, err = os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			half := len(data) / 2
			if _, err := f.WriteAt(data[half:], int64(half)); err != nil {
				t.Fatal(err)
			}
			// Written straight to the spool, the file is looked at now and then: the hole
			// before the second half must be seen once to tell (a writer that filled it
			// between two looks wrote what is there in order, as far as can be told).
			time.Sleep(3 * watchEvery)
			if _, err := f.WriteAt(data[:half], 0); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // what would have started, has
			if n := len(m.cloud.Assets()); n != 1 {
				t.Errorf("%d assets: a file written out of order went up while written", n)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			waitState(t, m, "video/out-of-order.mp4", cache.Queued) // its release ends the session
			if _, err := m.queue.Retry("video/out-of-order.mp4"); err != nil {
				t.Fatal(err)
			}
			rec = waitState(t, m, "video/out-of-order.mp4", cache.Ready)
			if got, _ := m.cloud.Object(rec.MediaID); !bytes.Equal(got, data) {
				t.Errorf("the object holds %d bytes, not the %d written", len(got), len(data))
			}
		})
	}
}

// waitCalls waits until the cloud was called n times for op.
func (m *mounted) waitCalls(t *testing.T, op string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for m.cloud.Calls(op) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls of %s, waited for %d", m.cloud.Calls(op), op, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
