package gui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// TestRowNameFits: a name longer than its column is shortened with an
// ellipsis to the column (the Label itself no longer truncates), and fitted
// again when the column widens or narrows.
func TestRowNameFits(t *testing.T) {
	apps := testApps()
	long := "A very long application name that no name column holds " + strings.Repeat("x", 40)
	apps[1].Name = long
	fx := newFixture(t, apps)
	fx.ui.win.Resize(fyne.NewSize(1240, 700))
	fx.drain()
	o := fx.ui.newRow()
	fx.ui.updateRow(fx.ui.view.index(apps[1].ID), o)
	row := o.(*rowBox).row
	bold := fyne.TextStyle{Bold: true}
	check := func(rowW float32) {
		t.Helper()
		o.Resize(fyne.NewSize(rowW, o.MinSize().Height))
		text, room := row.name.Text, row.name.Size().Width-2*theme.InnerPadding()
		t.Logf("row %.0f px: %q in %.0f px", rowW, text, room)
		if w := fyne.MeasureText(text, theme.TextSize(), bold).Width; w > room {
			t.Errorf("row %.0f px: name %q is %.0f px wide in %.0f", rowW, text, w, room)
		}
		if fits := fyne.MeasureText(long, theme.TextSize(), bold).Width <= room; fits != (text == long) || !fits && !strings.HasSuffix(text, "…") {
			t.Errorf("row %.0f px (%.0f for the name): shows %q", rowW, room, text)
		}
	}
	check(fx.ui.apps.list.Size().Width)
	check(6000) // wide enough for the whole name
	check(900)
	fx.ui.updateRow(fx.ui.view.index(apps[0].ID), o) // another app in the same row
	if row.name.Text != apps[0].Name {
		t.Errorf("the row shows %q, want %q", row.name.Text, apps[0].Name)
	}
}
