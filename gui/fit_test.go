package gui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestWindowFits: at 1024 px (1×) and 1366 px at 125 % (1093 logical px)
// every column of the header, the column titles and the rows lies inside
// the window — the upload limit's entry included — with the totals
// columns shown; narrower, the totals columns go and the rest still fits.
func TestWindowFits(t *testing.T) {
	fx := newFixture(t, testApps())
	for _, c := range []struct {
		width      float32
		withTotals bool
	}{{1024, true}, {1093, true}, {1240, true}, {760, false}} {
		fx.ui.win.Resize(fyne.NewSize(c.width, 700))
		fx.drain()
		fx.ui.root.Refresh()
		fx.drain()
		right := func(o fyne.CanvasObject) float32 {
			return fyne.CurrentApp().Driver().AbsolutePositionForObject(o).X + o.Size().Width
		}
		win := fx.ui.win.Canvas().Size().Width
		for name, o := range map[string]fyne.CanvasObject{
			"settings button":    fx.ui.hdr.pauseBtn,
			"upload limit title": fx.ui.apps.headerBtns[len(fx.ui.apps.headerBtns)-1],
			"download limit col": fx.ui.apps.headerBtns[ColLimit],
			"filter":             fx.ui.hdr.filter,
		} {
			if r := right(o); r > win+0.5 {
				t.Errorf("%v px: %s ends at %.0f, past the window's %.0f", c.width, name, r, win)
			}
		}
		// a row as wide as the list: its upload-limit entry inside
		o := fx.ui.newRow()
		fx.ui.updateRow(1, o)
		row := o.(*rowBox).row
		listW := fx.ui.apps.list.Size().Width
		o.Resize(fyne.NewSize(listW, o.MinSize().Height))
		box := row.limUp.box
		if r := box.Position().X + row.limUp.entry.Position().X + row.limUp.entry.Size().Width; r > listW+0.5 || row.limUp.entry.Size().Width < 80 {
			t.Errorf("%v px: the upload limit entry ends at %.0f (width %.0f) in a row of %.0f", c.width, r, row.limUp.entry.Size().Width, listW)
		}
		cols := o.(*rowBox).content.(*fyne.Container).Objects
		if got := cols[5].Visible() && cols[6].Visible(); got != c.withTotals {
			t.Errorf("%v px: totals column shown %v, want %v", c.width, got, c.withTotals)
		}
	}
}

// TestLimitZoneShown: a row's caption says which zone its limit covers
// when it is not all traffic.
func TestLimitZoneShown(t *testing.T) {
	apps := testApps()
	apps[0].Limit = api.Limit{Down: 1_000_000, Traffic: api.TrafficInternet}
	apps[1].Limit = api.Limit{Up: 500_000, Traffic: api.TrafficLocal}
	apps[2].Limit = api.Limit{Down: 100_000, Traffic: api.TrafficAll}
	fx := newFixture(t, apps)
	for name, want := range map[string]string{"Steam": "limited (internet)", "Firefox": "limited (local network)", "curl": "limited"} {
		r := fx.row(name)
		if r == nil {
			t.Fatalf("no row %s", name)
		}
		if !strings.Contains(r.subRaw, want) || (want == "limited" && strings.Contains(r.subRaw, "limited (")) {
			t.Errorf("%s caption %q, want %q", name, r.subRaw, want)
		}
	}
}
