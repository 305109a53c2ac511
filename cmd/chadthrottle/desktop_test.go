//go:build linux

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// notificationServer is a minimal org.freedesktop.Notifications.
type notificationServer struct {
	mu   sync.Mutex
	got  []notification
	next uint32
	caps []string
}

type notification struct {
	app, icon, summary, body string
	replaces                 uint32
	hints                    map[string]dbus.Variant
	timeout                  int32
}

func (s *notificationServer) GetCapabilities() ([]string, *dbus.Error) { return s.caps, nil }

func (s *notificationServer) Notify(app string, replaces uint32, icon, summary, body string, actions []string,
	hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, notification{app, icon, summary, body, replaces, hints, timeout})
	if replaces != 0 {
		return replaces, nil
	}
	s.next++
	return s.next, nil
}

func (s *notificationServer) received() []notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notification(nil), s.got...)
}

// startNotificationServer serves org.freedesktop.Notifications on the bus
// at addr until the test ends.
func startNotificationServer(t *testing.T, addr string, caps ...string) *notificationServer {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &notificationServer{caps: caps}
	if err := conn.Export(s, notifyPath, notifyName); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(notifyName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", notifyName, r, err)
	}
	return s
}

// TestNotifier sends notifications over a real session bus to a minimal
// notification server: names the app and its .desktop entry, escapes the
// body where it is markup, replaces the previous notification, and fails
// (so the window opens instead) when no server is there.
func TestNotifier(t *testing.T) {
	bus := bustest.StartSessionBus(t)
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := &notifier{conn: conn}
	if err := n.Notify("Could not limit Firefox", "x"); err == nil {
		t.Fatal("Notify without a notification server did not fail")
	}

	srv := startNotificationServer(t, bus.Address, "body", "body-markup")
	if err := n.Notify("Could not limit Firefox", "not allowed (polkit: <no agent> & no password)"); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify("Could not pause limits", "the helper did not answer in time"); err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != 2 {
		t.Fatalf("server received %d notifications, want 2", len(got))
	}
	first := got[0]
	if first.app != "ChadThrottle" || first.icon != AppID || first.summary != "Could not limit Firefox" ||
		first.body != "not allowed (polkit: &lt;no agent&gt; &amp; no password)" || first.replaces != 0 {
		t.Errorf("first notification %+v", first)
	}
	if v, _ := first.hints["desktop-entry"].Value().(string); v != AppID {
		t.Errorf("desktop-entry hint %v", first.hints["desktop-entry"])
	}
	if got[1].replaces != 1 {
		t.Errorf("second notification replaces %d, want the first (1)", got[1].replaces)
	}
}

// visibleWindows returns the ids of the mapped top-level windows titled
// ChadThrottle on display.
func visibleWindows(t *testing.T, display string) []string {
	t.Helper()
	cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^ChadThrottle$")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: none found
		t.Fatalf("xdotool search: %v", err)
	}
	return strings.Fields(string(out))
}

// launch runs the GUI binary once more with env and waits for it to end.
func launch(t *testing.T, env []string, args ...string) (code int, out string, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildGUI(t), args...)
	home := t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + home, "LANG=C.UTF-8"}, env...)
	start := time.Now()
	b, err := cmd.CombinedOutput()
	took = time.Since(start)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run chadthrottle: %v", err)
	}
	return code, string(b), took
}

// TestSingleInstance runs the real binary under Xvfb with a private
// session bus and a tray host: the first (hidden, in the tray) owns
// io.github.chadthrottle; a second --hidden launch (login autostart while
// it runs) exits 0 and shows nothing; a launch from the menu exits 0 and
// the first shows its window (the same process: it executes itself to
// leave the tray-only mode, and its tray item registers again); no other
// tray icon appears.
func TestSingleInstance(t *testing.T) {
	testenv.RequireTool(t, "xdotool")
	display := testenv.StartXvfb(t)
	host := startTrayHost(t)
	// no helper: the window says so; this test is about the session
	env := []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + host.addr,
		"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/chadthrottle-test"}
	first := startGUI(t, env, "--hidden")
	host.waitItem(t, first)
	pid := uint32(first.cmd.Process.Pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var owner uint32
		err := host.conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, AppID).Store(&owner)
		if err == nil && owner == pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not owned by the first instance (pid %d): owner %d, %v", AppID, pid, owner, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if w := visibleWindows(t, display); len(w) != 0 {
		t.Fatalf("--hidden with a tray host shows windows %v", w)
	}

	code, out, took := launch(t, env, "--hidden")
	t.Logf("second --hidden launch: exit %d after %v: %q", code, took.Round(time.Millisecond), out)
	if code != 0 {
		t.Errorf("second --hidden launch exit %d, want 0", code)
	}
	time.Sleep(time.Second)
	if w := visibleWindows(t, display); len(w) != 0 {
		t.Errorf("a second --hidden launch showed windows %v", w)
	}

	code, out, took = launch(t, env)
	t.Logf("second launch: exit %d after %v: %q", code, took.Round(time.Millisecond), out)
	if code != 0 {
		t.Errorf("second launch exit %d, want 0", code)
	}
	var wins []string
	deadline = time.Now().Add(20 * time.Second)
	for len(wins) == 0 {
		if wins = visibleWindows(t, display); len(wins) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the first instance did not show its window")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(wins) != 1 {
		t.Errorf("%d ChadThrottle windows, want 1", len(wins))
	}
	if got := xdo(t, display, "getwindowpid", wins[0]); got != strconv.Itoa(int(pid)) {
		t.Errorf("the window belongs to pid %s, not the first instance %d", got, pid)
	}
	screenshot(t, display, "single-instance-window")
	// the first instance showed its window by executing itself (its tray
	// ran without Fyne's driver): its item registered again, from the
	// same process; no other item did
	for more := true; more; {
		select {
		case it := <-host.items:
			if p := host.ownerPID(t, it[0]); p != int(pid) {
				t.Errorf("a second tray item registered: %v (pid %d)", it, p)
			}
		default:
			more = false
		}
	}
	select {
	case <-first.exited:
		t.Fatal("the first instance exited")
	default:
	}
}
