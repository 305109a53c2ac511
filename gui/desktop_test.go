package gui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// run does the UI goroutine's work for d (polls wait for it).
func (fx *fixture) run(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		fx.drain()
		time.Sleep(2 * time.Millisecond)
	}
	fx.drain()
}

// start runs the poll loop with short intervals until the test ends.
func (fx *fixture) start(trayOpened, activate chan struct{}) {
	fx.ui.opts.Interval = 20 * time.Millisecond
	fx.ui.opts.SlowInterval = 200 * time.Millisecond
	fx.ui.opts.TrayOpenPoll = 400 * time.Millisecond
	fx.ui.opts.TrayOpened = trayOpened
	fx.ui.opts.Activate = activate
	ctx, cancel := context.WithCancel(context.Background())
	fx.t.Cleanup(func() {
		cancel()
		fx.run(50 * time.Millisecond) // let a poll in flight finish
	})
	fx.ui.Start(ctx)
}

// polls counts the polls made during d.
func (fx *fixture) polls(d time.Duration) int {
	n := fx.fake.Reads()
	fx.run(d)
	return fx.fake.Reads() - n
}

// TestPollOnlyWhileLooking: with the window hidden and nothing limited the
// loop asks the helper nothing (so it may idle-exit), not even when it
// leaves the bus; the tray menu opening polls at full rate for a while;
// limits make it poll slowly (the tray icon shows them); showing the
// window polls at full rate again.
func TestPollOnlyWhileLooking(t *testing.T) {
	fx := newFixture(t, testApps())
	var noTray atomic.Bool // the poll loop reads the tray's presence
	fx.ui.opts.TrayAvailable = func() bool { return !noTray.Load() }
	opened := make(chan struct{})
	fx.ui.closeWindow() // hides: a tray host is there
	if fx.ui.visible || fx.ui.looking() {
		t.Fatal("closing the window did not hide it")
	}
	fx.start(opened, nil)
	fx.run(100 * time.Millisecond) // the start poll: the helper runs, so ask whether limits exist
	if n := fx.polls(600 * time.Millisecond); n != 0 {
		t.Errorf("hidden, nothing limited: %d polls in 600 ms, want 0", n)
	}

	// the tray menu opens: full rate for TrayOpenPoll, then quiet again
	opened <- struct{}{}
	if n := fx.polls(350 * time.Millisecond); n < 5 {
		t.Errorf("tray menu open: %d polls in 350 ms at a 20 ms interval", n)
	}
	fx.run(150 * time.Millisecond)
	if n := fx.polls(500 * time.Millisecond); n != 0 {
		t.Errorf("tray menu open long ago: %d polls in 500 ms, want 0", n)
	}

	// the helper exits when idle: nobody looks, so nothing starts it again
	fx.fake.SetPresence(false)
	if n := fx.polls(300 * time.Millisecond); n != 0 {
		t.Errorf("helper left while hidden: %d polls, want 0", n)
	}
	if fx.ui.conn.state != stateConnected {
		t.Errorf("an idle exit while hidden shows state %v", fx.ui.conn.state)
	}

	// a limit set elsewhere (limits-changed signal): polls, then slowly
	fx.fake.SetAppLimit(context.Background(), "/usr/bin/steam", 1000, api.Limit{Down: 100_000})
	fx.run(100 * time.Millisecond)
	if !fx.ui.limitsSeen.Load() || !fx.ui.trayS.trayLimited {
		t.Fatalf("limit not seen: limitsSeen %v trayLimited %v", fx.ui.limitsSeen.Load(), fx.ui.trayS.trayLimited)
	}
	if n := fx.polls(time.Second); n < 3 || n > 7 {
		t.Errorf("hidden with a limit: %d polls in 1 s, want about 5 (every 200 ms)", n)
	}
	// without a tray host there is no icon to update: no slow polls
	noTray.Store(true)
	fx.run(250 * time.Millisecond)
	if n := fx.polls(600 * time.Millisecond); n != 0 {
		t.Errorf("hidden with a limit and no tray: %d polls, want 0", n)
	}
	noTray.Store(false)

	// the limit goes: quiet again
	fx.fake.RemoveAppLimit(context.Background(), "/usr/bin/steam", 1000)
	fx.run(300 * time.Millisecond)
	if n := fx.polls(600 * time.Millisecond); n != 0 {
		t.Errorf("limit removed, hidden: %d polls, want 0", n)
	}

	// the window is shown: polls at once and at full rate
	fx.ui.showWindow()
	if n := fx.polls(300 * time.Millisecond); n < 5 {
		t.Errorf("window shown: %d polls in 300 ms", n)
	}
}

// TestHiddenStartAsksOnlyARunningHelper: hidden at login with the helper
// not running, nothing is asked (asking would start it).
func TestHiddenStartAsksOnlyARunningHelper(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.ui.closeWindow()
	fx.fake.SetPresence(false)
	fx.start(nil, nil)
	if n := fx.polls(400 * time.Millisecond); n != 0 {
		t.Errorf("hidden start, helper not running: %d polls, want 0", n)
	}
}

// TestActivateShowsWindow: another launch (single instance) shows the
// hidden window, which then polls.
func TestActivateShowsWindow(t *testing.T) {
	fx := newFixture(t, testApps())
	activate := make(chan struct{}, 1)
	fx.ui.closeWindow()
	fx.start(nil, activate)
	fx.run(50 * time.Millisecond)
	activate <- struct{}{}
	fx.waitFor(func() bool { return fx.ui.visible }, "window shown on Activate")
	if n := fx.polls(200 * time.Millisecond); n < 3 {
		t.Errorf("activated window: %d polls in 200 ms", n)
	}
}

// TestNoTrayHost: --hidden without a tray host stays hidden (the login
// autostart must not pop the window open); the "start hidden" setting alone
// shows the window then; the window says once how to get a tray.
func TestNoTrayHost(t *testing.T) {
	fx := newFixture(t, testApps())
	noTray := func() bool { return false }
	cases := []struct {
		hiddenFlag, setting, tray, wantHidden bool
	}{
		{true, false, false, true}, // login autostart, no tray: stays hidden
		{true, false, true, true},
		{false, true, true, true},
		{false, true, false, false}, // started by hand with the setting, no tray: shows
		{false, false, false, false},
		{false, false, true, false},
	}
	for _, c := range cases {
		fx.ui.opts.Hidden = c.hiddenFlag
		fx.ui.settings.StartHidden = c.setting
		fx.ui.opts.TrayAvailable = func() bool { return c.tray }
		if got := fx.ui.startHidden(); got != c.wantHidden {
			t.Errorf("--hidden=%v setting=%v tray=%v: hidden %v, want %v", c.hiddenFlag, c.setting, c.tray, got, c.wantHidden)
		}
	}

	// the window shown with a tray host: no notice
	fx.ui.opts.TrayAvailable = func() bool { return true }
	fx.ui.showWindow()
	if strings.Contains(fx.ui.bnr.bannerKey, "No system tray") {
		t.Error("tray notice shown although a tray host is there")
	}
	// without one: the notice, once, with a button that dismisses it
	fx.ui.opts.TrayAvailable = noTray
	fx.ui.setVisible(false)
	fx.ui.showWindow()
	if !strings.Contains(fx.ui.bnr.bannerKey, "No system tray found") || !strings.Contains(fx.ui.bnr.bannerKey, "AppIndicator") {
		t.Fatalf("no tray notice: banner %q", fx.ui.bnr.bannerKey)
	}
	var gotIt *widget.Button
	for _, o := range test.LaidOutObjects(fx.ui.bnr.banner) {
		if b, ok := o.(*widget.Button); ok && b.Text == "Got it" {
			gotIt = b
		}
	}
	if gotIt == nil {
		t.Fatal("the tray notice has no Got it button")
	}
	test.Tap(gotIt)
	if strings.Contains(fx.ui.bnr.bannerKey, "No system tray") {
		t.Error("Got it did not remove the notice")
	}
	fx.ui.setVisible(false)
	fx.ui.showWindow()
	if strings.Contains(fx.ui.bnr.bannerKey, "No system tray") {
		t.Error("the tray notice came back in the same session")
	}
	// a new start (same preferences) does not say it again
	u2 := New(fx.app, fx.fake, Options{TrayAvailable: noTray})
	u2.do, u2.doWait = fx.ui.do, fx.ui.doWait
	u2.sayNoTray()
	if u2.bnr.noTrayNote {
		t.Error("the tray notice is said again at the next start")
	}
}

// fakeNotifier records notifications; fail makes Notify fail.
type fakeNotifier struct {
	mu   sync.Mutex
	sent []string
	fail error
	ch   chan string
}

func (n *fakeNotifier) Notify(summary, body string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return n.fail
	}
	s := summary + " | " + body
	n.sent = append(n.sent, s)
	n.ch <- s
	return nil
}

// TestTrayErrorsNotify: an action taken in the tray that fails is told in
// a desktop notification, not in the hidden window's banner; without a
// notification server the window opens with the banner; errors of actions
// taken in the window stay in its banner.
func TestTrayErrorsNotify(t *testing.T) {
	fx := newFixture(t, testApps())
	n := &fakeNotifier{ch: make(chan string, 10)}
	fx.ui.opts.Notifier = n
	fx.ui.closeWindow()
	fx.fake.SetLimitError(fmt.Errorf("%w: polkit: no authentication agent", ErrNotAuthorized))
	wait := func(what string) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			fx.drain()
			select {
			case s := <-n.ch:
				return s
			case <-time.After(10 * time.Millisecond):
			}
		}
		t.Fatalf("no notification for %s", what)
		return ""
	}

	findItem(t, findItem(t, fx.ui.TrayMenu(), "Steam").ChildMenu, "1 MB/s").Action()
	if s := wait("quick limit"); !strings.HasPrefix(s, "Could not limit Steam | not allowed") || !strings.Contains(s, "no authentication agent") {
		t.Errorf("quick limit notification %q", s)
	}
	findItem(t, fx.ui.TrayMenu(), "Pause all limits").Action()
	if s := wait("pause"); !strings.HasPrefix(s, "Could not pause limits | not allowed") {
		t.Errorf("pause notification %q", s)
	}
	fx.run(50 * time.Millisecond)
	if strings.Contains(fx.ui.bnr.bannerKey, "Could not") || fx.ui.visible {
		t.Errorf("tray error went to the window: visible %v banner %q", fx.ui.visible, fx.ui.bnr.bannerKey)
	}

	// no notification server: the window opens and says it
	n.mu.Lock()
	n.fail = errors.New("org.freedesktop.Notifications: no owner")
	n.mu.Unlock()
	findItem(t, findItem(t, fx.ui.TrayMenu(), "Firefox").ChildMenu, "5 MB/s").Action()
	fx.waitFor(func() bool { return fx.ui.visible && strings.Contains(fx.ui.bnr.bannerKey, "Could not limit Firefox") }, "window with the error")

	// an error of the window's own button stays in its banner
	n.mu.Lock()
	n.fail = nil
	n.mu.Unlock()
	test.Tap(fx.ui.hdr.pauseBtn)
	fx.waitFor(func() bool { return strings.Contains(fx.ui.bnr.bannerKey, "Could not pause limits") }, "banner for the pause button")
	fx.run(50 * time.Millisecond)
	n.mu.Lock()
	sent := len(n.sent)
	n.mu.Unlock()
	if sent != 2 {
		t.Errorf("%d notifications, want the 2 of tray actions: %q", sent, n.sent)
	}
}
