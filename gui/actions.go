package gui

import (
	"context"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// selectApp shows app id in the details pane and polls its details.
func (u *UI) selectApp(id string) {
	if id == u.selected {
		return
	}
	u.selected = id
	u.selectedID.Store(id)
	u.det.selPID = 0
	if a, ok := u.view.app(id); ok {
		u.det.show(&api.AppDetails{App: a})
		if i := u.view.index(id); i >= 0 {
			u.apps.list.ScrollTo(i) // from a notification or the tray: bring it into view
		}
	} else {
		u.det.clear()
	}
	u.refreshRows() // the highlight moves now, not at the next poll
	u.requestPoll()
}

// showSettings opens the settings dialog.
func (u *UI) showSettings() {
	var labels []string
	for _, un := range Units {
		labels = append(labels, un.Label())
	}
	unit := widget.NewSelect(labels, nil)
	unit.SetSelected(u.settings.Unit.Label())
	autostart := widget.NewCheck("Start ChadThrottle when I log in", nil)
	autostart.SetChecked(u.settings.Autostart)
	hidden := widget.NewCheck("Start hidden in the tray", nil)
	hidden.SetChecked(u.settings.StartHidden)
	var tl []string
	for _, t := range trafficLabels {
		tl = append(tl, t.label)
	}
	showIdle := widget.NewCheck("Show idle apps (no limit, no traffic for 3 minutes)", nil)
	showIdle.SetChecked(u.settings.ShowIdle)
	traffic := widget.NewSelect(tl, nil)
	traffic.SetSelected(trafficLabel(u.settings.Traffic))
	items := []*widget.FormItem{
		widget.NewFormItem("Show rates in", unit),
		widget.NewFormItem("Login", autostart),
		widget.NewFormItem("Tray", hidden),
		widget.NewFormItem("New limits apply to", traffic),
		widget.NewFormItem("App list", showIdle),
	}
	items[3].HintText = "Which traffic a new limit counts: everything, Internet or the local network."
	var machine *widget.SelectEntry
	if u.opts.SwitchHost != nil {
		machine = widget.NewSelectEntry(append([]string{ThisComputer}, recentHosts(u.app.Preferences())...))
		machine.SetPlaceHolder("[user@]host[:port]")
		machine.SetText(u.hostLabel())
		item := widget.NewFormItem("Machine", machine)
		item.HintText = "This computer, or another one reached over SSH (your ssh keys or agent; systemd-stdio-bridge there)."
		items = append(items, item)
	}
	d := dialog.NewForm("Settings", "Save", "Cancel", items, func(ok bool) {
		if !ok {
			return
		}
		s := Settings{
			Unit:        unitByLabel(unit.Selected),
			Autostart:   autostart.Checked,
			StartHidden: hidden.Checked,
			Traffic:     trafficValue(traffic.Selected),
			ShowIdle:    showIdle.Checked,
		}
		u.applySettings(s)
		if machine != nil {
			host := strings.TrimSpace(machine.Text)
			if host == ThisComputer {
				host = ""
			}
			if host != u.host {
				u.switchHost(host)
			}
		}
	}, u.win)
	d.Resize(fyne.NewSize(560, 380))
	d.Show()
}

func (u *UI) hostLabel() string {
	if u.host == "" {
		return ThisComputer
	}
	return u.host
}

// switchHost points the window at another machine's helper ("" = this
// computer) and starts over with it (UI goroutine).
func (u *UI) switchHost(host string) {
	if err := u.opts.SwitchHost(host); err != nil {
		u.notify("Cannot switch to " + host + ": " + err.Error())
		return
	}
	u.host = host
	u.retryAfter.Store(0) // a new machine: poll at once, no back-off carried over
	u.win.SetTitle(u.title())
	u.conn.status, u.conn.perms, u.conn.permsKnown, u.conn.haveData = api.Status{}, api.Permissions{}, false, false
	u.lastSnap, u.snapTime = api.Snapshot{}, 0
	u.totals = history{}
	u.details = api.AppDetails{}
	u.selected = ""
	u.selectedID.Store("")
	u.view.setApps(nil)
	u.apps.list.UnselectAll()
	u.det.clear()
	u.setState(stateConnecting, "")
	u.redraw()
	u.needStatus.Store(true)
	u.requestPoll()
}

// rememberHost adds a remote machine that answered to the recent ones.
func (u *UI) rememberHost() {
	if u.host == "" || u.remembered == u.host {
		return
	}
	u.remembered = u.host
	addRecentHost(u.app.Preferences(), u.host)
}

// applySettings saves s, writes or removes the autostart entry and redraws.
func (u *UI) applySettings(s Settings) {
	old := u.settings
	u.settings = s
	s.save(u.app.Preferences())
	if s.Autostart != old.Autostart || (s.Autostart && s.StartHidden != old.StartHidden) {
		if err := SetAutostart(s.Autostart, s.StartHidden, u.opts.Executable); err != nil {
			u.notify("Could not change starting at login: " + err.Error())
		}
	}
	if s.ShowIdle != old.ShowIdle {
		u.view.setHideIdle(!s.ShowIdle)
		u.refreshList()
	}
	u.apps.list.Refresh()
	u.hdr.totalGraph.SetSamples(u.totals.s, s.Unit)
	if u.det.d != nil && u.selected != "" {
		u.det.show(u.det.d)
	}
	u.trayS.trayState.limitsChanged = true
	u.refreshTray(true)
}

// showLimitDialog asks for an app's download and upload limits, the zone
// each covers and their schedule (tray "Custom…").
func (u *UI) showLimitDialog(a api.App) {
	u.showWindow()
	if cur, ok := u.view.app(a.ID); ok {
		a = cur
	}
	f := u.newLimitForm(a.Limit) // zones.go
	u.showLimitForm("Limit "+a.Name, f, f.items, func(l api.Limit) { u.setAppLimit(a, l, false) })
}

// showLimitForm shows the limit form f as a dialog with these items; on
// "Set limit" a limit the form reads well goes to set, a bad one shows
// its error.
func (u *UI) showLimitForm(title string, f *limitForm, items []*widget.FormItem, set func(api.Limit)) {
	dialog.ShowForm(title, "Set limit", "Cancel", items, func(ok bool) {
		if !ok {
			return
		}
		l, err := f.read(u)
		if err != nil {
			dialog.ShowError(err, u.win)
			return
		}
		set(l)
	}, u.win)
}

// showProcessLimitDialog asks for one process's limits.
func (u *UI) showProcessLimitDialog(pid int32) {
	if pid == 0 {
		return
	}
	var cur api.Limit
	for _, p := range u.det.d.Processes {
		if p.PID == pid {
			cur = p.Limit
		}
	}
	f := u.newLimitForm(cur)
	note := widget.NewLabel("A process limit lasts until the process exits. To limit every run of the app, use the sliders in the list.")
	note.Wrapping = fyne.TextWrapWord
	items := append(f.items, widget.NewFormItem("", note))
	u.showLimitForm(fmt.Sprintf("Limit process %d", pid), f, items, func(l api.Limit) {
		u.call(func(ctx context.Context) error {
			if l.Down == 0 && l.Up == 0 {
				return u.b.RemoveProcessLimit(ctx, pid)
			}
			return u.b.SetProcessLimit(ctx, pid, l)
		}, func(err error) {
			if err != nil {
				u.notify(fmt.Sprintf("Could not limit process %d: %s", pid, explain(err)))
			}
		})
	})
}
