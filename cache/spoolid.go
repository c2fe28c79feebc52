package cache

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// SpoolID is what tells that a spool changed: a write changes its size or its times (since
// Linux 6.13, a write after a stat gets a newer ctime, however soon), a replacement its inode.
// The zero SpoolID is none taken.
type SpoolID struct {
	Size         int64
	Ino          uint64
	Mtime, Ctime unix.Timespec
}

// SpoolIDOf returns the SpoolID of an open spool.
func SpoolIDOf(f *os.File) (SpoolID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return SpoolID{}, err
	}
	return spoolIDOf(&st), nil
}

// SpoolIDAt returns the SpoolID of the spool at path.
func SpoolIDAt(path string) (SpoolID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return SpoolID{}, err
	}
	return spoolIDOf(&st), nil
}

func spoolIDOf(st *unix.Stat_t) SpoolID {
	return SpoolID{Size: st.Size, Ino: st.Ino, Mtime: st.Mtim, Ctime: st.Ctim}
}

// ChangedSince says how the spool f (and the file at its name) changed since s, or "".
func (s SpoolID) ChangedSince(f *os.File) string {
	now, err := SpoolIDOf(f)
	if err != nil {
		return "the spool cannot be looked at: " + err.Error()
	}
	if byName, err := SpoolIDAt(f.Name()); err != nil || byName.Ino != s.Ino {
		return "the spool was replaced"
	}
	if now != s {
		return fmt.Sprintf("the spool changed (%d bytes, changed at %s; now %d bytes, changed at %s)",
			s.Size, time.Unix(s.Ctime.Unix()).UTC().Format(time.RFC3339Nano), now.Size, time.Unix(now.Ctime.Unix()).UTC().Format(time.RFC3339Nano))
	}
	return ""
}
