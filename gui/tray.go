package gui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Quick limits offered in the tray, bytes per second.
var quickLimits = []uint64{100_000, 1_000_000, 5_000_000}

// trayTopApps is how many apps the tray menu lists.
const trayTopApps = 5

// trayState remembers what the tray menu shows so it is rebuilt only when
// that changes (rebuilding resets an open menu).
type trayState struct {
	key           string
	limitsChanged bool
}

// trayRateRefresh is how often the tray menu may be rebuilt for rates and
// order alone: a rebuild costs CPU and resets a menu that is open.
const trayRateRefresh = 15 * time.Second

// refreshTray rebuilds the tray menu and icon when their content changed
// (UI goroutine). Rates alone refresh at most every trayRateRefresh.
func (u *trayCore) refreshTray(force bool) {
	if u.tray == nil {
		return
	}
	active := false
	for i := range u.view.all {
		active = active || limited(&u.view.all[i])
	}
	active = active && !u.conn.status.Paused && u.conn.state == stateConnected
	if active != u.trayS.trayLimited {
		u.trayS.trayLimited = active
		if active {
			u.tray.SetSystemTrayIcon(assets.TrayLimitedIcon)
		} else {
			u.tray.SetSystemTrayIcon(assets.TrayIcon)
		}
	}
	key := u.trayKey()
	if !force && !u.trayS.trayState.limitsChanged {
		if key == u.trayS.trayState.key {
			return
		}
		// limits, pause and connection changes show at once; the order
		// of the top apps and their rates at most every trayRateRefresh
		urgent := strings.SplitN(key, "|", 2)[0] != strings.SplitN(u.trayS.trayState.key, "|", 2)[0]
		if !urgent && time.Since(u.trayS.trayBuilt) < trayRateRefresh {
			return
		}
	}
	u.trayS.trayListed = u.trayS.trayListed[:0]
	for _, a := range topApps(u.view.all, trayTopApps) {
		u.trayS.trayListed = append(u.trayS.trayListed, a.ID)
	}
	u.trayS.trayState = trayState{}
	u.trayS.trayState.key = u.trayKey()
	u.trayS.trayBuilt = time.Now()
	u.tray.SetSystemTrayMenu(u.TrayMenu())
}

// trayKey summarises the menu: what must show at once (state, pause,
// limits of the listed apps) before "|", order and rates after it.
func (u *trayCore) trayKey() string {
	var b, r strings.Builder
	fmt.Fprintf(&b, "%d %v %v %v;", u.conn.state, u.conn.status.Paused, u.readOnly(), u.downloadAvailable())
	top := topApps(u.view.all, trayTopApps)
	for _, id := range u.trayS.trayListed { // the apps the menu lists now
		if cur, ok := u.view.app(id); ok {
			fmt.Fprintf(&b, "%s %v;", cur.ID, cur.Limit)
		} else { // not urgent: its items still work (limits are rules on the executable), and a rebuild resets an open menu
			fmt.Fprintf(&r, "%s gone;", id)
		}
	}
	for _, a := range top {
		fmt.Fprintf(&r, "%s %s;", a.ID, trayRates(&a, u.settings.Unit))
	}
	return b.String() + "|" + r.String()
}

func trayRates(a *api.App, unit Unit) string {
	return "↓ " + FormatRate(a.RxRate, unit) + "  ↑ " + FormatRate(a.TxRate, unit)
}

// TrayMenu builds the tray menu from the current state: open, the top
// apps with quick limits, pause/resume, quit.
func (u *trayCore) TrayMenu() *fyne.Menu {
	open := fyne.NewMenuItem("Open ChadThrottle", u.act.showWindow)
	items := []*fyne.MenuItem{open, fyne.NewMenuItemSeparator()}
	if u.conn.state != stateConnected {
		t, _ := u.stateWords()
		it := fyne.NewMenuItem(t, nil)
		it.Disabled = true
		items = append(items, it)
	} else {
		top := topApps(u.view.all, trayTopApps)
		if len(top) == 0 {
			it := fyne.NewMenuItem("No apps use the network", nil)
			it.Disabled = true
			items = append(items, it)
		}
		for _, a := range top {
			label := a.Name + "   " + trayRates(&a, u.settings.Unit)
			if limited(&a) {
				label = a.Name + " (limited)   " + trayRates(&a, u.settings.Unit)
			}
			it := fyne.NewMenuItem(label, nil)
			it.ChildMenu = u.quickLimitMenu(a)
			if u.readOnly() {
				it.Disabled = true
			}
			items = append(items, it)
		}
	}
	items = append(items, fyne.NewMenuItemSeparator())
	pause := fyne.NewMenuItem("Pause all limits", func() { u.act.setPaused(true) })
	if u.conn.status.Paused {
		pause = fyne.NewMenuItem("Resume limits", func() { u.act.setPaused(false) })
	}
	pause.Disabled = u.conn.state != stateConnected || u.readOnly()
	quit := fyne.NewMenuItem("Quit", u.act.quit)
	quit.IsQuit = true
	items = append(items, pause, fyne.NewMenuItemSeparator(), quit)
	return fyne.NewMenu("ChadThrottle", items...)
}

// quickLimitMenu is an app's submenu: download limits (upload limits where
// download limiting is unavailable), custom, unlimited.
func (u *trayCore) quickLimitMenu(a api.App) *fyne.Menu {
	dir := dirDown
	cur := a.Limit.Down
	if !u.downloadAvailable() {
		dir, cur = dirUp, a.Limit.Up
	}
	title := fyne.NewMenuItem("Limit "+dir.String()+" to:", nil)
	title.Disabled = true
	items := []*fyne.MenuItem{title}
	for _, q := range quickLimits {
		it := fyne.NewMenuItem(FormatRate(q, UnitAuto), func() { u.quickLimit(a, dir, q) })
		it.Checked = cur == q
		items = append(items, it)
	}
	items = append(items,
		fyne.NewMenuItem("Custom…", func() { u.act.showLimitDialog(a) }),
		fyne.NewMenuItemSeparator(),
	)
	un := fyne.NewMenuItem("Unlimited", func() { u.quickLimit(a, dir, 0) })
	un.Checked = !limited(&a)
	items = append(items, un, fyne.NewMenuItemSeparator(), u.blockMenuItem(a))
	return fyne.NewMenu(a.Name, items...)
}

// quickLimit sets direction dir of app a to lim (0 = unlimited), keeping
// the other direction as it is.
func (u *trayCore) quickLimit(a api.App, dir direction, lim uint64) {
	l := a.Limit
	if cur, ok := u.view.app(a.ID); ok {
		l = cur.Limit
	}
	if l.Down == 0 && l.Up == 0 {
		l = l.SplitZones(u.settings.Traffic, u.settings.Traffic)
	}
	if dir == dirDown {
		l.Down = lim
	} else {
		l.Up = lim
	}
	u.setAppLimit(a, l, true)
}

// setAppLimit sends l for app a now (no debounce) and reports the outcome;
// fromTray: the tray asked, so an error goes out as a notification.
func (u *trayCore) setAppLimit(a api.App, l api.Limit, fromTray bool) {
	u.call(func(ctx context.Context) error {
		if l.Down == 0 && l.Up == 0 {
			return u.b.RemoveAppLimit(ctx, a.Exe, a.UID)
		}
		return u.b.SetAppLimit(ctx, a.Exe, a.UID, l)
	}, func(err error) {
		if err != nil {
			u.act.report(fromTray, "Could not limit "+a.Name, explain(err))
			return
		}
		u.setLocalLimit(a.ID, l)
		u.act.refreshLimits()
		u.refreshTray(false)
	})
}

// setPaused pauses or resumes limits (tray and button).
func (u *UI) setPaused(paused bool) {
	if u.conn.status.Paused != paused {
		u.togglePause(true)
	}
}

// report tells about an error (UI goroutine): in the window's banner, or,
// when the tray asked, as a desktop notification. Without a notification
// server the window opens with the banner, so the error is never silent.
func (u *UI) report(fromTray bool, summary, detail string) {
	if !fromTray || u.opts.Notifier == nil {
		u.notify(summary + ": " + detail)
		if fromTray && !u.visible {
			u.showWindow()
		}
		return
	}
	n := u.opts.Notifier
	go func() {
		if err := n.Notify(summary, detail); err != nil {
			u.do(func() {
				u.notify(summary + ": " + detail)
				if !u.visible {
					u.showWindow()
				}
			})
		}
	}()
}
