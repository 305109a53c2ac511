package gui

import (
	"context"
	"errors"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// pollResult is what one poll fetched, handed to the UI goroutine.
type pollResult struct {
	snap       api.Snapshot
	err        error
	status     *api.Status
	placement  *string // the active placement mode, when the helper lists one
	perms      *api.Permissions
	global     *api.GlobalLimit
	details    *api.AppDetails
	detailsFor string
	icons      map[string]fyne.Resource
}

// Poll fetches one snapshot (plus status, permissions and the selected
// app's details when due) and applies it on the UI goroutine. Start calls
// it every Interval; tests call it directly.
func (u *UI) Poll(ctx context.Context) {
	var r pollResult
	if !u.fetch(ctx, &r) {
		return
	}
	if sel, _ := u.selectedID.Load().(string); r.err == nil && sel != "" {
		cctx, cancel := context.WithTimeout(ctx, u.opts.CallTimeout)
		d, err := u.b.AppDetails(cctx, sel)
		cancel()
		if err == nil {
			r.details, r.detailsFor = &d, sel
		}
	}
	printable(&r)
	r.icons = map[string]fyne.Resource{}
	for _, a := range r.snap.Apps {
		if _, ok := r.icons[a.Icon]; !ok && a.Icon != "" {
			r.icons[a.Icon] = u.icons.resolve(a.Icon)
		}
	}
	u.doWait(func() { u.apply(&r) })
}

// fetch reads one snapshot into r, and status, placement and permissions
// when due; false when ctx ended meanwhile.
func (u *trayCore) fetch(ctx context.Context, r *pollResult) bool {
	call := func(f func(ctx context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, u.opts.CallTimeout)
		defer cancel()
		return f(cctx)
	}
	r.err = call(func(ctx context.Context) (err error) { r.snap, err = u.b.Apps(ctx); return })
	if ctx.Err() != nil {
		return false
	}
	u.backOff(errors.Is(r.err, ErrUnreachable))
	if r.err == nil && u.needStatus.Swap(false) {
		var st api.Status
		var p api.Permissions
		if err := call(func(ctx context.Context) (err error) { st, err = u.b.Status(ctx); return }); err == nil {
			r.status = &st
		} else {
			u.needStatus.Store(true)
		}
		var bs []api.Backend
		if err := call(func(ctx context.Context) (err error) { bs, err = u.b.Backends(ctx); return }); err == nil {
			p := activePlacement(bs)
			r.placement = &p
		}
		if err := call(func(ctx context.Context) (err error) { p, err = u.b.Permissions(ctx); return }); err == nil {
			r.perms = &p
		} else {
			u.needStatus.Store(true)
		}
		var g api.GlobalLimit
		if err := call(func(ctx context.Context) (err error) { g, err = u.b.GlobalLimit(ctx); return }); err == nil {
			r.global = &g
		}
	}
	return true
}

// apply takes a poll result in (UI goroutine).
func (u *UI) apply(r *pollResult) {
	if r.err != nil {
		u.setState(errorState(r.err, u.conn.state))
		u.needStatus.Store(true)
		return
	}
	if r.placement != nil {
		u.conn.placement = *r.placement
	}
	if r.status != nil {
		u.conn.status = *r.status
		u.conn.lastStatus = time.Now()
	} else if time.Since(u.conn.lastStatus) > 10*time.Second {
		u.needStatus.Store(true) // backends may change; refresh now and then
	}
	if r.perms != nil {
		u.conn.perms, u.conn.permsKnown = *r.perms, true
	}
	if r.global != nil {
		u.showGlobal(*r.global)
	}
	if u.conn.permsKnown && u.conn.perms.Monitor == api.PermNo {
		u.setState(stateUnauthorized, "")
		return
	}
	for k, v := range r.icons {
		u.appIcons[k] = v
	}
	u.conn.haveData = true
	if r.snap.Time == 0 || r.snap.Time != u.snapTime {
		u.totals.add(api.Sample{RxRate: r.snap.RxRate, TxRate: r.snap.TxRate})
		u.snapTime = r.snap.Time
	}
	u.mu.Lock()
	editing := len(u.pending) > 0
	u.mu.Unlock()
	u.view.frozen = editing || time.Now().Before(u.apps.freezeUntil)
	u.view.setApps(r.snap.Apps)
	u.lastSnap = r.snap
	anyLimit := false
	for i := range r.snap.Apps {
		anyLimit = anyLimit || limited(&r.snap.Apps[i])
	}
	u.limitsSeen.Store(anyLimit)
	if r.details != nil && r.detailsFor == u.selected {
		u.details = *r.details
	}
	u.setState(stateConnected, "")
	u.rememberHost()
	if r.status != nil || r.perms != nil {
		u.applyState()
	} else {
		u.updateBanner() // notices expire
	}
	u.refreshTray(false)
	if u.visible {
		u.redraw()
	}
}

// errorState is the helper's state after a poll failed with err (cur:
// the state before) and the words for it.
func errorState(err error, cur connState) (connState, string) {
	switch {
	case errors.Is(err, ErrUnreachable):
		return stateUnreachable, explain(err)
	case errors.Is(err, ErrHelperMissing):
		return stateMissing, explain(err)
	case errors.Is(err, ErrNotAuthorized):
		return stateUnauthorized, explain(err)
	case cur == stateRestarting:
		return stateRestarting, explain(err)
	}
	return stateNoAnswer, explain(err)
}

// redraw shows the latest data in the window (UI goroutine). Polls skip it
// while the window is hidden: a hidden window costs no drawing.
func (u *UI) redraw() {
	u.hdr.totalDown.Set("↓ "+FormatRate(u.lastSnap.RxRate, u.settings.Unit), colorDown)
	u.hdr.totalUp.Set("↑ "+FormatRate(u.lastSnap.TxRate, u.settings.Unit), colorUp)
	u.hdr.totalGraph.SetSamples(u.totals.s, u.settings.Unit)
	if u.selected != "" {
		if u.details.App.ID == u.selected {
			u.det.show(&u.details)
		}
		if _, ok := u.view.app(u.selected); !ok {
			u.det.gone()
		}
	}
	u.refreshRows() // paint.go
}

// setState records the helper's state and updates the words on screen.
func (u *UI) setState(s connState, detail string) {
	changed := s != u.conn.state || detail != u.conn.stateDetail
	u.conn.state, u.conn.stateDetail = s, detail
	if changed {
		u.applyState()
		u.root.Refresh() // texts of another length in the header and status line: lay out again
		if s != stateConnected {
			u.apps.list.Refresh() // sliders read-only while away
			u.refreshTray(true)
		}
	}
}

// stateWords returns the overlay title and text for the current state, or
// "" when connected.
func (u *trayCore) stateWords() (string, string) {
	on := u.onHost()
	switch u.conn.state {
	case stateConnecting:
		if u.host != "" {
			return "Connecting to the ChadThrottle helper" + on + "…", "ChadThrottle reaches " + u.host +
				" with your own ssh (its configuration, keys and agent) and systemd-stdio-bridge there, as \"systemctl -H\" does."
		}
		return "Connecting to the ChadThrottle helper…", "The helper is the part of ChadThrottle that measures and limits traffic. It usually starts by itself within a second."
	case stateUnreachable:
		return "Cannot connect to " + u.host,
			"ChadThrottle runs \"ssh -xT " + u.host + " systemd-stdio-bridge\" with your ssh configuration; that must work without a " +
				"password prompt (a key or your agent). This window tries again by itself (after 2 s, then less often, at least every 30 s); " +
				"Settings switches back to this computer."
	case stateMissing:
		if u.host != "" {
			return "The ChadThrottle helper is not installed" + on,
				"The machine answers over SSH, but its D-Bus cannot start chadthrottle-helper. Install the chadthrottle package there. " +
					"This window connects by itself as soon as the helper is there."
		}
		return "The ChadThrottle helper is not installed or cannot start",
			"ChadThrottle needs its helper service to see and limit traffic. Install the chadthrottle package (it provides chadthrottle-helper), " +
				"or start it with \"sudo systemctl start chadthrottle-helper\". This window connects by itself as soon as the helper is there."
	case stateUnauthorized:
		if u.host != "" {
			return "You are not allowed to see network traffic" + on,
				"polkit on " + u.host + " refused your login user. Over SSH you are in no active local session there, so polkit applies the " +
					"\"allow_any\" defaults (an administrator's password, which cannot be asked for over SSH), not \"allow_active\". " +
					"An administrator there can allow your user with a polkit rule for \"" + api.ActionMonitor + "\" (see docs/packaging.md)."
		}
		return "You are not allowed to see network traffic",
			"The system's security policy (polkit) refused to let this account watch traffic. Ask an administrator to allow \"" +
				api.ActionMonitor + "\" for you. This window tries again by itself."
	case stateRestarting:
		return "The ChadThrottle helper" + on + " stopped — waiting for it to come back…",
			"Your limits are kept and are applied again when the helper is back. This window reconnects by itself."
	case stateNoAnswer:
		return "The ChadThrottle helper" + on + " does not answer",
			"It may be starting, busy or restarting. This window keeps trying every second."
	}
	return "", ""
}

// onHost is " on HOST" for a remote machine, "" here.
func (u *trayCore) onHost() string {
	if u.host == "" {
		return ""
	}
	return " on " + u.host
}

// applyState updates overlay, status line, banner, pause button and tray
// for the current state (UI goroutine).
func (u *UI) applyState() {
	title, text := u.stateWords()
	if title != "" {
		if u.conn.stateDetail != "" && u.conn.state != stateConnecting {
			text += "\n\nDetails: " + u.conn.stateDetail
		}
		u.conn.overlayBG.FillColor = theme.Color(theme.ColorNameBackground) // follows light/dark
		u.conn.overlayBG.Refresh()
		u.hdr.totalDown.Set("↓ –", colorDown)
		u.hdr.totalUp.Set("↑ –", colorUp)
		u.conn.overlayTitle.SetText(title)
		u.conn.overlayText.SetText(wrapText(text, 90))
		u.conn.overlay.Show()
		u.conn.overlay.Refresh() // lay the card out again: the text may have more lines now
	} else {
		u.conn.overlay.Hide()
	}
	setText(u.conn.statusLine, u.statusText()) // each change paints the window
	setText(u.countLabel, u.countText())
	pause, icon := "Pause limits", theme.MediaPauseIcon()
	if u.conn.status.Paused {
		pause, icon = "Resume limits", theme.MediaPlayIcon()
	}
	if u.hdr.pauseBtn.Text != pause {
		u.hdr.pauseBtn.Text, u.hdr.pauseBtn.Icon = pause, icon
		u.hdr.pauseBtn.Refresh()
	}
	if u.conn.state == stateConnected && !u.readOnly() {
		u.hdr.pauseBtn.Enable()
	} else {
		u.hdr.pauseBtn.Disable()
	}
	u.updateBanner()
}

// statusText is the bottom line: connection and active backends.
func (u *UI) statusText() string {
	if u.conn.state != stateConnected {
		t, _ := u.stateWords()
		return "● Not connected: " + strings.TrimSuffix(t, "…")
	}
	parts := []string{"● Connected to the helper"}
	if u.conn.status.Version != "" {
		parts[0] += " " + u.conn.status.Version
	}
	if u.host != "" {
		parts[0] += " on " + u.host + " (over SSH)"
	}
	if u.conn.status.Monitor != "" {
		parts = append(parts, "monitor: "+u.conn.status.Monitor)
	}
	if u.conn.status.Upload != "" {
		parts = append(parts, "upload limits: "+u.conn.status.Upload)
	} else {
		parts = append(parts, "upload limits: none")
	}
	if u.conn.status.Download != "" {
		parts = append(parts, "download limits: "+u.conn.status.Download)
	} else {
		parts = append(parts, "download limits: unavailable")
	}
	if u.conn.status.Interfaces != "" {
		parts = append(parts, "interfaces: "+u.conn.status.Interfaces)
	}
	if p := placementWords(u.conn.placement); p != "" {
		parts = append(parts, p)
	}
	if u.readOnly() {
		parts = append(parts, "read-only")
	}
	return strings.Join(parts, " · ")
}

// wrapText breaks s into lines of at most width characters at spaces
// (labels that wrap by themselves size badly inside centred layouts).
func wrapText(s string, width int) string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len([]rune(line))+1+len([]rune(w)) > width {
				out = append(out, line)
				line = w
				continue
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// explain turns a backend error into words for people.
func explain(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNotAuthorized):
		return "not allowed (" + err.Error() + ")"
	case errors.Is(err, ErrUnreachable):
		return err.Error()
	case errors.Is(err, ErrHelperMissing):
		return "the helper is not running (" + err.Error() + ")"
	case errors.Is(err, context.DeadlineExceeded):
		return "the helper did not answer in time"
	}
	return err.Error()
}

// printable makes the text other users' processes and .desktop files chose
// safe to show (api.Printable); Exe stays exact (limits name it) and is
// passed through Printable where it is shown.
// activePlacement returns the name of the active placement mode in bs.
func activePlacement(bs []api.Backend) string {
	for _, b := range bs {
		if b.Kind == "placement" && b.Active {
			return api.Printable(b.Name)
		}
	}
	return ""
}

// placementWords says on the status line how limits find their processes.
func placementWords(mode string) string {
	switch mode {
	case "":
		return ""
	case "socket_tags":
		return "limited apps stay in their cgroups (sockets tagged in the kernel)"
	case "cgroup":
		return "limited apps stay in their cgroups: placement cgroup (child of each process's own cgroup; kernel cannot tag sockets)"
	}
	return "placement: " + mode
}

func printable(r *pollResult) {
	for i := range r.snap.Apps {
		a := &r.snap.Apps[i]
		a.Name, a.User = api.Printable(a.Name), api.Printable(a.User)
	}
	if d := r.details; d != nil {
		d.App.Name, d.App.User = api.Printable(d.App.Name), api.Printable(d.App.User)
		for i := range d.Processes {
			p := &d.Processes[i]
			p.Comm, p.Cmdline = api.Printable(p.Comm), api.Printable(p.Cmdline)
		}
	}
}
