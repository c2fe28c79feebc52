package uploader

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"
)

// Timetable is a bandwidth limit for uploads in rclone's --bwlimit syntax: one rate ("8M",
// "512k", "off"), or slots that each start a rate at a time of day, every day or on one day of
// the week ("08:00,512k 19:00,8M 23:00,off", "Mon-08:00,1M Sat-00:00,off"), separated by spaces
// or semicolons. A rate is bytes a second with a suffix B, K, M, G or T (powers of 1024), KiB
// without one; "off" or 0 is no limit; of rclone's "upload:download" pair, the upload's is taken
// (imsfs downloads only what library/ reads). Before the first slot of a week, the last one
// goes on.
type Timetable struct {
	slots []bwSlot // by minute of the week; one slot at minute 0 for a single rate
	text  string
}

type bwSlot struct {
	minute int   // of the week, from Sunday 00:00
	rate   int64 // bytes a second; 0: no limit
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseTimetable reads a --bwlimit value.
func ParseTimetable(s string) (Timetable, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return Timetable{}, fmt.Errorf("bandwidth %q: want a rate (8M, 512k, off) or a timetable (08:00,512k 19:00,off)", s)
	}
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == ';' })
	if len(fields) == 1 && !strings.Contains(fields[0], ",") {
		r, err := parseRate(fields[0])
		if err != nil {
			return Timetable{}, err
		}
		return Timetable{slots: []bwSlot{{0, r}}, text: text}, nil
	}
	var slots []bwSlot
	for _, f := range fields {
		when, rateText, ok := strings.Cut(f, ",")
		if !ok {
			return Timetable{}, fmt.Errorf("bandwidth %q: slot %q is not TIME,RATE (08:00,512k) or DAY-TIME,RATE (Mon-08:00,512k)", s, f)
		}
		r, err := parseRate(rateText)
		if err != nil {
			return Timetable{}, err
		}
		days, minute, err := parseWhen(when)
		if err != nil {
			return Timetable{}, fmt.Errorf("bandwidth %q: %w", s, err)
		}
		for _, d := range days {
			slots = append(slots, bwSlot{minute: d*24*60 + minute, rate: r})
		}
	}
	sort.SliceStable(slots, func(i, j int) bool { return slots[i].minute < slots[j].minute })
	for i := 1; i < len(slots); i++ {
		if slots[i].minute == slots[i-1].minute {
			return Timetable{}, fmt.Errorf("bandwidth %q: two slots start at the same time", s)
		}
	}
	return Timetable{slots: slots, text: text}, nil
}

// parseWhen reads "HH:MM", "HHMM" or "Day-HH:MM": the days it applies on and its minute of the day.
func parseWhen(when string) (days []int, minute int, err error) {
	days = []int{0, 1, 2, 3, 4, 5, 6}
	if day, hhmm, ok := strings.Cut(when, "-"); ok {
		d := -1
		for i, w := range weekdays {
			if strings.EqualFold(day, w) || strings.EqualFold(day, time.Weekday(i).String()) {
				d = i
			}
		}
		if d < 0 {
			return nil, 0, fmt.Errorf("%q is no day of the week (Mon, Tue… or Monday…)", day)
		}
		days, when = []int{d}, hhmm
	}
	digits := strings.Replace(when, ":", "", 1)
	if len(digits) != 4 {
		return nil, 0, fmt.Errorf("time %q: want HH:MM", when)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n/100 > 23 || n%100 > 59 {
		return nil, 0, fmt.Errorf("time %q: want HH:MM between 00:00 and 23:59", when)
	}
	return days, n/100*60 + n%100, nil
}

// parseRate reads a rate: "off", a number of KiB, or a number with a suffix; of "up:down", up.
func parseRate(s string) (int64, error) {
	up, _, _ := strings.Cut(strings.TrimSpace(s), ":")
	if strings.EqualFold(up, "off") {
		return 0, nil
	}
	mult := int64(1024)
	num := up
	if n := len(up); n > 0 {
		switch strings.ToUpper(up[n-1:]) {
		case "B":
			mult, num = 1, up[:n-1]
		case "K":
			mult, num = 1<<10, up[:n-1]
		case "M":
			mult, num = 1<<20, up[:n-1]
		case "G":
			mult, num = 1<<30, up[:n-1]
		case "T":
			mult, num = 1<<40, up[:n-1]
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f*float64(mult) > 1<<50 || (f > 0 && f*float64(mult) < 1) {
		return 0, fmt.Errorf("rate %q: want a number with B, K, M, G or T (8M, 512k), or off", s)
	}
	return int64(f * float64(mult)), nil
}

// At returns the rate in effect at t, in bytes a second (0: no limit).
func (t Timetable) At(at time.Time) int64 {
	if len(t.slots) == 0 {
		return 0
	}
	m := int(at.Weekday())*24*60 + at.Hour()*60 + at.Minute()
	r := t.slots[len(t.slots)-1].rate // before the week's first slot, the last goes on
	for _, s := range t.slots {
		if s.minute > m {
			break
		}
		r = s.rate
	}
	return r
}

// IsZero reports whether t sets no limit at all.
func (t Timetable) IsZero() bool {
	for _, s := range t.slots {
		if s.rate > 0 {
			return false
		}
	}
	return true
}

func (t Timetable) String() string {
	if t.text == "" {
		return "off"
	}
	return t.text
}

// bandwidth holds every upload byte, across all transfers, to the rate the timetable gives
// now: a token bucket (golang.org/x/time/rate) whose rate follows the timetable.
type bandwidth struct {
	table Timetable
	clock clockwork.Clock

	mu      sync.Mutex
	current int64 // protected by mu: the rate the limiter has
	lim     *rate.Limiter
}

// bwBurst is the most a transfer sends at once: a limit holds over a second, not a packet.
const bwBurst = 256 << 10

func newBandwidth(t Timetable, clock clockwork.Clock) *bandwidth {
	return &bandwidth{table: t, clock: clock, current: -1, lim: rate.NewLimiter(rate.Inf, bwBurst)}
}

// limiter returns the limiter with the rate of now, or nil when there is no limit now.
func (b *bandwidth) limiter() *rate.Limiter {
	r := b.table.At(b.clock.Now())
	b.mu.Lock()
	defer b.mu.Unlock()
	if r != b.current {
		b.current = r
		if r == 0 {
			b.lim.SetLimit(rate.Inf)
		} else {
			// A burst of a quarter second at most: a low rate is not exceeded by a burst.
			b.lim.SetBurst(int(min(max(r/4, 4<<10), bwBurst)))
			b.lim.SetLimit(rate.Limit(r))
		}
	}
	if r == 0 {
		return nil
	}
	return b.lim
}

// Rate is the limit in effect now, in bytes a second (0: none).
func (b *bandwidth) Rate() int64 { return b.table.At(b.clock.Now()) }

// reader returns r, its reads held to the bandwidth.
func (b *bandwidth) reader(ctx context.Context, r io.Reader) io.Reader {
	if b == nil || b.table.IsZero() {
		return r
	}
	return &bwReader{ctx: ctx, r: r, b: b}
}

type bwReader struct {
	ctx context.Context
	r   io.Reader
	b   *bandwidth
}

func (l *bwReader) Read(p []byte) (int, error) {
	lim := l.b.limiter()
	if lim == nil {
		return l.r.Read(p)
	}
	if burst := lim.Burst(); len(p) > burst {
		p = p[:burst]
	}
	n, err := l.r.Read(p)
	for rest := n; rest > 0; {
		k := min(rest, lim.Burst()) // the burst may have changed with the slot
		if werr := lim.WaitN(l.ctx, k); werr != nil {
			return n, werr
		}
		rest -= k
	}
	return n, err
}
