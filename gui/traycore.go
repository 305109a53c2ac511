package gui

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// trayCore is what the tray menu is built from and acts through. The
// window's UI embeds it, and so does the tray-only mode (traylight.go),
// which runs the tray without Fyne's driver; both build the same menu
// (tray.go) and implement its actions.
type trayCore struct {
	b    Backend
	opts Options
	// do and doWait run a function on the UI goroutine (fyne.Do and
	// fyne.DoAndWait in the window; the tray-only mode's loop; tests
	// substitute a queue they drain themselves).
	do, doWait func(func())

	// what the poll loop reads to decide how often to poll (any goroutine)
	pollNow       chan struct{}
	needStatus    atomic.Bool
	shown         atomic.Bool    // the window is shown (mirrors visible)
	trayOpenUntil atomic.Int64   // unix nanoseconds: the tray menu opened lately
	limitsSeen    atomic.Bool    // the last snapshot had a limited app
	retryAfter    atomic.Int64   // nanoseconds between polls while the remote machine is unreachable; 0: reachable
	inflight      sync.WaitGroup // helper calls made by call

	// UI goroutine
	settings  Settings
	view      *view
	conn      connPart    // the connection to the helper and what it said of itself
	host      string      // remote machine, "" for this computer
	tray      desktop.App // nil without tray support
	trayS     trayPart    // the tray menu as last built
	act       trayActions // what the menu's items do
	quotaSeen map[string]string
}

// trayActions are what the tray menu's items do; UI does them in the
// window, the tray-only mode by itself or by handing over to the window.
type trayActions interface {
	showWindow()
	showLimitDialog(a api.App)
	setPaused(paused bool)
	quit()
	// report tells about an error; fromTray: the tray asked, so it goes
	// out as a desktop notification.
	report(fromTray bool, summary, detail string)
	// refreshLimits shows limits changed here before the next poll.
	refreshLimits()
}

var (
	_ trayActions = (*UI)(nil)
	_ trayActions = (*trayOnly)(nil)
)

// init sets the core up for b with opts (defaults filled in) and the
// settings in p; act does what the menu's items ask.
func (u *trayCore) init(p fyne.Preferences, b Backend, opts Options, act trayActions) {
	opts.defaults()
	u.b, u.opts, u.act = b, opts, act
	u.pollNow = make(chan struct{}, 1)
	u.settings, u.view, u.host = loadSettings(p), newView(), opts.Host
	u.view.hideIdle = !u.settings.ShowIdle
	u.needStatus.Store(true)
}

// quotaNote is a quota event to notify: what it says, the app's icon and
// its id (a click shows its row).
type quotaNote struct{ summary, body, icon, appID string }

// quotaNotes returns the quotas whose state changed since they were last
// seen, once per state and period.
func (u *trayCore) quotaNotes(qs []api.Quota) []quotaNote {
	if u.quotaSeen == nil {
		u.quotaSeen = map[string]string{}
	}
	var out []quotaNote
	for _, q := range qs {
		key := strconv.FormatUint(uint64(q.UID), 10) + ":" + q.Exe
		seen := key + "@" + strconv.FormatInt(q.PeriodStart, 10)
		prev := u.quotaSeen[seen]
		u.quotaSeen[seen] = q.State
		if q.State == prev || q.State == api.QuotaOK || (prev == api.QuotaReached && q.State == api.QuotaWarning) {
			continue
		}
		name, icon := u.appLook(q.UID, q.Exe)
		var summary string
		if q.State == api.QuotaWarning {
			summary = fmt.Sprintf("%s used 80 %% of its quota", name)
		} else if q.Action == api.QuotaBlock {
			summary = fmt.Sprintf("%s reached its quota and is blocked", name)
		} else {
			summary = fmt.Sprintf("%s reached its quota: throttled to %s", name, api.FormatRate(q.Rate))
		}
		body := quotaUsage(q) + fmt.Sprintf(" (until %s)", time.Unix(q.PeriodEnd, 0).Format("Mon 2 Jan 15:04"))
		out = append(out, quotaNote{summary, body, icon, key})
	}
	return out
}

// appLook returns an app's display name and icon from the last snapshot.
func (u *trayCore) appLook(uid uint32, exe string) (string, string) {
	for _, a := range u.view.all {
		if a.UID == uid && a.Exe == exe {
			return api.Printable(a.Name), a.Icon
		}
	}
	return api.Printable(baseNameOf(exe)), ""
}

// call runs fn off the UI goroutine with the long timeout of limit
// changes, then done(err) on the UI goroutine, then polls.
func (u *trayCore) call(fn func(ctx context.Context) error, done func(error)) {
	u.inflight.Add(1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), setTimeout)
		err := fn(ctx)
		cancel()
		u.inflight.Done()
		u.do(func() { done(err) })
		u.needStatus.Store(true)
		u.requestPoll()
	}()
}

// pollLoop polls (with poll) until ctx ends, then calls cancels: every
// Interval while someone looks, every SlowInterval while nobody looks but
// limits exist, otherwise only when asked (pollWait). Nobody looks at
// start (hidden at login): it asks only a helper that already runs, to
// learn whether limits exist.
func (u *trayCore) pollLoop(ctx context.Context, poll func(context.Context), cancels ...func()) {
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	if u.looking() || u.helperRunning(ctx) {
		poll(ctx)
	}
	for {
		var timer *time.Timer
		var tick <-chan time.Time
		if d := u.pollWait(); d > 0 {
			timer = time.NewTimer(d)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-u.pollNow:
		}
		if timer != nil {
			timer.Stop()
		}
		poll(ctx)
	}
}

// onTraySignals polls at once and for a while when the tray menu opens,
// and shows the window when another launch asks, until ctx ends.
func (u *trayCore) onTraySignals(ctx context.Context) {
	onSignal(ctx, u.opts.TrayOpened, func() {
		u.trayOpenUntil.Store(time.Now().Add(u.opts.TrayOpenPoll).UnixNano())
		u.requestPoll()
	})
	onSignal(ctx, u.opts.Activate, func() { u.do(u.act.showWindow) })
}

// watchHelper polls when limits change or the helper comes or goes;
// restarting runs on the UI goroutine when it left while someone looks.
func (u *trayCore) watchHelper(restarting func()) (cancels []func()) {
	c1 := u.b.OnLimitsChanged(u.requestPoll) // the helper runs: asking it starts nothing
	c2 := u.b.OnHelperPresence(func(running bool) {
		u.needStatus.Store(true)
		if !running && !u.looking() {
			// most likely its idle exit: polling now would start it
			// again for nobody; the next look polls
			return
		}
		if !running {
			u.do(restarting)
		}
		u.requestPoll()
	})
	return []func(){c1, c2}
}

// waitCalls waits up to d for the helper calls in flight (call) to end,
// so that a change chosen just before quitting or handing over to the
// other mode (which executes the binary again) reaches the helper.
func (u *trayCore) waitCalls(d time.Duration) {
	idle := make(chan struct{})
	go func() { u.inflight.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(d):
	}
}
