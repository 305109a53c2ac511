package gui

import (
	"context"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The global limit and app priorities in the window (issue #16): a
// "Global limit" button in the header opening a dialog, and a priority
// selector on each row.

// GlobalBackend is what the window needs of the helper for the global
// limit and priorities.
type GlobalBackend = api.GlobalLimiter

// newGlobalButton is the header's global limit control.
func (u *UI) newGlobalButton() *widget.Button {
	b := widget.NewButtonWithIcon("Global: none", theme.ComputerIcon(), u.showGlobalDialog)
	u.hdr.globalBtn = b
	return b
}

// globalText is the header button's text for g.
func (u *UI) globalText(g api.GlobalLimit) string {
	if g.IsZero() {
		return "Global: none"
	}
	f := func(r uint64) string {
		if r == 0 {
			return "–"
		}
		return FormatRate(r, u.settings.Unit)
	}
	return fmt.Sprintf("Global ↓%s ↑%s", f(g.Down), f(g.Up))
}

// showGlobal shows the global limit in force (UI goroutine).
func (u *UI) showGlobal(g api.GlobalLimit) {
	u.hdr.global = g
	if t := u.globalText(g); u.hdr.globalBtn.Text != t {
		u.hdr.globalBtn.SetText(t)
	}
}

// showGlobalDialog opens the global limit dialog: download and upload
// caps for the whole machine; Remove lifts it.
func (u *UI) showGlobalDialog() {
	u.touch()
	g := u.hdr.global
	down, up := widget.NewEntry(), widget.NewEntry()
	down.SetPlaceHolder("unlimited")
	up.SetPlaceHolder("unlimited")
	down.SetText(entryText(g.Down, u.settings.Unit))
	up.SetText(entryText(g.Up, u.settings.Unit))
	for _, e := range []*widget.Entry{down, up} {
		e.Validator = func(s string) error { _, err := ParseLimit(s, u.settings.Unit); return err }
	}
	items := []*widget.FormItem{widget.NewFormItem("Download", down), widget.NewFormItem("Upload", up)}
	items[1].HintText = "One cap for the whole machine, shared among apps by their priority (low 1, normal 2, high 4, critical 8). Needs administrator rights."
	var d *dialog.FormDialog
	remove := widget.NewButton("Remove", func() {
		d.Hide()
		u.setGlobal(api.GlobalLimit{})
	})
	remove.Importance = widget.DangerImportance
	if g.IsZero() {
		remove.Disable()
	}
	items = append(items, widget.NewFormItem("", remove))
	d = dialog.NewForm("Global limit", "Set", "Cancel", items, func(ok bool) {
		if !ok {
			return
		}
		dn, _ := ParseLimit(down.Text, u.settings.Unit)
		upv, _ := ParseLimit(up.Text, u.settings.Unit)
		u.setGlobal(api.GlobalLimit{Down: dn, Up: upv, Interface: g.Interface})
	}, u.win)
	for _, e := range []*widget.Entry{down, up} {
		e.OnSubmitted = func(string) { d.Submit() } // Enter sets it
	}
	d.Resize(fyne.NewSize(480, 300))
	d.Show()
}

// setGlobal sets (or, zero, removes) the global limit.
func (u *UI) setGlobal(g api.GlobalLimit) {
	u.call(func(ctx context.Context) error {
		if g.IsZero() {
			return u.b.RemoveGlobalLimit(ctx)
		}
		return u.b.SetGlobalLimit(ctx, g)
	}, func(err error) {
		if err != nil {
			u.notify("Could not change the global limit: " + explain(err))
			return
		}
		u.showGlobal(g)
	})
}

// newPrioritySelect is a row's priority selector.
func (r *appRow) newPrioritySelect() *widget.Select {
	s := widget.NewSelect(api.Priorities, nil)
	s.OnChanged = func(p string) {
		r.u.touch()
		a, ok := r.u.view.app(r.id)
		if !ok || priorityOf(&a) == p {
			return
		}
		r.u.setPriority(a, p)
	}
	return s
}

// priorityOf is an app's priority spelled out.
func priorityOf(a *api.App) string {
	if a.Limit.Priority == "" {
		return api.PriorityNormal
	}
	return a.Limit.Priority
}

// showPriority shows the app's priority on the row's selector without
// firing it.
func (r *appRow) showPriority(a *api.App, enabled bool) {
	if p := priorityOf(a); r.prio.Selected != p {
		r.prio.Selected = p
		r.prio.Refresh()
	}
	if enabled && r.prio.Disabled() {
		r.prio.Enable()
	} else if !enabled && !r.prio.Disabled() {
		r.prio.Disable()
	}
}

// setPriority sets app a's priority; the row shows it at once.
func (u *UI) setPriority(a api.App, p string) {
	u.call(func(ctx context.Context) error { return u.b.SetAppPriority(ctx, a.Exe, a.UID, p) }, func(err error) {
		if err != nil {
			u.notify(fmt.Sprintf("Could not set the priority of %s: %s", a.Name, explain(err)))
			u.apps.list.Refresh() // back to what the helper has
			return
		}
		u.updateLocal(a.ID, func(l *api.Limit) {
			l.Priority = p
			if p == api.PriorityNormal {
				l.Priority = ""
			}
		})
		u.apps.list.Refresh()
	})
}
