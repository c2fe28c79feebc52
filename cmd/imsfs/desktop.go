package main

import (
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/imsfs/imsfs/uploader"
)

// desktop tells the user's desktop what became of their files (--notify): a notification for
// each file that fails, and one for each batch of files that become ready, through the
// freedesktop Notifications service on the session bus.
type desktop struct {
	uploader.NopObserver
	conn   *dbus.Conn
	log    *slog.Logger
	window time.Duration // files ready within this of the first of a batch go in its notification

	mu     sync.Mutex
	ready  []string    // protected by mu: the batch's paths
	timer  *time.Timer // protected by mu: ends the batch
	failed bool        // protected by mu: a notification failed to go (said once)
}

// The notification's urgency, as the specification numbers it.
const (
	urgencyNormal   byte = 1
	urgencyCritical byte = 2
)

// newDesktop connects to the session bus ($DBUS_SESSION_BUS_ADDRESS).
func newDesktop(log *slog.Logger) (*desktop, error) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return nil, fmt.Errorf("--notify: no session bus (is DBUS_SESSION_BUS_ADDRESS set, as in a desktop session?): %w", err)
	}
	return &desktop{conn: conn, log: log, window: 3 * time.Second}, nil
}

// Outcome notifies a failure at once, and adds a ready file to the batch.
func (d *desktop) Outcome(p string, ready bool, reason string) {
	if !ready {
		go d.send(path.Base(p)+" was not uploaded", p+": "+reason, urgencyCritical)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ready = append(d.ready, p)
	if d.timer == nil {
		d.timer = time.AfterFunc(d.window, d.flush)
	}
}

// flush sends the batch of ready files.
func (d *desktop) flush() {
	d.mu.Lock()
	batch := d.ready
	d.ready, d.timer = nil, nil
	d.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	summary := path.Base(batch[0]) + " is in the media library"
	if len(batch) > 1 {
		summary = fmt.Sprintf("%d files are in the media library", len(batch))
	}
	shown := batch[:min(len(batch), 5)]
	body := strings.Join(shown, "\n")
	if len(batch) > len(shown) {
		body += fmt.Sprintf("\nand %d more", len(batch)-len(shown))
	}
	d.send(summary, body, urgencyNormal)
}

// send asks the notification server to show one notification.
func (d *desktop) send(summary, body string, urgency byte) {
	obj := d.conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
	call := obj.Call("org.freedesktop.Notifications.Notify", 0, "imsfs", uint32(0), "", summary, body, []string{},
		map[string]dbus.Variant{"urgency": dbus.MakeVariant(urgency), "category": dbus.MakeVariant("transfer")}, int32(-1))
	if call.Err != nil {
		d.mu.Lock()
		first := !d.failed
		d.failed = true
		d.mu.Unlock()
		if first {
			d.log.Warn("desktop notification not shown (is a notification daemon running?)", "err", call.Err)
		}
	}
}

// Close sends what is waiting and leaves the bus.
func (d *desktop) Close() {
	d.mu.Lock()
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
	d.flush()
	d.conn.Close()
}
