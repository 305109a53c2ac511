package gui

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// trayRun is RunTray on a recording tray against a Fake.
type trayRun struct {
	t      *testing.T
	tray   *trayApp
	fake   *Fake
	opened chan struct{}
	act    chan struct{}
	note   *fakeNotifier
	done   chan Handover
	cancel func()
}

func startTrayOnly(t *testing.T, apps []api.App, resume Handover) *trayRun {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_DIRS", t.TempDir())
	r := &trayRun{t: t, tray: &trayApp{App: test.NewTempApp(t)}, fake: NewFake(), opened: make(chan struct{}),
		act: make(chan struct{}), note: &fakeNotifier{ch: make(chan string, 10)}, done: make(chan Handover, 1)}
	r.fake.SetApps(apps)
	opts := Options{Interval: 20 * time.Millisecond, SlowInterval: 200 * time.Millisecond, TrayOpenPoll: 400 * time.Millisecond,
		TrayOpened: r.opened, Activate: r.act, Notifier: r.note, TrayAvailable: func() bool { return true }, Resume: resume}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	t.Cleanup(cancel)
	go func() { r.done <- RunTray(ctx, r.tray.App, r.tray, r.fake, opts) }()
	return r
}

// menu waits until the tray's menu has an item starting with prefix.
func (r *trayRun) menu(prefix string) *fyne.Menu {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.tray.mu.Lock()
		m := r.tray.menu
		r.tray.mu.Unlock()
		if m != nil {
			for _, it := range m.Items {
				if strings.HasPrefix(it.Label, prefix) {
					return m
				}
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the tray-only menu never listed %q", prefix)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ended waits for RunTray to return.
func (r *trayRun) ended() Handover {
	r.t.Helper()
	select {
	case h := <-r.done:
		return h
	case <-time.After(5 * time.Second):
		r.t.Fatal("RunTray did not return")
	}
	return Handover{}
}

// menuShape is a menu's labels, check marks, disabled items and submenus.
func menuShape(m *fyne.Menu) []string {
	var out []string
	for _, it := range m.Items {
		s := it.Label
		if it.Checked {
			s += " [x]"
		}
		if it.Disabled {
			s += " (disabled)"
		}
		out = append(out, s)
		if it.ChildMenu != nil {
			for _, c := range menuShape(it.ChildMenu) {
				out = append(out, "  "+c)
			}
		}
	}
	return out
}

// TestTrayOnly runs the tray-only mode on a recording tray: it asks
// nothing of a helper that does not run and polls no more while nobody
// looks; its menu, once the menu opened, is the window's tray menu item
// for item; a quick limit reaches the helper and turns the icon; "Custom…"
// hands over to the window with the app's limit dialog, "Open" and
// another launch to the window, Quit ends it.
func TestTrayOnly(t *testing.T) {
	r := startTrayOnly(t, testApps(), Handover{})
	r.fake.SetPresence(false)
	time.Sleep(100 * time.Millisecond)
	if n := r.fake.Reads(); n != 0 {
		t.Errorf("hidden, helper not running: %d reads", n)
	}
	r.fake.SetPresence(true)
	r.opened <- struct{}{}
	m := r.menu("Steam")

	fx := newFixture(t, testApps())
	if got, want := menuShape(m), menuShape(fx.ui.TrayMenu()); !reflect.DeepEqual(got, want) {
		t.Errorf("tray-only menu\n%q\nwindow's tray menu\n%q", got, want)
	}
	time.Sleep(500 * time.Millisecond) // TrayOpenPoll is over: no more polls, nothing limited
	n := r.fake.Reads()
	time.Sleep(300 * time.Millisecond)
	if d := r.fake.Reads() - n; d != 0 {
		t.Errorf("%d reads while nobody looks and nothing is limited", d)
	}

	findItem(t, findItem(t, m, "Steam").ChildMenu, "1 MB/s").Action()
	if c, ok := r.fake.WaitCall(3 * time.Second); !ok || c.Method != "SetAppLimit" || c.Exe != "/usr/bin/steam" || c.Limit.Down != 1_000_000 {
		t.Fatalf("quick limit from the tray-only menu: %+v (ok %v)", c, ok)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.tray.mu.Lock()
		icon := r.tray.icon
		r.tray.mu.Unlock()
		if icon == assets.TrayLimitedIcon {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tray-only icon did not turn limited")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if it := findItem(t, r.menu("Steam (limited)"), "Steam"); !findItem(t, it.ChildMenu, "1 MB/s").Checked {
		t.Error("1 MB/s not checked after the quick limit")
	}

	findItem(t, findItem(t, r.menu("Steam"), "Steam").ChildMenu, "Custom…").Action()
	h := r.ended()
	if h.Next != NextWindow || h.LimitApp == nil || h.LimitApp.Exe != "/usr/bin/steam" {
		t.Errorf("Custom… handed over %+v, want the window with Steam's limit dialog", h)
	}

	r = startTrayOnly(t, testApps(), Handover{})
	r.act <- struct{}{} // another launch
	if h := r.ended(); h.Next != NextWindow {
		t.Errorf("another launch: %+v", h)
	}
	r = startTrayOnly(t, testApps(), Handover{})
	findItem(t, r.menu("Open ChadThrottle"), "Open ChadThrottle").Action()
	if h := r.ended(); h.Next != NextWindow || h.LimitApp != nil {
		t.Errorf("Open: %+v", h)
	}
	r = startTrayOnly(t, testApps(), Handover{})
	findItem(t, r.menu("Quit"), "Quit").Action()
	if h := r.ended(); h.Next != NextQuit {
		t.Errorf("Quit: %+v", h)
	}
}

// TestTrayOnlyNotifies: a tray action that fails is notified; a quota
// event is notified once, also across a hand-over (QuotaSeen).
func TestTrayOnlyNotifies(t *testing.T) {
	r := startTrayOnly(t, testApps(), Handover{})
	r.opened <- struct{}{}
	m := r.menu("Steam")
	r.fake.SetLimitError(errors.New("no room"))
	findItem(t, findItem(t, m, "Steam").ChildMenu, "Block").Action()
	select {
	case s := <-r.note.ch:
		if !strings.HasPrefix(s, "Could not block Steam") {
			t.Errorf("notification %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification for a failing tray action")
	}
	r.cancel()
	r.ended()

	fx := newFixture(t, testApps())
	q := api.Quota{Exe: "/usr/bin/steam", UID: 1000, Period: api.QuotaDay, Bytes: 1e9, Used: 9e8, State: api.QuotaWarning, PeriodStart: 1}
	if n := fx.ui.quotaNotes([]api.Quota{q}); len(n) != 1 || !strings.Contains(n[0].summary, "Steam used 80 %") {
		t.Fatalf("quota notes %+v", n)
	}
	h := Handover{Next: NextTray, QuotaSeen: fx.ui.quotaSeen}
	back, err := DecodeHandover(h.Encode())
	if err != nil {
		t.Fatal(err)
	}
	next := trayCore{view: newView(), quotaSeen: back.QuotaSeen}
	if n := next.quotaNotes([]api.Quota{q}); len(n) != 0 {
		t.Errorf("a quota state the window notified is notified again after the hand-over: %+v", n)
	}
}

// TestHandover: a hand-over survives its encoding; bad input is refused.
func TestHandover(t *testing.T) {
	a := api.App{ID: "1000:/usr/bin/steam", Name: "Steam", Exe: "/usr/bin/steam", UID: 1000}
	h := Handover{Next: NextWindow, Host: "pi@box", App: a.ID, LimitApp: &a, Notice: "x", QuotaSeen: map[string]string{"1000:/x@1": "warning"}}
	got, err := DecodeHandover(h.Encode())
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip %+v, %v", got, err)
	}
	for _, bad := range []string{"", "{", `{"next":7}`, `{"next":-1}`, strings.Repeat(" ", maxHandover+1)} {
		if _, err := DecodeHandover(bad); err == nil {
			t.Errorf("DecodeHandover(%.20q) accepted", bad)
		}
	}
}

// TestCloseWindowHandsOver: with TrayHandOver, closing the window to a
// tray ends the Fyne app and Run says NextTray; a hand-over to the window
// shows it although the setting says start hidden.
func TestCloseWindowHandsOver(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.ui.settings.StartHidden = true // and a tray host: a fresh start stays in the tray
	fx.app.Preferences().SetBool(prefStartHidden, true)
	if !fx.ui.startHidden() || !StartsInTray(fx.app, fx.ui.opts) {
		t.Error("the start-hidden setting with a tray host shows the window")
	}
	fx.ui.opts.Resume = Handover{Next: NextWindow} // but the tray asked for the window
	if fx.ui.startHidden() {
		t.Error("the window stays hidden after the tray-only mode asked for it")
	}
	if StartsInTray(fx.app, fx.ui.opts) {
		t.Error("StartsInTray after the tray-only mode asked for the window")
	}
	fx.ui.opts.Resume = Handover{}
	fx.ui.opts.TrayHandOver = true
	fx.ui.closeWindow()
	if fx.app.quits != 1 || fx.ui.next != NextTray {
		t.Errorf("close with TrayHandOver: quits %d, next %v", fx.app.quits, fx.ui.next)
	}
}

// appNotifier records app notifications and their click functions.
type appNotifier struct {
	fakeNotifier
	clicks chan func()
}

func (n *appNotifier) NotifyApp(summary, body, icon string, onClick func()) error {
	n.clicks <- onClick
	return n.Notify(summary, body)
}

// TestTrayOnlyQuotaClick: a click on a quota notification sent by the
// tray-only mode hands over to the window on the app's row; without a
// notification server the window's banner says it when it opens.
func TestTrayOnlyQuotaClick(t *testing.T) {
	n := &appNotifier{fakeNotifier{ch: make(chan string, 4)}, make(chan func(), 4)}
	to := &trayOnly{}
	to.view = newView()
	to.opts.Notifier = n
	to.do = func(fn func()) { fn() }
	q := api.Quota{Exe: "/usr/bin/steam", UID: 1000, Period: api.QuotaDay, Bytes: 1e9, Used: 1e9, State: api.QuotaReached,
		Action: api.QuotaBlock, PeriodStart: 1}
	to.quotaEvents([]api.Quota{q})
	select {
	case click := <-n.clicks:
		click()
	case <-time.After(5 * time.Second):
		t.Fatal("no quota notification")
	}
	if to.next == nil || to.next.Next != NextWindow || to.next.App != "1000:/usr/bin/steam" {
		t.Errorf("click handed over %+v, want the window on 1000:/usr/bin/steam", to.next)
	}

	quiet := &trayOnly{}
	quiet.view = newView()
	quiet.quotaEvents([]api.Quota{q})
	quiet.showWindow()
	if quiet.next == nil || !strings.Contains(quiet.next.Notice, "steam reached its quota and is blocked") {
		t.Errorf("without notifications the window gets %+v", quiet.next)
	}
}
