package gui

import (
	"slices"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestHideIdle: by default the list leaves out apps without a limit or
// rule that moved no bytes for IdleAfter (as the window saw them), shows
// them again when they move bytes or while a filter is typed, and the
// Settings check box "Show idle apps" lists everything (remembered).
func TestHideIdle(t *testing.T) {
	apps := []api.App{
		{ID: "1000:/usr/bin/firefox", Name: "Firefox", Exe: "/usr/bin/firefox", UID: 1000, RxRate: 5000, RxBytes: 1e6},
		{ID: "1000:/usr/bin/sleepy", Name: "Sleepy", Exe: "/usr/bin/sleepy", UID: 1000, RxBytes: 4000},
		{ID: "1000:/usr/bin/never", Name: "Never", Exe: "/usr/bin/never", UID: 1000},
		{ID: "1000:/usr/bin/ruled", Name: "Ruled", Exe: "/usr/bin/ruled", UID: 1000, Rule: true, Limit: api.Limit{Down: 1000}},
	}
	fx := newFixture(t, apps)
	clock := time.Now()
	fx.ui.view.now = func() time.Time { return clock }
	names := func() (out []string) {
		for _, r := range fx.ui.view.rows {
			out = append(out, r.Name)
		}
		return out
	}
	has := func(name string) bool {
		for _, n := range names() {
			if n == name {
				return true
			}
		}
		return false
	}
	// Sleepy moved bytes before the window saw it: active for now; Never
	// never moved a byte: hidden at once.
	if !has("Firefox") || !has("Sleepy") || !has("Ruled") || has("Never") {
		t.Fatalf("at start: rows %v", names())
	}
	if got := fx.ui.countLabel.Text; got != "3 apps · 1 idle hidden" {
		t.Errorf("count %q", got)
	}
	// Four minutes on: Sleepy's bytes did not change; Firefox's did.
	clock = clock.Add(4 * time.Minute)
	apps[0].RxBytes += 1e6
	fx.fake.SetApps(apps)
	fx.poll()
	if !has("Firefox") || has("Sleepy") || !has("Ruled") {
		t.Fatalf("after 4 idle minutes: rows %v", names())
	}
	// A search finds idle apps.
	test.Type(fx.ui.hdr.filter, "sle")
	fx.drain()
	if got := names(); len(got) != 1 || got[0] != "Sleepy" {
		t.Errorf("filter 'sle': rows %v", got)
	}
	fx.ui.hdr.filter.SetText("")
	fx.drain()
	// Sleepy moves bytes again: back at once.
	apps[1].TxBytes = 10
	fx.fake.SetApps(apps)
	fx.poll()
	if !has("Sleepy") {
		t.Errorf("Sleepy moved bytes but stays hidden: %v", names())
	}
	// The setting lists every app, and is remembered.
	s := fx.ui.settings
	s.ShowIdle = true
	fx.ui.applySettings(s)
	fx.drain()
	if len(names()) != 4 {
		t.Errorf("show idle: rows %v", names())
	}
	if !loadSettings(fx.app.Preferences()).ShowIdle {
		t.Error("show idle apps not remembered")
	}
}

// TestDetailTablesSort: a click on a column title of the processes or
// connections table sorts by it (numbers largest first, text A–Z first), a
// second click flips the order, and new details keep the chosen order.
func TestDetailTablesSort(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.fake.SetDetails(api.AppDetails{
		App: api.App{ID: "1000:/usr/bin/firefox", Name: "Firefox"},
		Processes: []api.Process{
			{PID: 30, Comm: "b", RxRate: 10}, {PID: 10, Comm: "c", RxRate: 300}, {PID: 20, Comm: "a", RxRate: 20},
		},
		Connections: []api.Connection{
			{PID: 10, Proto: "tcp", Remote: "b.example:443", TxRate: 5}, {PID: 20, Proto: "udp", Remote: "a.example:53", TxRate: 50},
		},
	})
	fx.ui.apps.list.Select(fx.ui.view.index("1000:/usr/bin/firefox"))
	fx.poll()
	d := fx.ui.det
	pids := func() (out []int32) {
		for _, p := range d.d.Processes {
			out = append(out, p.PID)
		}
		return out
	}
	header := func(tb *widget.Table, col int) *widget.Button {
		b := tb.CreateHeader().(*widget.Button)
		tb.UpdateHeader(widget.TableCellID{Row: -1, Col: col}, b)
		return b
	}
	if got := pids(); !slices.Equal(got, []int32{30, 10, 20}) {
		t.Fatalf("unsorted: the helper's order expected, got %v", got)
	}
	test.Tap(header(d.procs, 3)) // Download: largest first
	if got := pids(); !slices.Equal(got, []int32{10, 20, 30}) {
		t.Errorf("by download: %v", got)
	}
	if b := header(d.procs, 3); b.Text != "Download ▼" {
		t.Errorf("sorted column title %q", b.Text)
	}
	test.Tap(header(d.procs, 3)) // again: smallest first
	if got := pids(); !slices.Equal(got, []int32{30, 20, 10}) {
		t.Errorf("by download, flipped: %v", got)
	}
	test.Tap(header(d.procs, 1)) // Process name: A–Z
	if got := pids(); !slices.Equal(got, []int32{20, 30, 10}) {
		t.Errorf("by name: %v", got)
	}
	fx.poll() // new details keep the order
	if got := pids(); !slices.Equal(got, []int32{20, 30, 10}) {
		t.Errorf("after a poll: %v", got)
	}
	test.Tap(header(d.conns, 2)) // Remote: A–Z
	if d.d.Connections[0].Remote != "a.example:53" {
		t.Errorf("connections by remote: %+v", d.d.Connections)
	}
	// Every title fits its column with the sort arrow ("Downloaded" ran
	// into "Uploaded" at 88 px): the width the table is given against
	// what the header button asks for.
	for _, title := range append(titles(procCols), titles(connCols)...) {
		b := widget.NewButton(title+" ▼", nil)
		b.Importance = widget.LowImportance
		if need, w := b.MinSize().Width, headerWidth(title); need > w {
			t.Errorf("%q needs %.0f px, its column gets at least %.0f", title+" ▼", need, w)
		}
	}
}

func titles[T any](cols []detailCol[T]) (out []string) {
	for _, c := range cols {
		out = append(out, c.title)
	}
	return out
}

// TestLayoutRemembered: the window's size, the list's sort and the split
// position chosen in one run are there in the next (same preferences);
// nonsense in the preferences falls back to the defaults.
func TestLayoutRemembered(t *testing.T) {
	fx := newFixture(t, testApps())
	u := fx.ui
	u.apps.headerBtns[ColName].OnTapped() // sort by name, A–Z
	u.win.Resize(fyne.NewSize(1024, 640))
	u.split.Offset = 0.4
	u.closeWindow()
	fx.drain()

	u2 := New(fx.app, fx.fake, Options{TrayAvailable: func() bool { return true }})
	if s := u2.win.Canvas().Size(); s.Width != 1024 || s.Height != 640 {
		t.Errorf("size %v, want 1024×640", s)
	}
	if u2.view.sortBy != ColName || !u2.view.asc {
		t.Errorf("sort %v asc %v, want name A–Z", u2.view.sortBy, u2.view.asc)
	}
	if u2.split.Offset != 0.4 {
		t.Errorf("split %v, want 0.4", u2.split.Offset)
	}

	p := fx.app.Preferences()
	p.SetFloat(prefWidth, -5)
	p.SetInt(prefSortBy, 99)
	p.SetFloat(prefSplit, 7)
	u3 := New(fx.app, fx.fake, Options{TrayAvailable: func() bool { return true }})
	if s := u3.win.Canvas().Size(); s != defaultSize {
		t.Errorf("bad size kept: %v", s)
	}
	if u3.split.Offset != 0.62 || u3.view.sortBy != ColDown {
		t.Errorf("bad split or sort kept: %v %v", u3.split.Offset, u3.view.sortBy)
	}
}
