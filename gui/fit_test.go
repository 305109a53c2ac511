package gui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
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
	}{{1024, false}, {1093, true}, {1240, true}, {760, false}} {
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
		// every column title fits its column (sort arrow included), so no
		// title runs into the next
		fx.ui.view.setSort(ColDown)
		fx.ui.updateSortButtons()
		for _, b := range fx.ui.apps.headerBtns {
			// what shows of a flat button: its title and arrow (its
			// padding is transparent)
			ink := fyne.MeasureText(b.Text, theme.TextSize(), fyne.TextStyle{Bold: true}).Width
			if b.Icon != nil {
				ink += theme.IconInlineSize() + theme.InnerPadding()/2
			}
			if b.Visible() && b.Size().Width > 0 && ink > b.Size().Width+0.5 {
				t.Errorf("%v px: column title %q needs %.0f px, has %.0f", c.width, b.Text, ink, b.Size().Width)
			}
		}
		// the zone word under a limit's slider stays in the slider's cell
		row.limDn.show(1_000_000, api.TrafficInternet, true, false)
		if z := row.limDn.zone; z.MinSize().Width > row.limDn.slider.Size().Width {
			t.Errorf("%v px: zone word %q needs %.0f px under a slider of %.0f", c.width, z.Text, z.MinSize().Width, row.limDn.slider.Size().Width)
		}
	}
}

// TestLimitZoneShown: under each limit's slider a row says which zone
// the limit covers when it is not all traffic, per direction.
func TestLimitZoneShown(t *testing.T) {
	apps := testApps()
	apps[0].Limit = api.Limit{Down: 1_000_000, Traffic: api.TrafficInternet}
	apps[1].Limit = api.Limit{Up: 500_000, Traffic: api.TrafficLocal}
	apps[2].Limit = api.Limit{Down: 100_000, Traffic: api.TrafficAll}
	apps = append(apps, api.App{ID: "1000:/usr/bin/wget", Name: "wget", Exe: "/usr/bin/wget", UID: 1000, PIDs: []int32{41},
		Limit: api.Limit{Down: 1_000_000, Up: 200_000, DownTraffic: api.TrafficInternet, UpTraffic: api.TrafficAll}})
	fx := newFixture(t, apps)
	for name, want := range map[string][2]string{
		"Steam":   {"internet only", ""},
		"Firefox": {"", "local only"},
		"curl":    {"", ""},
		"wget":    {"internet only", ""},
	} {
		r := fx.row(name)
		if r == nil {
			t.Fatalf("no row %s", name)
		}
		if got := [2]string{r.limDn.zone.Text, r.limUp.zone.Text}; got != want {
			t.Errorf("%s zones under the sliders %q, want %q", name, got, want)
		}
		if !strings.Contains(r.subRaw, "limited") || strings.Contains(r.subRaw, "limited (") {
			t.Errorf("%s caption %q, want plain \"limited\"", name, r.subRaw)
		}
		if r.limDn.zone.Visible() && r.limDn.zone.Position().X+r.limDn.zone.MinSize().Width > r.limDn.slider.Size().Width+6 {
			t.Errorf("%s zone word overruns its slider cell", name)
		}
	}
}
