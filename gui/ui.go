package gui

import (
	"context"
	"fmt"
	"image/color"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Options configure the window.
type Options struct {
	// Hidden starts in the tray without showing the window (when there is
	// a tray).
	Hidden bool
	// TrayAvailable reports whether a tray host (StatusNotifierWatcher) is
	// present right now; closing the window hides it to the tray only
	// then. nil means never.
	TrayAvailable func() bool
	// Executable is the command the autostart entry runs ("" =
	// "chadthrottle").
	Executable string
	// Interval between polls while someone looks: the window is shown or
	// the tray menu opened less than TrayOpenPoll ago (default 1 s).
	Interval time.Duration
	// SlowInterval between polls while nobody looks but limits exist, so
	// the tray icon shows whether limits are active (default 10 s). With
	// nothing limited and nobody looking there are no polls at all: the
	// helper may exit when idle.
	SlowInterval time.Duration
	// TrayOpenPoll is how long polls run at Interval after the tray menu
	// opened (default 15 s; the tray does not say when it closes).
	TrayOpenPoll time.Duration
	// TrayOpened receives a value each time the tray menu opens (nil: the
	// tray cannot say).
	TrayOpened <-chan struct{}
	// Activate receives a value when another launch asks this instance to
	// show its window (single instance).
	Activate <-chan struct{}
	// Notifier sends desktop notifications: errors of actions taken in the
	// tray go there instead of the (hidden) window's banner. nil: banner.
	Notifier Notifier
	// Debounce is how long a slider must rest before its value is sent
	// (default 400 ms).
	Debounce time.Duration
	// CallTimeout bounds each read from the helper (default 5 s). Limit
	// changes may wait for a polkit password prompt and get 2 minutes.
	CallTimeout time.Duration
	// Host is the remote machine ([USER@]HOST[:PORT]) whose helper the
	// Backend talks to over SSH, "" for this computer. The title and the
	// status line name it.
	Host string
	// SwitchHost points the Backend at another machine ("" = this
	// computer); it returns an error for a host it cannot parse. nil: the
	// window cannot switch (Settings does not offer it).
	SwitchHost func(host string) error
}

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.SlowInterval <= 0 {
		o.SlowInterval = 10 * time.Second
	}
	if o.TrayOpenPoll <= 0 {
		o.TrayOpenPoll = 15 * time.Second
	}
	if o.Debounce <= 0 {
		o.Debounce = 400 * time.Millisecond
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 5 * time.Second
	}
}

const setTimeout = 2 * time.Minute

// Notifier sends a desktop notification (org.freedesktop.Notifications).
type Notifier interface {
	Notify(summary, body string) error
}

// UI is the main window, its tray icon and the loop that feeds them.
// Fields below "UI goroutine" are touched only there.
type UI struct {
	app   fyne.App
	b     Backend
	opts  Options
	win   fyne.Window
	tray  desktop.App // nil without tray support
	icons *iconCache

	// do and doWait run a function on the UI goroutine (fyne.Do and
	// fyne.DoAndWait; tests substitute a queue they drain themselves).
	do, doWait func(func())

	pollNow    chan struct{}
	needStatus atomic.Bool
	selectedID atomic.Value // string: the app whose details are polled
	// what the poll loop reads to decide how often to poll
	shown         atomic.Bool  // the window is shown (mirrors visible)
	trayOpenUntil atomic.Int64 // unix nanoseconds: the tray menu opened lately
	limitsSeen    atomic.Bool  // the last snapshot had a limited app

	mu      sync.Mutex // guards pending
	pending map[string]*pendingEdit

	// UI goroutine
	host        string // remote machine, "" for this computer
	remembered  string // the host last added to the recent ones
	settings    Settings
	view        *view
	state       connState
	stateDetail string
	status      api.Status
	perms       api.Permissions
	permsKnown  bool
	haveData    bool
	snapTime    int64
	totals      history
	appIcons    map[string]fyne.Resource // App.Icon → resource
	details     api.AppDetails
	selected    string
	notice      string
	noticeUntil time.Time
	trayState   trayState
	trayLimited bool
	trayBuilt   time.Time
	trayListed  []string // ids of the apps the tray menu lists
	lastStatus  time.Time
	freezeUntil time.Time // keep the row order until then
	visible     bool      // the window is shown
	noTrayNote  bool      // the banner explains how to get a tray
	lastSnap    api.Snapshot

	// widgets (UI goroutine)
	root         *fyne.Container
	list         *widget.List
	headerBtns   []*widget.Button
	totalDown    *canvas.Text
	totalUp      *canvas.Text
	totalGraph   *Graph
	filter       *widget.Entry
	pauseBtn     *widget.Button
	banner       *fyne.Container
	bannerKey    string
	overlay      *fyne.Container
	overlayBG    *canvas.Rectangle
	overlayTitle *widget.Label
	overlayText  *widget.Label
	statusLine   *widget.Label
	countLabel   *widget.Label
	det          *detailsPane
	split        *container.Split
}

// connState is what the window knows about the helper.
type connState int

const (
	stateConnecting   connState = iota // no answer yet
	stateConnected                     // answers
	stateMissing                       // not installed / cannot be started
	stateUnauthorized                  // polkit refuses monitoring
	stateNoAnswer                      // errors or timeouts
	stateRestarting                    // left the bus; waiting for it
	stateUnreachable                   // the remote machine cannot be reached
)

// New builds the window (not shown) and the tray menu. Call Start to begin
// polling; Run does both and runs the app.
func New(a fyne.App, b Backend, opts Options) *UI {
	opts.defaults()
	u := &UI{
		app:      a,
		b:        b,
		opts:     opts,
		icons:    newIconCache(),
		pollNow:  make(chan struct{}, 1),
		pending:  map[string]*pendingEdit{},
		settings: loadSettings(a.Preferences()),
		view:     newView(),
		appIcons: map[string]fyne.Resource{},
		visible:  true,
		do:       fyne.Do,
		doWait:   fyne.DoAndWait,
		host:     opts.Host,
	}
	u.selectedID.Store("")
	u.needStatus.Store(true)
	u.shown.Store(true)
	if d, ok := a.(desktop.App); ok {
		u.tray = d
	}
	u.win = a.NewWindow(u.title())
	u.win.SetIcon(assets.AppIcon)
	u.win.SetContent(u.build())
	u.win.Resize(fyne.NewSize(1240, 780))
	u.win.SetCloseIntercept(u.closeWindow)
	u.addShortcuts()
	u.applyState()
	if u.tray != nil {
		u.tray.SetSystemTrayIcon(assets.TrayIcon)
		u.refreshTray(true)
	}
	return u
}

// title is the window title: it names the remote machine.
func (u *UI) title() string {
	if u.host == "" {
		return "ChadThrottle"
	}
	return "ChadThrottle — " + u.host
}

// Window returns the main window.
func (u *UI) Window() fyne.Window { return u.win }

// Run shows the window (unless hidden into a tray), polls the helper until
// ctx ends, and runs the Fyne event loop until the app quits.
func Run(ctx context.Context, a fyne.App, b Backend, opts Options) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := New(a, b, opts)
	if u.startHidden() {
		u.setVisible(false)
	} else {
		u.win.Show()
		u.sayNoTray()
	}
	u.Start(ctx)
	go func() {
		<-ctx.Done()
		fyne.Do(a.Quit)
	}()
	a.Run()
}

// startHidden decides whether the window stays hidden at start: when asked
// to (--hidden or the setting) and a tray host shows the icon. --hidden
// (the login autostart) keeps the window hidden without a tray host too:
// popping a window open at every login is worse than waiting unseen
// (nothing is polled then); a tray host that appears later shows the icon,
// and launching ChadThrottle again shows the window. The setting alone,
// with the app started by hand, shows the window when there is no tray.
func (u *UI) startHidden() bool {
	switch {
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

// Start subscribes to the helper's signals and polls it until ctx ends:
// every Interval while someone looks (the window is shown or the tray menu
// opened lately), every SlowInterval while nobody looks but limits exist
// (so the tray icon shows them), and otherwise only when something
// happened (a limit changed, the helper appeared, an action was taken), so
// that an idle helper may exit.
func (u *UI) Start(ctx context.Context) {
	c1 := u.b.OnLimitsChanged(u.requestPoll) // the helper runs: asking it starts nothing
	c2 := u.b.OnHelperPresence(func(running bool) {
		u.needStatus.Store(true)
		if !running && !u.looking() {
			// most likely its idle exit: polling now would start it
			// again for nobody; the next look polls
			return
		}
		if !running {
			u.do(func() {
				if u.state != stateMissing {
					u.setState(stateRestarting, "")
				}
			})
		}
		u.requestPoll()
	})
	go func() {
		defer c1()
		defer c2()
		// nobody looks at start (hidden at login): ask only a helper
		// that already runs, to learn whether limits exist
		if u.looking() || u.helperRunning(ctx) {
			u.Poll(ctx)
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
			u.Poll(ctx)
		}
	}()
	if ch := u.opts.TrayOpened; ch != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
					u.trayOpenUntil.Store(time.Now().Add(u.opts.TrayOpenPoll).UnixNano())
					u.requestPoll()
				}
			}
		}()
	}
	if ch := u.opts.Activate; ch != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
					u.do(u.showWindow)
				}
			}
		}()
	}
}

// looking reports whether someone looks at the data: the window is shown
// or the tray menu opened lately (any goroutine).
func (u *UI) looking() bool {
	return u.shown.Load() || time.Now().UnixNano() < u.trayOpenUntil.Load()
}

// pollWait is how long the poll loop waits for the next poll; 0 means
// until something asks for one (any goroutine).
func (u *UI) pollWait() time.Duration {
	switch {
	case u.looking():
		return u.opts.Interval
	case u.limitsSeen.Load() && u.trayAvailable():
		return u.opts.SlowInterval
	}
	return 0
}

// helperRunning asks, without starting it, whether the helper runs; when
// that cannot be told it answers true (one poll tells more).
func (u *UI) helperRunning(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, u.opts.CallTimeout)
	defer cancel()
	up, err := u.b.Running(cctx)
	return up || err != nil
}

func (u *UI) requestPoll() {
	select {
	case u.pollNow <- struct{}{}:
	default:
	}
}

func (u *UI) trayAvailable() bool {
	return u.tray != nil && u.opts.TrayAvailable != nil && u.opts.TrayAvailable()
}

// closeWindow hides to the tray when a tray host is there, else quits.
func (u *UI) closeWindow() {
	if u.trayAvailable() {
		u.win.Hide()
		u.setVisible(false)
		return
	}
	u.app.Quit()
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
	if u.noTrayNote || p.Bool(prefNoTraySaid) || u.trayAvailable() {
		return
	}
	p.SetBool(prefNoTraySaid, true)
	u.noTrayNote = true
	u.updateBanner()
}

// NoTrayNotice is what the window says, once, when there is no tray host.
const NoTrayNotice = "No system tray found. Without one, closing this window quits ChadThrottle, and when it starts at " +
	"login it stays out of sight until you open it from the applications menu. On GNOME, install the AppIndicator " +
	"extension (package gnome-shell-extension-appindicator) and turn it on in Extensions; KDE Plasma, Xfce, " +
	"Cinnamon and MATE have a tray."

func (u *UI) addShortcuts() {
	c := u.win.Canvas()
	c.AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyF, Modifier: fyne.KeyModifierShortcutDefault}, func(fyne.Shortcut) {
		c.Focus(u.filter)
	})
	c.AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyQ, Modifier: fyne.KeyModifierShortcutDefault}, func(fyne.Shortcut) {
		u.app.Quit()
	})
	c.AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyW, Modifier: fyne.KeyModifierShortcutDefault}, func(fyne.Shortcut) {
		u.closeWindow()
	})
	c.SetOnTypedKey(func(e *fyne.KeyEvent) {
		switch e.Name {
		case fyne.KeyDown, fyne.KeyUp, fyne.KeyTab:
			c.Focus(u.list) // nothing focused: arrows start in the list
		case fyne.KeyEscape:
			u.list.UnselectAll()
		}
	})
}

// build creates the widget tree.
func (u *UI) build() fyne.CanvasObject {
	// header: totals, graph, filter, pause, settings
	u.totalDown = canvas.NewText("↓ –", colorDown)
	u.totalDown.TextSize = 20
	u.totalDown.TextStyle.Bold = true
	u.totalUp = canvas.NewText("↑ –", colorUp)
	u.totalUp.TextSize = 20
	u.totalUp.TextStyle.Bold = true
	u.totalGraph = NewGraph(fyne.NewSize(240, 46), false)
	logo := canvas.NewImageFromResource(assets.AppIcon)
	logo.SetMinSize(fyne.NewSize(40, 40))
	logo.FillMode = canvas.ImageFillContain
	u.filter = widget.NewEntry()
	u.filter.SetPlaceHolder("Filter apps (Ctrl+F)")
	u.filter.ActionItem = widget.NewIcon(theme.SearchIcon())
	u.filter.OnChanged = func(s string) {
		u.view.setFilter(s)
		u.refreshList()
	}
	u.filter.OnSubmitted = func(string) { u.win.Canvas().Focus(u.list) }
	u.pauseBtn = widget.NewButtonWithIcon("Pause limits", theme.MediaPauseIcon(), func() { u.togglePause(false) })
	settingsBtn := widget.NewButtonWithIcon("Settings", theme.SettingsIcon(), u.showSettings)
	totals := container.NewVBox(
		container.NewHBox(u.totalDown, widget.NewLabel(" "), u.totalUp),
	)
	header := container.NewBorder(nil, nil,
		container.NewHBox(logo, totals, u.totalGraph),
		container.NewHBox(container.New(fixedWidth{w: 250}, u.filter), u.pauseBtn, settingsBtn),
	)

	// column header: each title sorts by its column
	cols := u.rowColumns()
	hdr := []fyne.CanvasObject{layout.NewSpacer(), layout.NewSpacer()}
	for c := Column(0); c < numColumns; c++ {
		b := widget.NewButton(c.Title(), nil)
		b.Importance = widget.LowImportance
		b.Alignment = widget.ButtonAlignLeading
		if c != ColName && c != ColLimit {
			b.Alignment = widget.ButtonAlignTrailing
		}
		b.IconPlacement = widget.ButtonIconTrailingText
		b.OnTapped = func() {
			u.view.setSort(c)
			u.updateSortButtons()
			u.refreshList()
		}
		u.headerBtns = append(u.headerBtns, b)
		hdr = append(hdr, b)
	}
	upHdr := widget.NewButton("Upload limit", func() { u.headerBtns[ColLimit].OnTapped() })
	upHdr.Importance = widget.LowImportance
	upHdr.Alignment = widget.ButtonAlignLeading
	hdr = append(hdr, upHdr)
	u.updateSortButtons()
	colHeader := container.New(cols, hdr...)

	u.list = widget.NewList(
		func() int { return len(u.view.rows) },
		u.newRow,
		u.updateRow,
	)
	u.list.OnSelected = func(id widget.ListItemID) {
		if id < 0 || id >= len(u.view.rows) {
			return
		}
		u.touch()
		u.selectApp(u.view.rows[id].ID)
	}
	u.list.OnUnselected = func(widget.ListItemID) {}

	u.overlayTitle = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	u.overlayTitle.SizeName = theme.SizeNameSubHeadingText
	u.overlayText = widget.NewLabel("")
	u.overlayText.Alignment = fyne.TextAlignCenter
	card := container.NewVBox(u.overlayTitle, u.overlayText,
		container.NewCenter(widget.NewButtonWithIcon("Try again now", theme.ViewRefreshIcon(), func() {
			u.needStatus.Store(true)
			u.requestPoll()
		})))
	u.overlayBG = canvas.NewRectangle(theme.Color(theme.ColorNameBackground))
	u.overlay = container.NewStack(u.overlayBG, container.NewCenter(card))
	u.overlay.Hide()

	listArea := container.NewBorder(colHeader, nil, nil, nil, u.list)

	u.det = newDetailsPane(u)
	u.split = container.NewVSplit(listArea, u.det.root)
	u.split.Offset = 0.62

	u.banner = container.NewVBox()
	u.statusLine = widget.NewLabel("Connecting to the ChadThrottle helper" + u.onHost() + "…")
	u.statusLine.Truncation = fyne.TextTruncateEllipsis
	u.statusLine.SizeName = theme.SizeNameCaptionText
	u.countLabel = widget.NewLabel("")
	u.countLabel.SizeName = theme.SizeNameCaptionText
	bottom := container.NewBorder(widget.NewSeparator(), nil, nil, u.countLabel, u.statusLine)
	top := container.NewVBox(container.NewPadded(header), u.banner)
	u.root = container.NewBorder(top, bottom, nil, nil, container.NewStack(u.split, u.overlay))
	return u.root
}

func (u *UI) updateSortButtons() {
	for c, b := range u.headerBtns {
		b.Icon = nil
		if Column(c) == u.view.sortBy {
			if u.view.asc {
				b.Icon = theme.MenuDropUpIcon()
			} else {
				b.Icon = theme.MenuDropDownIcon()
			}
		}
		b.Refresh()
	}
}

// freezeTime is how long the row order stays put after the person
// interacted with the list.
const freezeTime = 4 * time.Second

// touch keeps rows from re-sorting under the pointer for a moment.
func (u *UI) touch() { u.freezeUntil = time.Now().Add(freezeTime) }

// notify shows a transient message in the banner (UI goroutine).
func (u *UI) notify(msg string) {
	u.notice = msg
	u.noticeUntil = time.Now().Add(12 * time.Second)
	u.updateBanner()
}

// bannerMessage is one line of the banner.
type bannerMessage struct {
	text    string
	warn    bool
	dismiss func() // a "Got it" button calls it; nil: no button
}

// bannerMessages lists what the banner shows now, most important first.
func (u *UI) bannerMessages() []bannerMessage {
	var m []bannerMessage
	if u.notice != "" && time.Now().Before(u.noticeUntil) {
		m = append(m, bannerMessage{text: u.notice, warn: true})
	}
	if u.noTrayNote {
		m = append(m, bannerMessage{text: NoTrayNotice, dismiss: func() {
			u.noTrayNote = false
			u.updateBanner()
		}})
	}
	if u.state != stateConnected {
		return m
	}
	if u.readOnly() {
		m = append(m, bannerMessage{text: "Read-only: you may watch traffic here, but your account is not allowed to set limits. " +
			"Ask an administrator to grant \"" + api.ActionLimitOwn + "\"."})
	}
	if !u.downloadAvailable() {
		reason := u.status.DownloadReason
		if reason == "" {
			reason = "the helper did not say why"
		}
		m = append(m, bannerMessage{text: "Download limits are not available on this system, so only uploads can be limited. Reason: " + reason, warn: true})
	}
	if u.status.Paused {
		m = append(m, bannerMessage{text: "Limits are paused: apps run at full speed until you resume them."})
	}
	return m
}

func (u *UI) updateBanner() {
	msgs := u.bannerMessages()
	var kb strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&kb, "%v %v %q;", m.warn, m.dismiss != nil, m.text)
	}
	key := kb.String()
	if key == u.bannerKey {
		return
	}
	u.bannerKey = key
	u.banner.RemoveAll()
	for _, m := range msgs {
		icon := widget.NewIcon(theme.InfoIcon())
		fill := color.NRGBA{R: 0x2f, G: 0x8c, B: 0xf0, A: 0x30}
		if m.warn {
			icon = widget.NewIcon(theme.WarningIcon())
			fill = color.NRGBA{R: 0xff, G: 0x98, B: 0x00, A: 0x38}
		}
		l := widget.NewLabel(m.text)
		l.Wrapping = fyne.TextWrapWord
		bg := canvas.NewRectangle(fill)
		bg.CornerRadius = 4
		var right fyne.CanvasObject
		if m.dismiss != nil {
			right = container.NewCenter(widget.NewButton("Got it", m.dismiss))
		}
		u.banner.Add(container.NewStack(bg, container.NewBorder(nil, nil, container.NewCenter(icon), right, l)))
	}
	u.root.Refresh() // the banner's height changed: lay out again
}

func (u *UI) readOnly() bool {
	return u.permsKnown && u.perms.LimitOwn == api.PermNo
}

func (u *UI) downloadAvailable() bool {
	return u.state != stateConnected || u.status.Download != ""
}

// togglePause pauses or resumes the caller's limits; fromTray: the tray
// asked.
func (u *UI) togglePause(fromTray bool) {
	paused := !u.status.Paused
	u.call(func(ctx context.Context) error { return u.b.SetPaused(ctx, paused) }, func(err error) {
		if err != nil {
			u.report(fromTray, "Could not "+map[bool]string{true: "pause", false: "resume"}[paused]+" limits", explain(err))
			return
		}
		u.status.Paused = paused
		u.applyState()
	})
}

// call runs fn off the UI goroutine with the long timeout of limit
// changes, then done(err) on the UI goroutine, then polls.
func (u *UI) call(fn func(ctx context.Context) error, done func(error)) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), setTimeout)
		err := fn(ctx)
		cancel()
		u.do(func() { done(err) })
		u.needStatus.Store(true)
		u.requestPoll()
	}()
}
