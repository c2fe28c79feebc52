package test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/imsfs/imsfs/test/testutil"
)

// notification is one Notify call a notification server got.
type notification struct {
	Summary, Body string
	Urgency       byte
}

// notificationServer answers org.freedesktop.Notifications.Notify on a bus, as a desktop's
// notification daemon does, and hands each notification to the test.
type notificationServer struct{ got chan notification }

func (s *notificationServer) Notify(app string, replaces uint32, icon, summary, body string, actions []string,
	hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	n := notification{Summary: summary, Body: body}
	if u, ok := hints["urgency"]; ok {
		n.Urgency, _ = u.Value().(byte)
	}
	s.got <- n
	return 1, nil
}

// sessionBus starts a dbus-daemon of its own and returns its address.
func sessionBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		testutil.SkipOutsideCI(t, "no dbus-daemon (apt-get install dbus-daemon)")
	}
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1", "--address=unix:dir="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// What it says goes to the test's log when the test fails, not to make test's output
	// (as root it warns that it cannot raise its file limit, which concerns nothing here).
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("dbus-daemon said:\n%s", stderr.String())
		}
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon gave no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// TestNotifyTellsTheDesktop: with --notify, a mount on a real session bus (dbus-daemon) tells
// the notification server once for a batch of files that become ready, and at once, urgently,
// for a file that fails.
func TestNotifyTellsTheDesktop(t *testing.T) {
	addr := sessionBus(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv := &notificationServer{got: make(chan notification, 16)}
	if err := conn.Export(srv, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.Notifications", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.Notifications: %v %v", reply, err)
	}
	next := func(what string) notification {
		t.Helper()
		select {
		case n := <-srv.got:
			return n
		case <-time.After(60 * time.Second):
			t.Fatalf("no notification: %s", what)
			return notification{}
		}
	}

	emu := startEmulator(t)
	m := startMountEnv(t, emu, "", []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=emulator", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + accountSecret,
		"DBUS_SESSION_BUS_ADDRESS=" + addr}, "--notify")
	for _, name := range []string{"a.mp4", "b.mp4", "c.mp4"} {
		if err := os.WriteFile(filepath.Join(m.Dir, "video", name), randomBytes(t, 32<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := next("three files ready")
	if n.Summary != "3 files are in the media library" || n.Urgency != 1 ||
		!strings.Contains(n.Body, "video/a.mp4") || !strings.Contains(n.Body, "video/c.mp4") {
		t.Errorf("the batch of ready files: %+v", n)
	}

	setFaults(t, emu, "media.ready=1:fail")
	if err := os.WriteFile(filepath.Join(m.Dir, "video", "d.mp4"), randomBytes(t, 32<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	n = next("a failed file")
	if n.Summary != "d.mp4 was not uploaded" || n.Urgency != 2 || !strings.Contains(n.Body, "video/d.mp4: ") || !strings.Contains(n.Body, "PrepareFail") {
		t.Errorf("the failed file: %+v", n)
	}
	select {
	case n := <-srv.got:
		t.Errorf("one more notification than the files called for: %+v", n)
	case <-time.After(500 * time.Millisecond):
	}
}
