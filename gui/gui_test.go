package gui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// trayApp is Fyne's test app plus the desktop tray API, recording what the
// window puts into the tray, and a Quit that can be observed.
type trayApp struct {
	fyne.App
	mu    sync.Mutex
	menu  *fyne.Menu
	icon  fyne.Resource
	menus int
	quits int
}

func (a *trayApp) SetSystemTrayMenu(m *fyne.Menu) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.menu = m
	a.menus++
}
func (a *trayApp) SetSystemTrayIcon(r fyne.Resource) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.icon = r
}
func (a *trayApp) SetSystemTrayWindow(fyne.Window) {}
func (a *trayApp) Quit() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.quits++
}

func testApps() []api.App {
	return []api.App{
		{ID: "1000:/usr/bin/steam", Name: "Steam", Exe: "/usr/bin/steam", UID: 1000, User: "alice", PIDs: []int32{11, 12},
			RxRate: 5_000_000, TxRate: 20_000, RxBytes: 9_000_000_000, TxBytes: 1_000_000},
		{ID: "1000:/usr/bin/firefox", Name: "Firefox", Exe: "/usr/bin/firefox", UID: 1000, User: "alice", PIDs: []int32{21},
			RxRate: 800_000, TxRate: 90_000, RxBytes: 50_000_000, TxBytes: 30_000_000},
		{ID: "1000:/usr/bin/curl", Name: "curl", Exe: "/usr/bin/curl", UID: 1000, User: "alice", PIDs: []int32{31},
			RxRate: 1_500, TxRate: 300_000, RxBytes: 2_000, TxBytes: 600_000_000},
	}
}

// fixture is a window on Fyne's test driver against a Fake. Work the
// background goroutines hand to the UI goroutine queues up in q and runs
// on the test goroutine when the test drains it, so widgets are only
// touched there.
type fixture struct {
	t    *testing.T
	app  *trayApp
	fake *Fake
	ui   *UI
	q    chan func()
}

func newFixture(t *testing.T, apps []api.App) *fixture {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_DIRS", t.TempDir()) // not /etc/xdg: a package test may install one there
	ta := &trayApp{App: test.NewTempApp(t)}
	f := NewFake()
	f.SetApps(apps)
	u := New(ta, f, Options{Debounce: 500 * time.Millisecond, TrayAvailable: func() bool { return true }})
	u.win.Resize(fyne.NewSize(1240, 780))
	fx := &fixture{t: t, app: ta, fake: f, ui: u, q: make(chan func(), 1000)}
	u.do = func(fn func()) { fx.q <- fn }
	u.doWait = func(fn func()) {
		done := make(chan struct{})
		fx.q <- func() { fn(); close(done) }
		<-done
	}
	fx.poll()
	return fx
}

// poll runs one Poll and applies it.
func (fx *fixture) poll() {
	done := make(chan struct{})
	go func() { fx.ui.Poll(context.Background()); close(done) }()
	for {
		select {
		case fn := <-fx.q:
			fn()
		case <-done:
			fx.drain()
			return
		}
	}
}

// drain runs queued UI work.
func (fx *fixture) drain() {
	for {
		select {
		case fn := <-fx.q:
			fn()
		default:
			return
		}
	}
}

// waitCall waits for the fake's next limit call, running UI work meanwhile.
func (fx *fixture) waitCall() (FakeCall, bool) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		fx.drain()
		if c, ok := fx.fake.WaitCall(10 * time.Millisecond); ok {
			return c, true
		}
	}
	return FakeCall{}, false
}

// rows returns the rendered rows, top to bottom.
func (fx *fixture) rows() []*appRow {
	var rows []*rowBox
	for _, o := range test.LaidOutObjects(fx.ui.apps.list) {
		if rb, ok := o.(*rowBox); ok && rb.Visible() && rb.row.id != "" {
			rows = append(rows, rb)
		}
	}
	// LaidOutObjects walks in layout order; sort by position to be sure
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && rows[j].Position().Y < rows[j-1].Position().Y; j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
	var out []*appRow
	for _, rb := range rows {
		out = append(out, rb.row)
	}
	return out
}

func (fx *fixture) row(name string) *appRow {
	fx.t.Helper()
	for _, r := range fx.rows() {
		if r.name.Text == name {
			return r
		}
	}
	fx.t.Fatalf("no rendered row %q; rows: %v", name, fx.names())
	return nil
}

// shownRow is the row the window shows for app name (fx.row's rows are
// laid out by the test driver apart from the window: the list's own).
func (fx *fixture) shownRow(name string) *appRow {
	fx.t.Helper()
	var row *appRow
	fx.walkShown(func(x fyne.CanvasObject, _ fyne.Position) bool {
		if b, ok := x.(*rowBox); ok && b.row.name.Text == name {
			row = b.row
			return true
		}
		return false
	})
	if row == nil {
		fx.t.Fatalf("no row %q shown in the window", name)
	}
	return row
}

// shownAt is where o is in the window's canvas, found by walking what the
// window shows (as the canvas does to find what is under the pointer).
func (fx *fixture) shownAt(o fyne.CanvasObject) fyne.Position {
	fx.t.Helper()
	var at fyne.Position
	found := false
	fx.walkShown(func(x fyne.CanvasObject, pos fyne.Position) bool {
		at, found = pos, x == o
		return found
	})
	if !found {
		fx.t.Fatalf("%T is not shown in the window", o)
	}
	return at
}

// walkShown calls fn with each object the window shows and its position in
// the canvas, until fn returns true.
func (fx *fixture) walkShown(fn func(o fyne.CanvasObject, pos fyne.Position) bool) {
	done := false
	var walk func(x fyne.CanvasObject, parent fyne.Position)
	walk = func(x fyne.CanvasObject, parent fyne.Position) {
		if done || !x.Visible() {
			return
		}
		pos := parent.Add(x.Position())
		if done = fn(x, pos); done {
			return
		}
		switch x := x.(type) {
		case *fyne.Container:
			for _, k := range x.Objects {
				walk(k, pos)
			}
		case fyne.Widget:
			for _, k := range test.WidgetRenderer(x).Objects() {
				walk(k, pos)
			}
		}
	}
	walk(fx.ui.win.Canvas().Content(), fyne.Position{})
}

func (fx *fixture) names() []string {
	var n []string
	for _, r := range fx.rows() {
		n = append(n, r.name.Text)
	}
	return n
}

// settle waits until no limit edit is pending or in flight.
func (fx *fixture) settle() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		fx.ui.mu.Lock()
		n := len(fx.ui.pending)
		fx.ui.mu.Unlock()
		if n == 0 {
			time.Sleep(50 * time.Millisecond)
			fx.drain()
			return
		}
		time.Sleep(10 * time.Millisecond)
		fx.drain()
	}
	fx.t.Fatal("limit edits still pending after 5 s")
}

func TestRowsRenderFromData(t *testing.T) {
	fx := newFixture(t, testApps())
	if got, want := strings.Join(fx.names(), ","), "Steam,Firefox,curl"; got != want {
		t.Fatalf("rows by download rate: got %s, want %s", got, want)
	}
	r := fx.row("Steam")
	checks := map[string]string{
		"download": r.down.Text, "upload": r.up.Text, "downloaded": r.totDn.Text, "uploaded": r.totUp.Text, "sub": r.sub.Text,
	}
	want := map[string]string{
		"download": "5 MB/s", "upload": "20 KB/s", "downloaded": "9 GB", "uploaded": "1 MB", "sub": "2 processes · alice",
	}
	for k, v := range want {
		if checks[k] != v {
			t.Errorf("Steam %s = %q, want %q", k, checks[k], v)
		}
	}
	if r.limDn.slider.Value != sliderMax || r.limDn.entry.Text != "" {
		t.Errorf("unlimited app: slider %v entry %q, want the unlimited end and an empty entry", r.limDn.slider.Value, r.limDn.entry.Text)
	}
	if got := fx.ui.hdr.totalDown.Text; got != "↓ 5.8 MB/s" {
		t.Errorf("header total = %q, want ↓ 5.8 MB/s", got)
	}
	if got := fx.ui.countLabel.Text; got != "3 apps" {
		t.Errorf("count = %q", got)
	}
	if !strings.Contains(fx.ui.conn.statusLine.Text, "Connected") || !strings.Contains(fx.ui.conn.statusLine.Text, "download limits: fake") {
		t.Errorf("status line = %q", fx.ui.conn.statusLine.Text)
	}
	if fx.ui.conn.overlay.Visible() {
		t.Error("overlay visible while connected")
	}

	// a limit in the data shows on the row: mark, slider, entry, caption
	apps := testApps()
	apps[1].Limit = api.Limit{Down: 1_000_000, Traffic: api.TrafficAll}
	fx.fake.SetApps(apps)
	fx.poll()
	r = fx.row("Firefox")
	if r.mark.FillColor != colorMark || !strings.Contains(r.sub.Text, "limited") {
		t.Errorf("limited row: mark %v, caption %q", r.mark.FillColor, r.sub.Text)
	}
	if r.limDn.entry.Text != "1 MB/s" || r.limDn.slider.Value != LimitToSlider(1_000_000) {
		t.Errorf("limited row: entry %q slider %v", r.limDn.entry.Text, r.limDn.slider.Value)
	}
	if fx.row("Steam").mark.FillColor == colorMark {
		t.Error("unlimited Steam row carries the limit mark")
	}
}

func TestSliderDragIsDebounced(t *testing.T) {
	fx := newFixture(t, testApps())
	s := fx.shownRow("Firefox").limDn.slider
	w := s.Size().Width
	if w < 50 {
		t.Fatalf("slider not laid out: width %v", w)
	}
	// a drag across the slider: 30 pointer moves, 5 ms apart, through the
	// canvas for the first (at the slider as the window shows it: the
	// driver's AbsolutePositionForObject misses the list's rows)
	before := s.Value
	test.Drag(fx.ui.win.Canvas(), fx.shownAt(s).Add(fyne.NewPos(w*0.6, s.Size().Height/2)), -5, 0) // the slider takes the press point
	if s.Value == before {
		t.Fatalf("a drag through the canvas did not reach the slider (value %v)", s.Value)
	}
	for i := 0; i < 30; i++ {
		s.Dragged(&fyne.DragEvent{PointEvent: fyne.PointEvent{Position: fyne.NewPos(w*float32(90-2*i)/100, s.Size().Height/2)}})
		time.Sleep(5 * time.Millisecond)
	}
	s.DragEnd()
	want := SliderToLimit(s.Value)
	if want == 0 {
		t.Fatalf("slider ended at the unlimited end (%v)", s.Value)
	}
	c, ok := fx.waitCall()
	if !ok {
		t.Fatal("no SetAppLimit after the slider settled")
	}
	if c.Method != "SetAppLimit" || c.Exe != "/usr/bin/firefox" || c.UID != 1000 || c.Limit.Down != want || c.Limit.Up != 0 {
		t.Fatalf("call = %+v, want SetAppLimit firefox uid 1000 down %d", c, want)
	}
	if c.Limit.Traffic != api.TrafficAll {
		t.Errorf("traffic of a new limit = %q, want the default %q", c.Limit.Traffic, api.TrafficAll)
	}
	fx.settle()
	time.Sleep(300 * time.Millisecond)
	if n := len(fx.fake.Calls()); n != 1 {
		t.Fatalf("%d calls for one drag of 31 moves, want 1: %+v", n, fx.fake.Calls())
	}
	// the row keeps the value (no snap back) and the next poll confirms it
	fx.poll()
	r := fx.row("Firefox")
	if r.limDn.entry.Text != FormatRate(want, UnitAuto) || r.mark.FillColor != colorMark {
		t.Errorf("after the call: entry %q mark %v", r.limDn.entry.Text, r.mark.FillColor)
	}

	// keyboard: five arrow presses in a row make one call
	u := fx.row("Firefox").limUp.slider
	fx.ui.win.Canvas().Focus(u)
	for i := 0; i < 5; i++ {
		u.TypedKey(&fyne.KeyEvent{Name: fyne.KeyLeft})
		time.Sleep(10 * time.Millisecond)
	}
	c, ok = fx.waitCall()
	if !ok {
		t.Fatal("no call after arrow keys")
	}
	if c.Limit.Up != SliderToLimit(sliderMax-5) || c.Limit.Down != want {
		t.Fatalf("arrow keys: %+v, want up %d and the download limit kept (%d)", c.Limit, SliderToLimit(sliderMax-5), want)
	}
	fx.settle()
	time.Sleep(300 * time.Millisecond)
	if n := len(fx.fake.Calls()); n != 2 {
		t.Fatalf("%d calls after five key presses, want 2 in all", n)
	}

	// dragging back to the unlimited end of both removes the limit
	s = fx.row("Firefox").limDn.slider
	s.Dragged(&fyne.DragEvent{PointEvent: fyne.PointEvent{Position: fyne.NewPos(w, 5)}})
	s.DragEnd()
	u = fx.row("Firefox").limUp.slider
	u.Dragged(&fyne.DragEvent{PointEvent: fyne.PointEvent{Position: fyne.NewPos(w, 5)}})
	u.DragEnd()
	c, ok = fx.waitCall()
	if !ok || c.Method != "RemoveAppLimit" || c.Exe != "/usr/bin/firefox" {
		t.Fatalf("both sliders at unlimited: %+v (ok %v), want RemoveAppLimit", c, ok)
	}
}

func TestEntrySetsExactLimit(t *testing.T) {
	fx := newFixture(t, testApps())
	e := fx.row("Steam").limDn.entry
	test.Type(e, "2.5MB/s")
	e.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	c, ok := fx.waitCall()
	if !ok || c.Method != "SetAppLimit" || c.Limit.Down != 2_500_000 {
		t.Fatalf("entry 2.5MB/s: %+v (ok %v), want down 2500000", c, ok)
	}
	fx.settle()
	if got := fx.row("Steam").limDn.slider.Value; got != LimitToSlider(2_500_000) {
		t.Errorf("slider follows the entry: %v, want %v", got, LimitToSlider(2_500_000))
	}

	// a bare number is in the display unit (KB/s when automatic)
	e = fx.row("curl").limUp.entry
	test.Type(e, "250")
	e.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	c, ok = fx.waitCall()
	if !ok || c.Limit.Up != 250_000 || c.Exe != "/usr/bin/curl" {
		t.Fatalf("entry 250: %+v, want up 250000 for curl", c)
	}
	fx.settle()

	// nonsense changes nothing and says why
	e = fx.row("Firefox").limDn.entry
	test.Type(e, "fast please")
	e.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	time.Sleep(300 * time.Millisecond)
	fx.drain()
	if n := len(fx.fake.Calls()); n != 2 {
		t.Fatalf("bad entry made a call: %+v", fx.fake.Calls())
	}
	if !strings.Contains(fx.ui.bnr.bannerKey, "Limit not changed") {
		t.Errorf("no explanation for a bad rate; banner %q", fx.ui.bnr.bannerKey)
	}
}

func TestSortAndFilter(t *testing.T) {
	fx := newFixture(t, testApps())
	tap := func(c Column) { test.Tap(fx.ui.apps.headerBtns[c]) }
	cases := []struct {
		col  Column
		want string
	}{
		{ColName, "curl,Firefox,Steam"},
		{ColName, "Steam,Firefox,curl"}, // again: reversed
		{ColUp, "curl,Firefox,Steam"},
		{ColTotalDown, "Steam,Firefox,curl"},
		{ColTotalUp, "curl,Firefox,Steam"},
		{ColDown, "Steam,Firefox,curl"},
		{ColDown, "curl,Firefox,Steam"},
	}
	for _, c := range cases {
		tap(c.col)
		if got := strings.Join(fx.names(), ","); got != c.want {
			t.Errorf("sort by %s: %s, want %s", c.col.Title(), got, c.want)
		}
	}
	if fx.ui.apps.headerBtns[ColDown].Icon == nil || fx.ui.apps.headerBtns[ColName].Icon != nil {
		t.Error("sort arrow not on the sorted column")
	}
	tap(ColDown) // back to download, largest first
	test.Type(fx.ui.hdr.filter, "fire")
	if got := strings.Join(fx.names(), ","); got != "Firefox" {
		t.Errorf("filter fire: %s", got)
	}
	if fx.ui.countLabel.Text != "1 of 3 apps" {
		t.Errorf("count with filter: %q", fx.ui.countLabel.Text)
	}
	fx.ui.hdr.filter.SetText("/usr/bin/c") // matches the executable too
	if got := strings.Join(fx.names(), ","); got != "curl" {
		t.Errorf("filter by path: %s", got)
	}
	fx.ui.hdr.filter.SetText("")
	fx.poll()
	if got := strings.Join(fx.names(), ","); got != "Steam,Firefox,curl" {
		t.Errorf("filter cleared: %s", got)
	}

	// data changes re-sort on the next poll…
	apps := testApps()
	apps[2].RxRate = 9_000_000
	fx.fake.SetApps(apps)
	fx.poll()
	if got := strings.Join(fx.names(), ","); got != "curl,Steam,Firefox" {
		t.Errorf("after curl got busy: %s", got)
	}
	// …but not right after the person touched the list
	fx.ui.apps.list.Select(2)
	apps[0].RxRate = 20_000_000
	fx.fake.SetApps(apps)
	fx.poll()
	if got := strings.Join(fx.names(), ","); got != "curl,Steam,Firefox" {
		t.Errorf("rows moved right after a selection: %s", got)
	}
	fx.ui.apps.freezeUntil = time.Time{}
	fx.poll()
	if got := strings.Join(fx.names(), ","); got != "Steam,curl,Firefox" {
		t.Errorf("after the freeze: %s", got)
	}
}

func TestKeyboardNavigation(t *testing.T) {
	fx := newFixture(t, testApps())
	c := fx.ui.win.Canvas()
	// Down with nothing focused goes to the list; Down/Space select
	c.(interface{ OnTypedKey() func(*fyne.KeyEvent) }).OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyDown})
	if c.Focused() != fyne.Focusable(fx.ui.apps.list) {
		t.Fatalf("focus after Down = %T, want the list", c.Focused())
	}
	fx.ui.apps.list.TypedKey(&fyne.KeyEvent{Name: fyne.KeyDown})
	fx.ui.apps.list.TypedKey(&fyne.KeyEvent{Name: fyne.KeySpace})
	if fx.ui.selected != "1000:/usr/bin/firefox" {
		t.Fatalf("selected %q after Down, Space; want Firefox", fx.ui.selected)
	}
	// Ctrl+F focuses the filter
	c.(fyne.Shortcutable).TypedShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyF, Modifier: fyne.KeyModifierShortcutDefault})
	if c.Focused() != fyne.Focusable(fx.ui.hdr.filter) {
		t.Errorf("Ctrl+F focused %T", c.Focused())
	}
}

func TestDetails(t *testing.T) {
	fx := newFixture(t, testApps())
	id := "1000:/usr/bin/firefox"
	fx.fake.SetDetails(api.AppDetails{
		App: testApps()[1],
		Processes: []api.Process{
			{PID: 21, Comm: "firefox", Cmdline: "/usr/bin/firefox --new-window", RxRate: 700_000, TxRate: 80_000},
			{PID: 22, Comm: "Web Content", RxRate: 100_000, TxRate: 10_000, Limit: api.Limit{Down: 50_000}},
		},
		Connections: []api.Connection{
			{PID: 21, Proto: "tcp", Local: "10.0.0.2:40000", Remote: "203.0.113.7:443", Traffic: api.TrafficInternet, RxRate: 600_000},
			{PID: 22, Proto: "udp", Local: "10.0.0.2:5353", Remote: "192.168.1.1:53", Traffic: api.TrafficLocal, RxRate: 1_000},
		},
		History: []api.Sample{{RxRate: 100}, {RxRate: 900_000, TxRate: 5}, {RxRate: 800_000, TxRate: 90_000}},
	})
	fx.ui.apps.list.Select(fx.ui.view.index(id))
	fx.poll()
	d := fx.ui.det
	if !d.body.Visible() || d.title.Text != "Firefox" {
		t.Fatalf("details not shown: visible %v title %q", d.body.Visible(), d.title.Text)
	}
	if d.procT.Text != "Processes (2)" || d.connT.Text != "Connections (2)" {
		t.Errorf("tabs: %q %q", d.procT.Text, d.connT.Text)
	}
	if d.graph.Peak() != 900_000 || len(d.graph.samples) != 3 {
		t.Errorf("graph: peak %d, %d samples", d.graph.Peak(), len(d.graph.samples))
	}
	cell := func(tb *widget.Table, row, col int, f func(widget.TableCellID, *widget.Label)) string {
		l := widget.NewLabel("")
		f(widget.TableCellID{Row: row, Col: col}, l)
		return l.Text
	}
	for _, c := range []struct {
		what     string
		tb       *widget.Table
		row, col int
		f        func(widget.TableCellID, *widget.Label)
		want     string
	}{
		{"connection remote", d.conns, 0, 2, d.connCell, "203.0.113.7 (https)"},
		{"connection where", d.conns, 0, 4, d.connCell, "Internet"},
		{"connection 2 where", d.conns, 1, 4, d.connCell, "Local"},
		{"proto", d.conns, 1, 1, d.connCell, "UDP"},
		{"process limit cell", d.procs, 1, 7, d.procCell, "↓ 50 KB/s"},
		{"process rate cell", d.procs, 0, 3, d.procCell, "700 KB/s"},
	} {
		if got := cell(c.tb, c.row, c.col, c.f); got != c.want {
			t.Errorf("%s = %q, want %q", c.what, got, c.want)
		}
	}
}

func TestDownloadUnavailable(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.fake.SetStatus(api.Status{Version: "1", Monitor: "ebpf", Upload: "tc_htb", DownloadReason: "IFB devices cannot be created here"})
	fx.ui.needStatus.Store(true)
	fx.poll()
	if !strings.Contains(fx.ui.bnr.bannerKey, "Download limits are not available") ||
		!strings.Contains(fx.ui.bnr.bannerKey, "IFB devices cannot be created here") {
		t.Errorf("banner = %q, want the plain warning with the helper's reason", fx.ui.bnr.bannerKey)
	}
	if !strings.Contains(fx.ui.conn.statusLine.Text, "download limits: unavailable") {
		t.Errorf("status line = %q", fx.ui.conn.statusLine.Text)
	}
	r := fx.row("Steam")
	if !r.limDn.slider.Disabled() || !r.limDn.entry.Disabled() {
		t.Error("download controls enabled without download limiting")
	}
	if r.limUp.slider.Disabled() {
		t.Error("upload slider disabled")
	}
	// the tray's quick limits switch to upload
	sub := findItem(t, fx.ui.TrayMenu(), "Steam").ChildMenu
	if sub.Items[0].Label != "Limit upload to:" {
		t.Errorf("tray submenu title = %q", sub.Items[0].Label)
	}
	findItem(t, sub, "1 MB/s").Action()
	c, ok := fx.waitCall()
	if !ok || c.Limit.Up != 1_000_000 || c.Limit.Down != 0 {
		t.Fatalf("quick limit without download: %+v", c)
	}
}

func TestHelperStates(t *testing.T) {
	fx := newFixture(t, testApps())
	cases := []struct {
		err   error
		title string
		state connState
	}{
		{fmt.Errorf("%w: no owner", ErrHelperMissing), "not installed or cannot start", stateMissing},
		{fmt.Errorf("%w: polkit", ErrNotAuthorized), "not allowed to see network traffic", stateUnauthorized},
		{errors.New("call GetApps: timeout"), "does not answer", stateNoAnswer},
	}
	for _, c := range cases {
		fx.fake.SetReadError(c.err)
		fx.poll()
		if fx.ui.conn.state != c.state || !fx.ui.conn.overlay.Visible() || !strings.Contains(fx.ui.conn.overlayTitle.Text, c.title) {
			t.Errorf("%v: state %v overlay %v %q", c.err, fx.ui.conn.state, fx.ui.conn.overlay.Visible(), fx.ui.conn.overlayTitle.Text)
		}
		if !strings.Contains(fx.ui.conn.statusLine.Text, "Not connected") {
			t.Errorf("%v: status line %q", c.err, fx.ui.conn.statusLine.Text)
		}
		if fx.ui.countLabel.Text != "" {
			t.Errorf("%v: stale app count %q while disconnected", c.err, fx.ui.countLabel.Text)
		}
		if !fx.row("Steam").limDn.slider.Disabled() {
			t.Errorf("%v: sliders usable while disconnected", c.err)
		}
		if it := fx.ui.TrayMenu().Items[2]; !it.Disabled || !strings.Contains(it.Label, c.title) {
			t.Errorf("%v: tray says %q", c.err, it.Label)
		}
		// recovers by itself on the next successful poll
		fx.fake.SetReadError(nil)
		fx.poll()
		if fx.ui.conn.state != stateConnected || fx.ui.conn.overlay.Visible() || fx.row("Steam").limDn.slider.Disabled() {
			t.Errorf("%v: no recovery: state %v", c.err, fx.ui.conn.state)
		}
		if !strings.HasSuffix(fx.ui.countLabel.Text, " apps") {
			t.Errorf("%v: app count %q after recovery", c.err, fx.ui.countLabel.Text)
		}
	}

	// the helper leaves the bus (restart): says so at once, recovers
	var presence func(bool)
	fx.fake.mu.Lock()
	for _, fn := range fx.fake.presence {
		presence = fn
	}
	fx.fake.mu.Unlock()
	if presence == nil {
		// New does not subscribe; Start does
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fx.ui.opts.Interval = time.Hour
		fx.ui.Start(ctx)
		time.Sleep(100 * time.Millisecond)
	}
	fx.fake.SetReadError(errors.New("The name is not activatable"))
	fx.fake.SetPresence(false)
	fx.waitFor(func() bool { return fx.ui.conn.state == stateRestarting }, "restarting state")
	if !strings.Contains(fx.ui.conn.overlayTitle.Text, "waiting for it to come back") {
		t.Errorf("restart words: %q", fx.ui.conn.overlayTitle.Text)
	}
	fx.fake.SetReadError(nil)
	fx.fake.SetPresence(true)
	fx.waitFor(func() bool { return fx.ui.conn.state == stateConnected }, "reconnected state")
}

func TestReadOnly(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.fake.SetPermissions(api.Permissions{Monitor: api.PermYes, LimitOwn: api.PermNo, Manage: api.PermNo})
	fx.ui.needStatus.Store(true)
	fx.poll()
	if !strings.Contains(fx.ui.bnr.bannerKey, "Read-only") || !strings.Contains(fx.ui.conn.statusLine.Text, "read-only") {
		t.Errorf("read-only not said: banner %q status %q", fx.ui.bnr.bannerKey, fx.ui.conn.statusLine.Text)
	}
	r := fx.row("Steam")
	if !r.limDn.slider.Disabled() || !r.limUp.slider.Disabled() || !r.limDn.entry.Disabled() || !fx.ui.hdr.pauseBtn.Disabled() {
		t.Error("limit controls enabled in read-only mode")
	}
	fx.ui.edit("1000:/usr/bin/steam", dirDown, 100_000)
	time.Sleep(400 * time.Millisecond)
	fx.drain()
	if len(fx.fake.Calls()) != 0 {
		t.Errorf("read-only edit made calls: %+v", fx.fake.Calls())
	}
	if it := findItem(t, fx.ui.TrayMenu(), "Steam"); !it.Disabled {
		t.Error("tray quick limits enabled in read-only mode")
	}
	// monitor refused as well: the not-authorized words
	fx.fake.SetPermissions(api.Permissions{Monitor: api.PermNo, LimitOwn: api.PermNo, Manage: api.PermNo})
	fx.ui.needStatus.Store(true)
	fx.poll()
	if fx.ui.conn.state != stateUnauthorized {
		t.Errorf("monitor=no: state %v", fx.ui.conn.state)
	}
}

func findItem(t *testing.T, m *fyne.Menu, prefix string) *fyne.MenuItem {
	t.Helper()
	var labels []string
	for _, it := range m.Items {
		if strings.HasPrefix(it.Label, prefix) {
			return it
		}
		labels = append(labels, it.Label)
	}
	t.Fatalf("menu %q has no item %q: %q", m.Label, prefix, labels)
	return nil
}

func TestTrayMenu(t *testing.T) {
	apps := testApps()
	for i := 0; i < 6; i++ { // quiet apps: only the top 5 are listed
		apps = append(apps, api.App{ID: fmt.Sprintf("1000:/bin/q%d", i), Name: fmt.Sprintf("quiet%d", i), Exe: fmt.Sprintf("/bin/q%d", i), UID: 1000, RxRate: uint64(i)})
	}
	fx := newFixture(t, apps)
	fx.app.mu.Lock()
	m, icon := fx.app.menu, fx.app.icon
	fx.app.mu.Unlock()
	if m == nil {
		t.Fatal("no tray menu set")
	}
	if icon != assets.TrayIcon {
		t.Errorf("tray icon without limits = %v", icon)
	}
	var labels []string
	for _, it := range m.Items {
		labels = append(labels, it.Label)
	}
	want := []string{"Open ChadThrottle", "", "Steam", "Firefox", "curl", "quiet5", "quiet4", "", "Pause all limits", "", "Quit"}
	if len(labels) != len(want) {
		t.Fatalf("tray menu %q, want %q", labels, want)
	}
	for i := range want {
		if !strings.HasPrefix(labels[i], want[i]) {
			t.Errorf("item %d = %q, want %q…", i, labels[i], want[i])
		}
	}
	if !m.Items[len(m.Items)-1].IsQuit {
		t.Error("Quit is not the quit item")
	}
	sub := findItem(t, m, "Steam").ChildMenu
	var subLabels []string
	for _, it := range sub.Items {
		subLabels = append(subLabels, it.Label)
	}
	if got := strings.Join(subLabels, "|"); got != "Limit download to:|100 KB/s|1 MB/s|5 MB/s|Custom…||Unlimited||Block" {
		t.Errorf("quick-limit submenu = %q", got)
	}
	if !findItem(t, sub, "Unlimited").Checked {
		t.Error("Unlimited not checked for an unlimited app")
	}

	findItem(t, sub, "1 MB/s").Action()
	c, ok := fx.waitCall()
	if !ok || c.Method != "SetAppLimit" || c.Exe != "/usr/bin/steam" || c.Limit.Down != 1_000_000 {
		t.Fatalf("quick limit: %+v (ok %v)", c, ok)
	}
	fx.waitFor(func() bool {
		fx.app.mu.Lock()
		defer fx.app.mu.Unlock()
		return fx.app.icon == assets.TrayLimitedIcon
	}, "limited tray icon")
	fx.poll()
	m = fx.ui.TrayMenu()
	it := findItem(t, m, "Steam")
	if !strings.Contains(it.Label, "(limited)") || !findItem(t, it.ChildMenu, "1 MB/s").Checked {
		t.Errorf("limited app in tray: %q", it.Label)
	}

	// pause, then unlimited
	findItem(t, m, "Pause all limits").Action()
	if c, ok := fx.waitCall(); !ok || c.Method != "SetPaused" || !c.Paused {
		t.Fatalf("pause: %+v", c)
	}
	fx.waitFor(func() bool { return fx.ui.conn.status.Paused }, "paused state")
	fx.poll()
	if findItem(t, fx.ui.TrayMenu(), "Resume limits") == nil {
		t.Fatal("no resume item")
	}
	fx.app.mu.Lock()
	icon = fx.app.icon
	fx.app.mu.Unlock()
	if icon != assets.TrayIcon {
		t.Error("paused limits still show the limited icon")
	}
	findItem(t, findItem(t, fx.ui.TrayMenu(), "Steam").ChildMenu, "Unlimited").Action()
	if c, ok := fx.waitCall(); !ok || c.Method != "RemoveAppLimit" || c.Exe != "/usr/bin/steam" {
		t.Fatalf("unlimited: %+v", c)
	}

	// the menu is rebuilt when its content changes, not on every poll
	fx.ui.waitCalls(3 * time.Second) // the call's outcome is queued for the UI goroutine
	fx.run(50 * time.Millisecond)
	fx.poll()
	fx.app.mu.Lock()
	n := fx.app.menus
	fx.app.mu.Unlock()
	fx.poll()
	fx.poll()
	fx.app.mu.Lock()
	n2 := fx.app.menus
	fx.app.mu.Unlock()
	if n2 != n {
		t.Errorf("tray menu rebuilt %d times by unchanged polls", n2-n)
	}

	// Quit quits
	findItem(t, fx.ui.TrayMenu(), "Quit").Action()
	if fx.app.quits != 1 {
		t.Errorf("quits = %d", fx.app.quits)
	}
}

func TestCloseWindow(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.ui.closeWindow()
	if fx.app.quits != 0 {
		t.Error("closing with a tray quit the app")
	}
	fx.ui.opts.TrayAvailable = func() bool { return false }
	fx.ui.closeWindow()
	if fx.app.quits != 1 {
		t.Error("closing without a tray did not quit")
	}
}

// waitFor runs UI work until cond holds.
func (fx *fixture) waitFor(cond func() bool, what string) {
	fx.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fx.drain()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			fx.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialogParts finds the entries and the confirm button of the top dialog.
func (fx *fixture) dialogParts(confirm string) ([]*widget.Entry, *widget.Button) {
	fx.t.Helper()
	top := fx.ui.win.Canvas().Overlays().Top()
	if top == nil {
		fx.t.Fatal("no dialog open")
	}
	var entries []*widget.Entry
	var btn *widget.Button
	for _, o := range test.LaidOutObjects(top) {
		switch w := o.(type) {
		case *widget.Entry:
			entries = append(entries, w)
		case *widget.Button:
			if w.Text == confirm {
				btn = w
			}
		}
	}
	if btn == nil {
		fx.t.Fatalf("dialog has no %q button", confirm)
	}
	return entries, btn
}

func TestLimitDialogs(t *testing.T) {
	fx := newFixture(t, testApps())
	// tray "Custom…" for Steam: both directions at once
	fx.ui.showLimitDialog(testApps()[0])
	entries, set := fx.dialogParts("Set limit")
	if len(entries) != 3 { // download, upload, schedule
		t.Fatalf("custom limit dialog has %d entries", len(entries))
	}
	test.Type(entries[0], "2MB/s")
	test.Type(entries[1], "64")
	test.Tap(set)
	c, ok := fx.waitCall()
	if !ok || c.Method != "SetAppLimit" || c.Exe != "/usr/bin/steam" || c.Limit != (api.Limit{Down: 2_000_000, Up: 64_000, Traffic: api.TrafficAll}) {
		t.Fatalf("custom limit: %+v (ok %v)", c, ok)
	}

	// a process of the selected app
	fx.fake.SetDetails(api.AppDetails{App: testApps()[1], Processes: []api.Process{{PID: 21, Comm: "firefox"}, {PID: 22, Comm: "Web Content"}}})
	fx.ui.apps.list.Select(fx.ui.view.index("1000:/usr/bin/firefox"))
	fx.poll()
	fx.ui.det.procs.Select(widget.TableCellID{Row: 1, Col: 0})
	if fx.ui.det.selPID != 22 || fx.ui.det.limBtn.Disabled() {
		t.Fatalf("process selection: pid %d, button disabled %v", fx.ui.det.selPID, fx.ui.det.limBtn.Disabled())
	}
	test.Tap(fx.ui.det.limBtn)
	entries, set = fx.dialogParts("Set limit")
	test.Type(entries[1], "1.5MB/s")
	test.Tap(set)
	c, ok = fx.waitCall()
	if !ok || c.Method != "SetProcessLimit" || c.PID != 22 || c.Limit.Up != 1_500_000 || c.Limit.Down != 0 {
		t.Fatalf("process limit: %+v (ok %v)", c, ok)
	}

	// bad input in the dialog: an error, no call
	fx.ui.showLimitDialog(testApps()[2])
	entries, set = fx.dialogParts("Set limit")
	test.Type(entries[0], "lots")
	test.Tap(set)
	fx.drain()
	time.Sleep(100 * time.Millisecond)
	if n := len(fx.fake.Calls()); n != 2 {
		t.Errorf("bad dialog input made a call: %+v", fx.fake.Calls())
	}
}

// TestUnreachableBacksOff: while the remote machine cannot be reached the
// window polls after 2 s, then less often, at most every 30 s (each poll
// runs ssh); the first answer, or switching machines, polls every second
// again.
func TestUnreachableBacksOff(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.ui.opts.SwitchHost = func(string) error { return nil }
	fx.ui.switchHost("alice@box")
	fx.ui.setVisible(true)
	if got := fx.ui.pollWait(); got != time.Second {
		t.Fatalf("reachable: next poll in %v, want 1s", got)
	}
	fx.fake.SetReadError(fmt.Errorf("%w: cannot connect to alice@box: timed out", ErrUnreachable))
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		fx.poll()
		waits = append(waits, fx.ui.pollWait())
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(waits, want) {
		t.Errorf("waits while unreachable %v, want %v", waits, want)
	}
	if fx.ui.conn.state != stateUnreachable || !strings.Contains(fx.ui.conn.overlayText.Text, "at least every 30 s") {
		t.Errorf("state %v, overlay %q", fx.ui.conn.state, fx.ui.conn.overlayText.Text)
	}
	fx.fake.SetReadError(nil)
	fx.poll()
	if got := fx.ui.pollWait(); got != time.Second || fx.ui.conn.state != stateConnected {
		t.Errorf("answered again: next poll in %v, state %v", got, fx.ui.conn.state)
	}
	fx.fake.SetReadError(fmt.Errorf("%w: timed out", ErrUnreachable))
	fx.poll()
	fx.poll()
	fx.ui.switchHost("")
	if got := fx.ui.pollWait(); got != time.Second {
		t.Errorf("after switching machines: next poll in %v, want 1s", got)
	}
}

// The window on a remote machine: the title and the status line name it,
// the states explain SSH and polkit there, the machine is remembered, and
// switching back to this computer starts over.
func TestRemoteHost(t *testing.T) {
	fx := newFixture(t, testApps())
	var switched []string
	fx.ui.opts.SwitchHost = func(h string) error { switched = append(switched, h); return nil }
	const host = "alice@box:2222"
	fx.ui.switchHost(host)
	if fx.ui.win.Title() != "ChadThrottle — "+host || fx.ui.conn.state != stateConnecting || len(fx.ui.view.rows) != 0 {
		t.Fatalf("after switching: title %q state %v rows %d", fx.ui.win.Title(), fx.ui.conn.state, len(fx.ui.view.rows))
	}
	fx.poll()
	if fx.ui.conn.state != stateConnected || !strings.Contains(fx.ui.conn.statusLine.Text, "on "+host+" (over SSH)") {
		t.Errorf("connected remotely: state %v, status line %q", fx.ui.conn.state, fx.ui.conn.statusLine.Text)
	}
	if got := recentHosts(fx.app.Preferences()); len(got) != 1 || got[0] != host {
		t.Errorf("recent hosts %v", got)
	}
	for _, c := range []struct {
		err         error
		state       connState
		title, text string
	}{
		{fmt.Errorf("%w: cannot connect to %s: the host is unreachable", ErrUnreachable, host), stateUnreachable, "Cannot connect to " + host, "ssh -xT"},
		{fmt.Errorf("%w: polkit", ErrNotAuthorized), stateUnauthorized, "on " + host, "allow_any"},
		{fmt.Errorf("%w: no owner", ErrHelperMissing), stateMissing, "not installed on " + host, "cannot start chadthrottle-helper"},
	} {
		fx.fake.SetReadError(c.err)
		fx.poll()
		if fx.ui.conn.state != c.state || !strings.Contains(fx.ui.conn.overlayTitle.Text, c.title) || !strings.Contains(fx.ui.conn.overlayText.Text, c.text) {
			t.Errorf("%v: state %v overlay %q / %q", c.err, fx.ui.conn.state, fx.ui.conn.overlayTitle.Text, fx.ui.conn.overlayText.Text)
		}
		if !strings.Contains(fx.ui.conn.statusLine.Text, host) {
			t.Errorf("%v: status line %q does not name the host", c.err, fx.ui.conn.statusLine.Text)
		}
	}
	fx.fake.SetReadError(nil)
	fx.ui.switchHost("")
	fx.poll()
	if fx.ui.win.Title() != "ChadThrottle" || fx.ui.conn.state != stateConnected || strings.Contains(fx.ui.conn.statusLine.Text, "SSH") {
		t.Errorf("back here: title %q state %v status %q", fx.ui.win.Title(), fx.ui.conn.state, fx.ui.conn.statusLine.Text)
	}
	if len(switched) != 2 || switched[0] != host || switched[1] != "" {
		t.Errorf("SwitchHost calls %q", switched)
	}
	for i := 0; i < MaxRecentHosts+2; i++ {
		addRecentHost(fx.app.Preferences(), fmt.Sprintf("h%d", i))
	}
	addRecentHost(fx.app.Preferences(), "h3")
	if got := recentHosts(fx.app.Preferences()); len(got) != MaxRecentHosts || got[0] != "h3" || got[1] != "h7" {
		t.Errorf("recent hosts after many: %v", got)
	}
}

// The selected app stays highlighted when a poll moves it to another row,
// without the list scrolling to it, and Escape clears the selection and
// the details.
func TestSelectionFollowsApp(t *testing.T) {
	fx := newFixture(t, testApps())
	highlighted := func() (names []string) {
		fx.walkShown(func(x fyne.CanvasObject, _ fyne.Position) bool {
			if b, ok := x.(*rowBox); ok && b.row.sel.Visible() {
				names = append(names, b.row.name.Text)
			}
			return false
		})
		return names
	}
	fx.ui.apps.list.Select(fx.ui.view.index("1000:/usr/bin/firefox"))
	fx.poll()
	if got := highlighted(); len(got) != 1 || got[0] != "Firefox" {
		t.Fatalf("highlighted %v after selecting Firefox", got)
	}
	apps := testApps()
	apps[1].RxRate = 50_000_000 // Firefox goes to the top
	fx.fake.SetApps(apps)
	fx.ui.apps.freezeUntil = time.Time{}
	fx.poll()
	if top := fx.ui.view.rows[0].Name; top != "Firefox" { // (fx.names binds rows of its own)
		t.Fatalf("Firefox did not move: %s at the top", top)
	}
	if got := highlighted(); len(got) != 1 || got[0] != "Firefox" {
		t.Errorf("highlighted %v after Firefox moved to the top, want Firefox only", got)
	}
	if fx.ui.selected != "1000:/usr/bin/firefox" || fx.ui.det.title.Text != "Firefox" {
		t.Errorf("selected %q, details of %q", fx.ui.selected, fx.ui.det.title.Text)
	}
	c := fx.ui.win.Canvas()
	c.(interface{ OnTypedKey() func(*fyne.KeyEvent) }).OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyEscape})
	fx.poll()
	if got := highlighted(); len(got) != 0 || fx.ui.selected != "" || fx.ui.det.body.Visible() {
		t.Errorf("after Escape: highlighted %v, selected %q, details shown %v", got, fx.ui.selected, fx.ui.det.body.Visible())
	}
}
