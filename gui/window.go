package gui

import (
	"context"
	"time"
)

// startHidden decides whether the window stays hidden at start: when asked
// to (--hidden or the setting) and a tray host shows the icon. --hidden
// (the login autostart) keeps the window hidden without a tray host too:
// popping a window open at every login is worse than waiting unseen
// (nothing is polled then); a tray host that appears later shows the icon,
// and launching ChadThrottle again shows the window. The setting alone,
// with the app started by hand, shows the window when there is no tray.
func (u *UI) startHidden() bool {
	switch {
	case u.opts.Resume.Next == NextWindow: // the tray-only mode was asked for the window
		return false
	case u.opts.Hidden:
		return true
	case u.settings.StartHidden:
		return u.tray != nil && u.trayAvailable()
	}
	return false
}

// setVisible records whether the window is shown (UI goroutine).
func (u *UI) setVisible(v bool) {
	u.visible = v
	u.shown.Store(v)
}

// looking reports whether someone looks at the data: the window is shown
// or the tray menu opened lately (any goroutine).
func (u *trayCore) looking() bool {
	return u.shown.Load() || time.Now().UnixNano() < u.trayOpenUntil.Load()
}

// pollWait is how long the poll loop waits for the next poll; 0 means
// until something asks for one (any goroutine).
func (u *trayCore) pollWait() time.Duration {
	var d time.Duration
	switch {
	case u.looking():
		d = u.opts.Interval
	case u.limitsSeen.Load() && u.trayAvailable():
		d = u.opts.SlowInterval
	}
	if d > 0 {
		d = max(d, time.Duration(u.retryAfter.Load()))
	}
	return d
}

// Polls of an unreachable remote machine back off: each one runs ssh,
// which may wait for a TCP timeout. An action in the window still polls at
// once (requestPoll).
const (
	firstRetry = 2 * time.Second
	maxRetry   = 30 * time.Second
)

// backOff records whether the last poll found the remote machine
// unreachable and doubles the wait before the next (any goroutine).
func (u *trayCore) backOff(unreachable bool) {
	if !unreachable {
		u.retryAfter.Store(0)
		return
	}
	next := min(max(2*time.Duration(u.retryAfter.Load()), firstRetry), maxRetry)
	u.retryAfter.Store(int64(next))
}

// helperRunning asks, without starting it, whether the helper runs; when
// that cannot be told it answers true (one poll tells more).
func (u *trayCore) helperRunning(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, u.opts.CallTimeout)
	defer cancel()
	up, err := u.b.Running(cctx)
	return up || err != nil
}

func (u *trayCore) requestPoll() {
	select {
	case u.pollNow <- struct{}{}:
	default:
	}
}

func (u *trayCore) trayAvailable() bool {
	return u.tray != nil && u.opts.TrayAvailable != nil && u.opts.TrayAvailable()
}

// closeWindow hides to the tray when a tray host is there, else quits.
func (u *UI) closeWindow() {
	u.saveLayout()
	if u.trayAvailable() && u.opts.TrayHandOver {
		u.next = NextTray
		u.app.Quit()
		return
	}
	if u.trayAvailable() {
		u.win.Hide()
		u.setVisible(false)
		return
	}
	u.quit()
}

// showWindow brings the window up (tray "Open", another launch) and polls
// at once: nothing may have been polled while it was hidden.
func (u *UI) showWindow() {
	if !u.visible {
		u.setVisible(true)
		u.redraw()
		u.requestPoll()
	}
	u.win.Show()
	u.win.RequestFocus()
	u.sayNoTray()
}

// prefNoTraySaid records that the window explained how to get a tray.
const prefNoTraySaid = "no-tray-notice-said"

// sayNoTray explains once, in the window's banner, how to get a tray when
// there is no tray host (UI goroutine).
func (u *UI) sayNoTray() {
	p := u.app.Preferences()
	if u.bnr.noTrayNote || p.Bool(prefNoTraySaid) || u.trayAvailable() {
		return
	}
	p.SetBool(prefNoTraySaid, true)
	u.bnr.noTrayNote = true
	u.updateBanner()
}

// NoTrayNotice is what the window says, once, when there is no tray host.
const NoTrayNotice = "No system tray found. Without one, closing this window quits ChadThrottle, and when it starts at " +
	"login it stays out of sight until you open it from the applications menu. On GNOME, install the AppIndicator " +
	"extension (package gnome-shell-extension-appindicator) and turn it on in Extensions; KDE Plasma, Xfce, " +
	"Cinnamon and MATE have a tray."

// resume takes in what the tray-only mode handed over: the app to show,
// its limit dialog, a notice for the banner (UI goroutine). The host is
// the caller's: Options.Host.
func (u *UI) resume(h Handover) {
	if h.Notice != "" {
		u.notify(h.Notice)
	}
	switch {
	case h.LimitApp != nil:
		u.showLimitDialog(*h.LimitApp)
	case h.App != "":
		u.selectApp(h.App)
	}
}
