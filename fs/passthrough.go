package fs

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FUSE passthrough: the kernel writes a new or truncated file straight to its spool, at the
// speed of the local disk, with no request to imsfs. What imsfs then does not see, it looks at:
// the spool's size and mtime (on stat and close), whether the writer goes in order (a hole in
// the spool says it skipped ahead), and whether the cache volume filled (the writer alone got
// the ENOSPC).

const (
	// passthroughRoom is the free space a writer is passed through with at its open: with less,
	// imsfs sees every write, so that one a full disk refuses marks the file damaged.
	passthroughRoom = 1 << 30
	// spaceLowMark is the free space under which a file written straight to its spool is taken
	// to have met a full disk.
	spaceLowMark = 64 << 20
	// watchEvery is how often the growth of a file written straight to its spool is looked at.
	watchEvery = 200 * time.Millisecond
)

// directOK reports whether a writer opened now may write straight to its spool.
func (f *FS) directOK() bool {
	if !f.passthrough.Load() {
		return false
	}
	// Room seen within the last 100 ms is room enough: the margin is 1 GiB, and a handle that
	// fills the volume anyway is caught at its flush (spaceLow).
	now := time.Now().UnixNano()
	if now-f.roomSeen.Load() < int64(100*time.Millisecond) {
		return true
	}
	if f.spaceFree() <= passthroughRoom {
		return false
	}
	f.roomSeen.Store(now)
	return true
}

// spaceLow reports whether the cache volume is nearly full.
func (f *FS) spaceLow() bool {
	return f.spaceFree() < spaceLowMark
}

func (f *FS) spaceFree() int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(f.opts.Store.SpoolDir(), &st); err != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// watchDirect follows a file while the kernel writes it straight to its spool: its size, for
// stat, and its growth in order, for the upload while writing. It ends with the last such writer.
func (n *fileNode) watchDirect() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	var last int64
	var spool *os.File // opened at the first look: most small files are closed before it
	defer func() {
		if spool != nil {
			spool.Close()
		}
	}()
	for {
		select {
		case <-t.C:
		case <-n.fsys.stop:
			return
		}
		n.mu.Lock()
		if n.direct == 0 || n.gone {
			n.mu.Unlock()
			return
		}
		if spool == nil {
			var err error
			if spool, err = os.Open(n.fsys.opts.Store.SpoolPath(n.id)); err != nil {
				n.mu.Unlock()
				return
			}
		}
		n._seeDirectWrites()
		size, inOrder := n.size, n.seqEnd >= 0 && n.damaged == nil
		if inOrder && size > last {
			// A writer in order leaves no hole before its end (SEEK_HOLE finds only the end).
			if hole, err := unix.Seek(int(spool.Fd()), 0, unix.SEEK_HOLE); err == nil && hole < size {
				n.seqEnd, inOrder = -1, false
			} else {
				n.seqEnd = size
			}
		}
		n.mu.Unlock()
		if inOrder && size > last {
			last = size
			n.fsys.opts.Uploads.Growing(n.id, size)
		}
	}
}

// KernelOffersPassthrough returns the kernel's release, and whether it is one with FUSE
// passthrough (Linux 6.9 and later); a mount needs root besides to use it.
func KernelOffersPassthrough() (release string, ok bool) {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "", false
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	release = b.String()
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return release, false
	}
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return release, major > 6 || major == 6 && minor >= 9
}
