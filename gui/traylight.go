package gui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The tray-only mode (issue #17's cost targets): while ChadThrottle sits
// in the tray with no window, the process runs the tray icon and its menu
// without Fyne's driver. Fyne's GLFW driver, once running, initialises X
// and polls its events 60 times a second even with no window shown (about
// 1 % of a core and 130 MB); the tray-only mode draws nothing, holds no X
// connection and wakes only for the helper (polls as the tray needs them)
// and the tray host (D-Bus). It builds the same menu as the window's tray
// (tray.go, through trayCore). What needs the window ("Open ChadThrottle",
// "Custom…", a click on a quota notification, another launch) ends
// RunTray with a Handover to the window; cmd/chadthrottle then runs the
// window in a fresh process image (exec), and closing the window hands
// back to the tray-only mode the same way.

// Next is what the process does once a mode ended.
type Next int

const (
	// NextQuit ends the program.
	NextQuit Next = iota
	// NextWindow shows the window.
	NextWindow
	// NextTray runs the tray-only mode.
	NextTray
)

// Handover is what one mode tells the next one.
type Handover struct {
	Next Next `json:"next"`
	// Host is the machine the window looked at (SwitchHost), "" for this
	// computer.
	Host string `json:"host,omitempty"`
	// App: select this app's row in the window.
	App string `json:"app,omitempty"`
	// LimitApp: open this app's limit dialog in the window.
	LimitApp *api.App `json:"limit_app,omitempty"`
	// Notice: show this in the window's banner (an error the tray could
	// not notify).
	Notice string `json:"notice,omitempty"`
	// QuotaSeen: the quota states already notified, so the next mode does
	// not notify them again.
	QuotaSeen map[string]string `json:"quota_seen,omitempty"`
}

// callsAtExit bounds how long a mode that ends waits for its helper calls.
const callsAtExit = 5 * time.Second

// maxHandover bounds an encoded Handover (it travels in the environment).
const maxHandover = 64 << 10

// Encode returns h as text for DecodeHandover.
func (h Handover) Encode() string {
	if len(h.QuotaSeen) > 256 { // keep the newest? any will do: at worst one is notified again
		h.QuotaSeen = nil
	}
	b, _ := json.Marshal(h)
	return string(b)
}

// DecodeHandover reads what Encode wrote.
func DecodeHandover(s string) (Handover, error) {
	var h Handover
	if len(s) > maxHandover {
		return h, errors.New("handover too long")
	}
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return Handover{}, fmt.Errorf("handover: %w", err)
	}
	if h.Next < NextQuit || h.Next > NextTray {
		return Handover{}, fmt.Errorf("handover: next %d", h.Next)
	}
	return h, nil
}

// StartsInTray reports whether a start with opts runs in the tray only: when
// asked to (--hidden, or the "start hidden" setting with a tray host
// present), unless the tray-only mode handed over to the window. The
// window's Run decides the same way (startHidden).
func StartsInTray(a fyne.App, opts Options) bool {
	switch {
	case opts.Resume.Next == NextWindow || opts.OpenStatistics != "":
		return false
	case opts.Hidden:
		return true
	case loadSettings(a.Preferences()).StartHidden:
		return opts.TrayAvailable != nil && opts.TrayAvailable()
	}
	return false
}

// trayOnly is the tray-only mode: trayCore's menu on tray, run by one
// loop goroutine (RunTray's) that stands for Fyne's UI goroutine.
type trayOnly struct {
	trayCore
	queue  chan func()
	next   *Handover // set: RunTray returns it
	notice string    // a quota event not notified (no notification server): the window's banner says it
}

// RunTray runs the tray-only mode on tray (a StatusNotifierItem that does
// not need Fyne's driver: NewSystray) until ctx ends or the menu asks for
// the window or to quit; a's preferences give the settings, a is not run.
func RunTray(ctx context.Context, a fyne.App, tray desktop.App, b Backend, opts Options) Handover {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &trayOnly{queue: make(chan func(), 16)}
	t.trayCore.init(a.Preferences(), b, opts, t)
	t.quotaSeen = opts.Resume.QuotaSeen
	t.do = func(fn func()) {
		select {
		case t.queue <- fn:
		case <-ctx.Done():
		}
	}
	t.doWait = func(fn func()) {
		done := make(chan struct{})
		t.do(func() { fn(); close(done) })
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	t.tray = loopTray{App: tray, do: t.do}
	t.tray.SetSystemTrayIcon(assets.TrayIcon)
	t.refreshTray(true)
	cancels := t.watchHelper(func() {
		if t.conn.state != stateMissing {
			t.setState(stateRestarting, "")
		}
	})
	quotas := watchQuotas(ctx, b, t.helperRunning, func(qs []api.Quota) { t.do(func() { t.quotaEvents(qs) }) })
	go t.pollLoop(ctx, t.poll, append(cancels, quotas)...)
	t.onTraySignals(ctx)
	for t.next == nil {
		select {
		case <-ctx.Done():
			return Handover{Next: NextQuit}
		case fn := <-t.queue:
			fn()
		}
	}
	h := *t.next
	h.Host, h.QuotaSeen = t.host, t.quotaSeen
	t.waitCalls(callsAtExit)
	return h
}

// poll fetches a snapshot and applies it on the loop.
func (t *trayOnly) poll(ctx context.Context) {
	var r pollResult
	if !t.fetch(ctx, &r) {
		return
	}
	printable(&r)
	t.doWait(func() { t.apply(&r) })
}

// apply takes a poll result in: what the menu and icon show.
func (t *trayOnly) apply(r *pollResult) {
	if r.err != nil {
		t.setState(errorState(r.err, t.conn.state))
		t.needStatus.Store(true)
		return
	}
	if r.status != nil {
		t.conn.status = *r.status
	}
	if r.perms != nil {
		t.conn.perms, t.conn.permsKnown = *r.perms, true
	}
	if t.conn.permsKnown && t.conn.perms.Monitor == api.PermNo {
		t.setState(stateUnauthorized, "")
		return
	}
	t.view.setApps(r.snap.Apps)
	anyLimit := false
	for i := range r.snap.Apps {
		anyLimit = anyLimit || limited(&r.snap.Apps[i])
	}
	t.limitsSeen.Store(anyLimit)
	t.setState(stateConnected, "")
	t.refreshTray(false)
}

// setState records the helper's state; the menu shows a change at once.
func (t *trayOnly) setState(s connState, detail string) {
	t.conn.stateDetail = detail
	if s != t.conn.state {
		t.conn.state = s
		t.refreshTray(true)
	}
}

// handOver ends RunTray with h.
func (t *trayOnly) handOver(h Handover) {
	if t.next == nil {
		if h.Notice == "" {
			h.Notice = t.notice
		}
		t.next = &h
	}
}

func (t *trayOnly) showWindow()               { t.handOver(Handover{Next: NextWindow}) }
func (t *trayOnly) showLimitDialog(a api.App) { t.handOver(Handover{Next: NextWindow, LimitApp: &a}) }
func (t *trayOnly) quit()                     { t.handOver(Handover{Next: NextQuit}) }
func (t *trayOnly) refreshLimits()            {}

// setPaused pauses or resumes the caller's limits.
func (t *trayOnly) setPaused(paused bool) {
	if t.conn.status.Paused == paused {
		return
	}
	t.call(func(ctx context.Context) error { return t.b.SetPaused(ctx, paused) }, func(err error) {
		if err != nil {
			t.report(true, "Could not "+map[bool]string{true: "pause", false: "resume"}[paused]+" limits", explain(err))
			return
		}
		t.conn.status.Paused = paused
		t.refreshTray(true)
	})
}

// report sends an error out as a desktop notification; without a
// notification server the window opens with it in its banner, so the error
// is never silent.
func (t *trayOnly) report(_ bool, summary, detail string) {
	n := t.opts.Notifier
	open := func() { t.handOver(Handover{Next: NextWindow, Notice: summary + ": " + detail}) }
	if n == nil {
		open()
		return
	}
	go func() {
		if err := n.Notify(summary, detail); err != nil {
			t.do(open)
		}
	}()
}

// quotaEvents notifies the quotas whose state changed; a click on one
// shows the app's row in the window.
func (t *trayOnly) quotaEvents(qs []api.Quota) {
	for _, q := range t.quotaNotes(qs) {
		an, ok := t.opts.Notifier.(AppNotifier)
		switch {
		case t.opts.Notifier == nil: // no session bus: the window's banner says it when it opens
			t.notice = q.summary + ": " + q.body
			continue
		case !ok:
			go t.opts.Notifier.Notify(q.summary, q.body)
			continue
		}
		open := func() { t.do(func() { t.handOver(Handover{Next: NextWindow, App: q.appID}) }) }
		go an.NotifyApp(q.summary, q.body, q.icon, open)
	}
}
