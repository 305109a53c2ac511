package gui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Blocking and schedules in the window (issue #16): a block toggle on each
// row, "Block" in the tray's app menu, a schedule field in the limit
// dialog.

// BlockBackend is what the window needs of the helper to block apps.
type BlockBackend = api.AppBlocker

// blocked reports whether the app is blocked (by its rule).
func blocked(a *api.App) bool { return a.Limit.Block != "" }

// newBlockToggle is a row's block button.
func (r *appRow) newBlockToggle() *widget.Button {
	b := widget.NewButton("Block", nil)
	b.OnTapped = func() {
		r.u.touch()
		if a, ok := r.u.view.app(r.id); ok {
			r.u.toggleBlock(a, false)
		}
	}
	return b
}

// showBlock shows the app's block state on the row's toggle.
func (r *appRow) showBlock(a *api.App, enabled bool) {
	text, imp := "Block", widget.MediumImportance
	if blocked(a) {
		text, imp = "Blocked", widget.DangerImportance // the caption says which traffic
	}
	if r.block.Text != text || r.block.Importance != imp {
		r.block.Text, r.block.Importance = text, imp
		r.block.Refresh()
	}
	if enabled && r.block.Disabled() {
		r.block.Enable()
	} else if !enabled && !r.block.Disabled() {
		r.block.Disable()
	}
}

// blockCaption is what the row's caption says about a block.
func blockCaption(a *api.App) string {
	if !blocked(a) {
		return ""
	}
	s := " · blocked"
	if a.Limit.Block != api.TrafficAll {
		s += " (" + a.Limit.Block + ")"
	}
	if a.Limit.BlockWhen != "" {
		s += " " + api.Printable(a.Limit.BlockWhen)
	}
	return s
}

// toggleBlock blocks app a from all traffic, or lifts its block; fromTray:
// an error goes out as a notification.
func (u *trayCore) toggleBlock(a api.App, fromTray bool) {
	if cur, ok := u.view.app(a.ID); ok {
		a = cur
	}
	block := !blocked(&a)
	u.call(func(ctx context.Context) error {
		if block {
			return u.b.SetAppBlock(ctx, a.Exe, a.UID, api.TrafficAll, "")
		}
		return u.b.RemoveAppBlock(ctx, a.Exe, a.UID)
	}, func(err error) {
		if err != nil {
			verb := "block"
			if !block {
				verb = "unblock"
			}
			u.act.report(fromTray, fmt.Sprintf("Could not %s %s", verb, a.Name), explain(err))
			return
		}
		u.updateLocal(a.ID, func(l *api.Limit) {
			l.Block, l.BlockWhen = "", ""
			if block {
				l.Block = api.TrafficAll
			}
		})
		u.act.refreshLimits()
		u.refreshTray(false)
	})
}

// blockMenuItem is "Block"/"Unblock" in an app's tray submenu.
func (u *trayCore) blockMenuItem(a api.App) *fyne.MenuItem {
	label := "Block"
	if blocked(&a) {
		label = "Unblock"
	}
	return fyne.NewMenuItem(label, func() { u.toggleBlock(a, true) })
}

// updateLocal changes an app's limit in the window's copy until the next
// poll; a limit left limiting nothing becomes the zero limit.
func (u *trayCore) updateLocal(id string, change func(*api.Limit)) {
	apply := func(apps []api.App) {
		for i := range apps {
			if apps[i].ID == id {
				change(&apps[i].Limit)
				if !apps[i].Limit.Limited() {
					apps[i].Limit = api.Limit{}
				}
			}
		}
	}
	apply(u.view.all)
	apply(u.view.rows)
	u.trayS.trayState.limitsChanged = true
}

// scheduleItem is the limit dialog's schedule field.
func scheduleItem(cur string) (*widget.FormItem, *widget.Entry) {
	e := widget.NewEntry()
	e.SetPlaceHolder("always")
	e.SetText(cur)
	e.Validator = func(s string) error {
		if _, err := api.ParseSchedule(s); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), api.ErrSchedule.Error()+": "))
		}
		return nil
	}
	it := widget.NewFormItem("Active", e)
	it.HintText = "Empty = always; or times such as Mon-Fri 09:00-17:00, Sat+Sun 10:00-12:00 (local time)."
	return it, e
}
