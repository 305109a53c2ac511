package gui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// quotaEditor sets, changes and removes the data quota of the app selected
// in the Statistics window's table.
type quotaEditor struct {
	s      *statsView
	box    *fyne.Container
	app    api.AppHistory
	title  *widget.Label
	usage  *widget.Label
	per    *widget.Select
	size   *widget.Entry
	dir    *widget.Select
	action *widget.Select
	rate   *widget.Entry
	save   *widget.Button
	remove *widget.Button
	status *widget.Label
}

var (
	periodLabels    = []string{api.QuotaDay, api.QuotaWeek, api.QuotaMonth}
	directionLabels = []string{"download", "upload", "both"}
	directionValues = []string{api.QuotaDown, api.QuotaUp, api.QuotaBoth}
	actionLabels    = []string{"throttle to", "block"}
)

func newQuotaEditor(s *statsView) *quotaEditor {
	e := &quotaEditor{s: s, title: widget.NewLabel("Select an app to set its quota"), usage: widget.NewLabel(""),
		status: widget.NewLabel("")}
	e.title.TextStyle.Bold = true
	e.title.Wrapping = fyne.TextWrapWord
	e.status.Wrapping = fyne.TextWrapWord
	e.per = widget.NewSelect(periodLabels, nil)
	e.size = widget.NewEntry()
	e.size.SetPlaceHolder("2GB")
	e.dir = widget.NewSelect(directionLabels, nil)
	e.rate = widget.NewEntry()
	e.rate.SetPlaceHolder("500KB/s")
	e.action = widget.NewSelect(actionLabels, func(a string) {
		if a == "block" {
			e.rate.Disable()
		} else {
			e.rate.Enable()
		}
	})
	e.save = widget.NewButton("Set quota", e.apply)
	e.save.Importance = widget.HighImportance
	e.remove = widget.NewButton("Remove quota", e.drop)
	form := widget.NewForm(widget.NewFormItem("Per", e.per), widget.NewFormItem("Cap", e.size),
		widget.NewFormItem("Counting", e.dir), widget.NewFormItem("Then", e.action), widget.NewFormItem("Rate", e.rate))
	e.box = container.New(fixedWidth{w: 260}, container.NewVBox(e.title, e.usage, form, container.NewHBox(e.save, e.remove), e.status))
	e.setEnabled(false)
	return e
}

func (e *quotaEditor) setEnabled(on bool) {
	for _, w := range []fyne.Disableable{e.per, e.size, e.dir, e.action, e.rate, e.save, e.remove} {
		if on {
			w.Enable()
		} else {
			w.Disable()
		}
	}
}

// show loads app's quota (has: one exists) into the editor.
func (e *quotaEditor) show(app api.AppHistory, q api.Quota, has bool) {
	e.app = app
	e.title.SetText("Quota of " + api.Printable(app.Name))
	e.setEnabled(true)
	e.status.SetText("")
	if !has {
		q = api.Quota{Period: api.QuotaDay, Direction: api.QuotaBoth, Action: api.QuotaThrottle}
		e.usage.SetText("No quota")
		e.remove.Disable()
		e.size.SetText("")
		e.rate.SetText("")
	} else {
		e.usage.SetText(quotaUsage(q))
		e.size.SetText(api.FormatBytes(q.Bytes))
		e.rate.SetText(api.FormatRate(q.Rate))
	}
	e.per.SetSelected(q.Period)
	for i, v := range directionValues {
		if v == q.Direction {
			e.dir.SetSelectedIndex(i)
		}
	}
	if q.Action == api.QuotaBlock {
		e.action.SetSelected("block")
	} else {
		e.action.SetSelected("throttle to")
	}
}

// quota reads the editor; errors name the field.
func (e *quotaEditor) quota() (api.Quota, error) {
	q := api.Quota{Exe: e.app.Exe, UID: e.app.UID, Period: e.per.Selected, Action: api.QuotaThrottle, Direction: api.QuotaBoth}
	if i := e.dir.SelectedIndex(); i >= 0 {
		q.Direction = directionValues[i]
	}
	var err error
	if q.Bytes, err = api.ParseSize(e.size.Text); err != nil {
		return q, fmt.Errorf("cap: %v", err)
	}
	if e.action.Selected == "block" {
		q.Action = api.QuotaBlock
		return q, nil
	}
	if q.Rate, err = api.ParseRate(e.rate.Text); err != nil || q.Rate == 0 {
		return q, fmt.Errorf("rate: give the rate to throttle to, e.g. 500KB/s")
	}
	return q, nil
}

func (e *quotaEditor) apply() {
	q, err := e.quota()
	if err != nil {
		e.status.SetText(err.Error())
		return
	}
	e.call("Quota set", func(ctx context.Context) error { return e.s.sb.SetQuota(ctx, q) })
}

func (e *quotaEditor) drop() {
	a := e.app
	e.call("Quota removed", func(ctx context.Context) error { return e.s.sb.RemoveQuota(ctx, a.Exe, a.UID) })
}

// call runs a quota change off the UI goroutine, then reloads.
func (e *quotaEditor) call(done string, fn func(ctx context.Context) error) {
	e.status.SetText("…")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		err := fn(ctx)
		e.s.u.do(func() {
			if err != nil {
				e.status.SetText(err.Error())
				return
			}
			e.status.SetText(done)
			e.s.reload()
		})
	}()
}

// AppNotifier is a Notifier that can show an app's icon and call onClick
// when the notification is clicked (cmd/chadthrottle's does).
type AppNotifier interface {
	NotifyApp(summary, body, icon string, onClick func()) error
}

// watchQuotas has quota events reach the desktop: when the helper says
// limits changed (it does when a quota passes 80 %, is reached or lifted),
// the quotas are read and handed to apply. It asks the helper nothing
// otherwise, so an idle helper may still exit.
func watchQuotas(ctx context.Context, b Backend, running func(context.Context) bool, apply func([]api.Quota)) (cancel func()) {
	sb, ok := b.(StatsBackend)
	if !ok {
		return func() {}
	}
	check := func() {
		c, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		qs, err := sb.Quotas(c)
		if err == nil {
			apply(qs)
		}
	}
	go func() {
		if running(ctx) {
			check()
		}
	}()
	return b.OnLimitsChanged(func() { go check() })
}

// watchQuotas notifies quota events each once per period (watchQuotas).
func (u *UI) watchQuotas(ctx context.Context) (cancel func()) {
	return watchQuotas(ctx, u.b, u.helperRunning, func(qs []api.Quota) { u.do(func() { u.quotaEvents(qs) }) })
}

// quotaEvents notifies the quotas whose state changed (UI goroutine).
func (u *UI) quotaEvents(qs []api.Quota) {
	if u.stats != nil {
		u.stats.setQuotas(qs)
		u.stats.table.Refresh()
	}
	for _, n := range u.quotaNotes(qs) {
		u.notifyQuota(n.summary, n.body, n.icon, n.appID)
	}
}

func baseNameOf(exe string) string {
	for i := len(exe) - 1; i >= 0; i-- {
		if exe[i] == '/' {
			return exe[i+1:]
		}
	}
	return exe
}

// notifyQuota sends a desktop notification (the window's banner without a
// notification server); clicking it shows the app's row.
func (u *UI) notifyQuota(summary, body, icon, appID string) {
	open := func() {
		u.do(func() {
			u.showWindow()
			u.selectApp(appID)
		})
	}
	n := u.opts.Notifier
	if n == nil {
		u.notify(summary + ": " + body)
		return
	}
	go func() {
		var err error
		if an, ok := n.(AppNotifier); ok {
			err = an.NotifyApp(summary, body, icon, open)
		} else {
			err = n.Notify(summary, body)
		}
		if err != nil {
			u.do(func() { u.notify(summary + ": " + body) })
		}
	}()
}

// editQuota opens the Statistics window with app's quota in the editor
// (the details pane's "Data quota…", beside the limit controls).
func (u *UI) editQuota(a api.App) {
	if a.Exe == "" || strings.HasPrefix(a.Exe, "[") {
		return
	}
	u.showStats()
	if u.stats == nil {
		return
	}
	s := u.stats
	q, has := s.quotas[quotaKey{a.UID, a.Exe}]
	s.editor.show(api.AppHistory{Exe: a.Exe, UID: a.UID, Name: a.Name}, q, has)
}
