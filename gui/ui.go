package gui

import (
	"context"
	"fmt"
	"image/color"
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
	// Interval between polls (default 1 s).
	Interval time.Duration
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
	if o.Debounce <= 0 {
		o.Debounce = 400 * time.Millisecond
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 5 * time.Second
	}
}

const setTimeout = 2 * time.Minute

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
	hidden := opts.Hidden || u.settings.StartHidden
	if !hidden || u.tray == nil || !u.trayAvailable() {
		u.win.Show()
	} else {
		u.visible = false
	}
	u.Start(ctx)
	go func() {
		<-ctx.Done()
		fyne.Do(a.Quit)
	}()
	a.Run()
}

// Start subscribes to the helper's signals and polls it until ctx ends.
func (u *UI) Start(ctx context.Context) {
	c1 := u.b.OnLimitsChanged(u.requestPoll)
	c2 := u.b.OnHelperPresence(func(running bool) {
		u.needStatus.Store(true)
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
		t := time.NewTicker(u.opts.Interval)
		defer t.Stop()
		for {
			u.Poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-u.pollNow:
			}
		}
	}()
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
		u.visible = false
		return
	}
	u.app.Quit()
}

// showWindow brings the window up (tray "Open").
func (u *UI) showWindow() {
	if !u.visible {
		u.visible = true
		u.redraw()
	}
	u.win.Show()
	u.win.RequestFocus()
}

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
	u.pauseBtn = widget.NewButtonWithIcon("Pause limits", theme.MediaPauseIcon(), u.togglePause)
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
	text string
	warn bool
}

// bannerMessages lists what the banner shows now, most important first.
func (u *UI) bannerMessages() []bannerMessage {
	var m []bannerMessage
	if u.notice != "" && time.Now().Before(u.noticeUntil) {
		m = append(m, bannerMessage{u.notice, true})
	}
	if u.state != stateConnected {
		return m
	}
	if u.readOnly() {
		m = append(m, bannerMessage{"Read-only: you may watch traffic here, but your account is not allowed to set limits. " +
			"Ask an administrator to grant \"" + api.ActionLimitOwn + "\".", false})
	}
	if !u.downloadAvailable() {
		reason := u.status.DownloadReason
		if reason == "" {
			reason = "the helper did not say why"
		}
		m = append(m, bannerMessage{"Download limits are not available on this system, so only uploads can be limited. Reason: " + reason, true})
	}
	if u.status.Paused {
		m = append(m, bannerMessage{"Limits are paused: apps run at full speed until you resume them.", false})
	}
	return m
}

func (u *UI) updateBanner() {
	msgs := u.bannerMessages()
	key := fmt.Sprint(msgs)
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
		u.banner.Add(container.NewStack(bg, container.NewBorder(nil, nil, container.NewCenter(icon), nil, l)))
	}
	u.root.Refresh() // the banner's height changed: lay out again
}

func (u *UI) readOnly() bool {
	return u.permsKnown && u.perms.LimitOwn == api.PermNo
}

func (u *UI) downloadAvailable() bool {
	return u.state != stateConnected || u.status.Download != ""
}

// togglePause pauses or resumes the caller's limits.
func (u *UI) togglePause() {
	paused := !u.status.Paused
	u.call(func(ctx context.Context) error { return u.b.SetPaused(ctx, paused) }, func(err error) {
		if err != nil {
			u.notify("Could not " + map[bool]string{true: "pause", false: "resume"}[paused] + " limits: " + explain(err))
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
