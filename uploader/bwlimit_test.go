package uploader

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// TestTimetablesReadAsRcloneWritesThem: rates, slots by time and by day, and the refusals.
func TestTimetablesReadAsRcloneWritesThem(t *testing.T) {
	mon := time.Date(2026, 11, 30, 0, 0, 0, 0, time.Local) // a Monday
	at := func(day, hh, mm int) time.Time {
		return mon.AddDate(0, 0, day).Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
	}
	for _, c := range []struct {
		in   string
		when time.Time
		want int64
	}{
		{"8M", at(0, 12, 0), 8 << 20},
		{"512k", at(0, 12, 0), 512 << 10},
		{"512", at(0, 12, 0), 512 << 10}, // KiB without a suffix, as rclone
		{"100B", at(0, 12, 0), 100},
		{"1.5M", at(0, 12, 0), 3 << 19},
		{"off", at(0, 12, 0), 0},
		{"0", at(0, 12, 0), 0},
		{"10M:100k", at(0, 12, 0), 10 << 20},               // upload:download: the upload's
		{"08:00,512k 19:00,8M 23:00,off", at(0, 7, 59), 0}, // before 08:00, the day before's last
		{"08:00,512k 19:00,8M 23:00,off", at(0, 8, 0), 512 << 10},
		{"08:00,512k 19:00,8M 23:00,off", at(0, 18, 59), 512 << 10},
		{"08:00,512k 19:00,8M 23:00,off", at(0, 19, 0), 8 << 20},
		{"08:00,512k;19:00,8M;23:00,off", at(0, 23, 30), 0},
		{"0800,1M 1900,2M", at(0, 20, 0), 2 << 20},
		{"Mon-08:00,1M Sat-00:00,off", at(0, 9, 0), 1 << 20},
		{"Mon-08:00,1M Sat-00:00,off", at(4, 23, 59), 1 << 20}, // Friday
		{"Mon-08:00,1M Sat-00:00,off", at(5, 0, 0), 0},         // Saturday
		{"Mon-08:00,1M Sat-00:00,off", at(0, 7, 0), 0},         // Monday before 08:00: Saturday's
		{"monday-08:00,1M", at(2, 3, 0), 1 << 20},
	} {
		tt, err := ParseTimetable(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := tt.At(c.when); got != c.want {
			t.Errorf("%q at %s: %d, want %d", c.in, c.when.Format("Mon 15:04"), got, c.want)
		}
		if tt.String() != c.in {
			t.Errorf("%q reads back as %q", c.in, tt.String())
		}
	}
	for _, bad := range []string{"", "fast", "nan", "NaN", "0.5B", "8X", "-1M", "25:00,1M", "08:60,1M", "Xyz-08:00,1M", "08:00,1M 08:00,2M", "8:00,1M"} {
		if _, err := ParseTimetable(bad); err == nil {
			t.Errorf("%q taken", bad)
		} else if !strings.Contains(err.Error(), "want") && !strings.Contains(err.Error(), "same time") && !strings.Contains(err.Error(), "day of the week") {
			t.Errorf("%q: the refusal %q says not what is wanted", bad, err)
		}
	}
}

// TestUploadBytesWaitForTheBandwidth: a reader under a limit waits for its tokens (a read past
// what the limit lets through by a deadline fails with the limiter's refusal); without one, or
// in a slot that is off, it does not.
func TestUploadBytesWaitForTheBandwidth(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 64<<10)
	read := func(spec string) error {
		tt, err := ParseTimetable(spec)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r := newBandwidth(tt, clockwork.NewRealClock()).reader(ctx, bytes.NewReader(data))
		n, err := io.Copy(io.Discard, r)
		if err == nil && n != int64(len(data)) {
			t.Errorf("%s: read %d of %d bytes", spec, n, len(data))
		}
		return err
	}
	// 64 KiB at 1 KiB a second takes a minute: a wait past the deadline is refused at once.
	if err := read("1K"); err == nil {
		t.Error("64 KiB went through a limit of 1 KiB/s within 1 s")
	}
	if err := read("00:00,1K"); err == nil {
		t.Error("a timetable of 1 KiB/s let 64 KiB through within 1 s")
	}
	for _, spec := range []string{"off", "00:00,off", "1G"} {
		if err := read(spec); err != nil {
			t.Errorf("%s: %v", spec, err)
		}
	}
}
