package gui

import (
	"context"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
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
	// OpenStatistics opens the Statistics window at start on this period
	// (PeriodToday, PeriodWeek…); "" does not.
	OpenStatistics string
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
	// TrayHandOver: closing the window to the tray ends Run with
	// NextTray (the caller runs RunTray) instead of hiding the window in
	// a running Fyne app (traylight.go).
	TrayHandOver bool
	// Resume is what the previous mode of this process handed over.
	Resume Handover
	// Tray is the window's tray icon and menu (NewSystray; its menu's
	// actions are run through fyne.Do). nil: Fyne's driver's.
	Tray desktop.App
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
	// trayCore is what the tray menu is built from: settings, the apps,
	// the connection, the host and the tray (traycore.go; UI goroutine).
	trayCore
	app   fyne.App
	win   fyne.Window
	icons *iconCache
	// the rows' names fitted to their column (rowname.go; UI goroutine)
	nameFit map[nameFitKey]string

	selectedID atomic.Value // string: the app whose details are polled

	mu      sync.Mutex // guards pending
	pending map[string]*pendingEdit

	// UI goroutine
	remembered string // the host last added to the recent ones
	snapTime   int64
	totals     history
	appIcons   map[string]fyne.Resource // App.Icon → resource
	details    api.AppDetails
	selected   string
	visible    bool // the window is shown
	lastSnap   api.Snapshot
	stats      *statsView // the Statistics window, when open (stats.go)
	next       Next       // what Run returns: NextTray once the window closed to the tray-only mode

	// widgets and the parts' own state (UI goroutine)
	root       *fyne.Container
	countLabel *widget.Label
	det        *detailsPane // the details pane of the selected app
	split      *container.Split
	hdr        headerPart // the header: totals, graph, filter, pause (UI goroutine)
	apps       listPart   // the app list: rows, column titles, the frozen order (UI goroutine)
	bnr        bannerPart // the banner of notices (UI goroutine)
}

// headerPart is the header: totals, graph, filter, pause.
type headerPart struct {
	totalDown  *glyphText
	totalUp    *glyphText
	totalGraph *Graph
	filter     *widget.Entry
	pauseBtn   *widget.Button
	globalBtn  *widget.Button  // the global limit (global.go)
	global     api.GlobalLimit // the global limit in force
}

// listPart is the app list: rows, column titles, the frozen order.
type listPart struct {
	list        *widget.List
	bound       map[widget.ListItemID]*rowBox // the rows by the index they show (paint.go)
	listed      int                           // the number of rows at the last list.Refresh
	headerBtns  []*widget.Button
	freezeUntil time.Time // keep the row order until then
}

// trayPart is the tray menu as last built.
type trayPart struct {
	trayState   trayState
	trayLimited bool
	trayBuilt   time.Time
	trayListed  []string // ids of the apps the tray menu lists
}

// connPart is the connection to the helper and what it said of itself.
type connPart struct {
	state        connState
	stateDetail  string
	status       api.Status
	placement    string // the helper's active placement mode ("" unknown)
	perms        api.Permissions
	permsKnown   bool
	haveData     bool
	lastStatus   time.Time
	overlay      *fyne.Container
	overlayBG    *canvas.Rectangle
	overlayTitle *widget.Label
	overlayText  *widget.Label
	statusLine   *widget.Label
}

// bannerPart is the banner of notices.
type bannerPart struct {
	banner      *fyne.Container
	bannerKey   string
	notice      string
	noticeUntil time.Time
	noTrayNote  bool // the banner explains how to get a tray
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
		icons:    newIconCache(),
		pending:  map[string]*pendingEdit{},
		appIcons: map[string]fyne.Resource{},
		visible:  true,
	}
	u.trayCore.init(a.Preferences(), b, opts, u)
	u.do, u.doWait = fyne.Do, fyne.DoAndWait
	u.selectedID.Store("")
	u.shown.Store(true)
	if opts.Tray != nil {
		u.tray = loopTray{App: opts.Tray, do: fyne.Do}
	} else if d, ok := a.(desktop.App); ok {
		u.tray = d
	}
	u.win = a.NewWindow(u.title())
	u.win.SetIcon(assets.AppIcon)
	u.win.SetContent(u.build())
	u.restoreLayout()
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
// ctx ends, and runs the Fyne event loop until the app quits. It returns
// what comes next: NextTray when the window closed to the tray with
// TrayHandOver, otherwise NextQuit.
func Run(ctx context.Context, a fyne.App, b Backend, opts Options) Handover {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	windowGC()
	u := New(a, b, opts)
	u.quotaSeen = opts.Resume.QuotaSeen
	if u.startHidden() {
		u.setVisible(false)
	} else {
		u.win.Show()
		u.sayNoTray()
	}
	if opts.OpenStatistics != "" {
		u.showStats()
		if u.stats != nil {
			u.stats.periodSel.SetSelected(opts.OpenStatistics)
		}
	}
	u.resume(opts.Resume)
	u.Start(ctx)
	go func() {
		<-ctx.Done()
		fyne.Do(a.Quit)
	}()
	a.Run()
	u.waitCalls(callsAtExit)
	return Handover{Next: u.next, Host: u.host, QuotaSeen: u.quotaSeen}
}

// Start subscribes to the helper's signals and polls it until ctx ends:
// every Interval while someone looks (the window is shown or the tray menu
// opened lately), every SlowInterval while nobody looks but limits exist
// (so the tray icon shows them), and otherwise only when something
// happened (a limit changed, the helper appeared, an action was taken), so
// that an idle helper may exit.
func (u *UI) Start(ctx context.Context) {
	cancels := u.watchHelper(func() {
		if u.conn.state != stateMissing {
			u.setState(stateRestarting, "")
		}
	})
	go u.pollLoop(ctx, u.Poll, append(cancels, u.watchQuotas(ctx))...)
	u.onTraySignals(ctx)
}

func (u *UI) addShortcuts() {
	c := u.win.Canvas()
	c.AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyF, Modifier: fyne.KeyModifierShortcutDefault}, func(fyne.Shortcut) {
		c.Focus(u.hdr.filter)
	})
	c.AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyQ, Modifier: fyne.KeyModifierShortcutDefault}, func(fyne.Shortcut) {
		u.quit()
	})
	c.AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyW, Modifier: fyne.KeyModifierShortcutDefault}, func(fyne.Shortcut) {
		u.closeWindow()
	})
	c.SetOnTypedKey(func(e *fyne.KeyEvent) {
		switch e.Name {
		case fyne.KeyDown, fyne.KeyUp, fyne.KeyTab:
			c.Focus(u.apps.list) // nothing focused: arrows start in the list
		case fyne.KeyEscape:
			u.selectApp("")
		}
	})
}

// build creates the widget tree.
func (u *UI) build() fyne.CanvasObject {
	header := u.buildHeader()
	listArea := container.NewBorder(u.buildColumnHeader(), nil, nil, nil, u.buildList())
	u.buildOverlay()

	u.det = newDetailsPane(u)
	u.split = container.NewVSplit(listArea, u.det.root)
	u.split.Offset = 0.62

	u.bnr.banner = container.NewVBox()
	u.conn.statusLine = widget.NewLabel("Connecting to the ChadThrottle helper" + u.onHost() + "…")
	u.conn.statusLine.Truncation = fyne.TextTruncateEllipsis
	u.conn.statusLine.SizeName = theme.SizeNameCaptionText
	u.countLabel = widget.NewLabel("")
	u.countLabel.SizeName = theme.SizeNameCaptionText
	bottom := container.NewBorder(widget.NewSeparator(), nil, nil, u.countLabel, u.conn.statusLine)
	top := container.NewVBox(container.NewPadded(header), u.bnr.banner)
	u.root = container.NewBorder(top, bottom, nil, nil, container.NewStack(u.split, u.conn.overlay))
	return u.root
}

// buildList makes the app list.
func (u *UI) buildList() fyne.CanvasObject {
	u.apps.list = widget.NewList(
		func() int { return len(u.view.rows) },
		u.newRow,
		u.updateRow,
	)
	u.apps.list.OnSelected = func(id widget.ListItemID) {
		if id < 0 || id >= len(u.view.rows) {
			return
		}
		u.touch()
		u.selectApp(u.view.rows[id].ID)
		// the rows draw the selection (updateRow): the list's own would
		// stay at this place when the app moves
		u.apps.list.UnselectAll()
	}
	u.apps.list.OnUnselected = func(widget.ListItemID) {}
	return u.apps.list
}

// buildOverlay makes the card shown over the list while the helper cannot
// be reached.
func (u *UI) buildOverlay() {
	u.conn.overlayTitle = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	u.conn.overlayTitle.SizeName = theme.SizeNameSubHeadingText
	u.conn.overlayText = widget.NewLabel("")
	u.conn.overlayText.Alignment = fyne.TextAlignCenter
	card := container.NewVBox(u.conn.overlayTitle, u.conn.overlayText,
		container.NewCenter(widget.NewButtonWithIcon("Try again now", theme.ViewRefreshIcon(), func() {
			u.needStatus.Store(true)
			u.requestPoll()
		})))
	u.conn.overlayBG = canvas.NewRectangle(theme.Color(theme.ColorNameBackground))
	u.conn.overlay = container.NewStack(u.conn.overlayBG, container.NewCenter(card))
	u.conn.overlay.Hide()
}

func (u *trayCore) readOnly() bool {
	return u.conn.permsKnown && u.conn.perms.LimitOwn == api.PermNo
}

func (u *trayCore) downloadAvailable() bool {
	return u.conn.state != stateConnected || u.conn.status.Download != ""
}

// togglePause pauses or resumes the caller's limits; fromTray: the tray
// asked.
func (u *UI) togglePause(fromTray bool) {
	paused := !u.conn.status.Paused
	u.call(func(ctx context.Context) error { return u.b.SetPaused(ctx, paused) }, func(err error) {
		if err != nil {
			u.report(fromTray, "Could not "+map[bool]string{true: "pause", false: "resume"}[paused]+" limits", explain(err))
			return
		}
		u.conn.status.Paused = paused
		u.applyState()
	})
}

// onSignal calls fn for every value received on ch (none when ch is nil)
// until ctx ends.
func onSignal[T any](ctx context.Context, ch <-chan T, fn func()) {
	if ch == nil {
		return
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				fn()
			}
		}
	}()
}

// windowGC has the garbage collector keep the window's Go heap within half
// its live size (GOGC=50) unless the user set GOGC: the window allocates
// ~0.4 MB/s (text, polls) over ~11 MB live, so the default let the heap
// reach twice that before each collection; a collection takes ~3 ms
// (issue #17: RSS with the window open).
func windowGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}
