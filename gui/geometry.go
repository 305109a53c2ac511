package gui

import (
	"fyne.io/fyne/v2"
)

// What the window remembers between runs: its size, the list's sort
// column and order, and where the list/details split sits.
const (
	prefWidth   = "window-width"
	prefHeight  = "window-height"
	prefSortBy  = "sort-column"
	prefSortAsc = "sort-ascending"
	prefSplit   = "split-offset"
)

// defaultSize is the first window's size.
var defaultSize = fyne.NewSize(1240, 780)

// restoreLayout applies what saveLayout kept, within sane bounds.
func (u *UI) restoreLayout() {
	p := u.app.Preferences()
	w := float32(p.FloatWithFallback(prefWidth, float64(defaultSize.Width)))
	h := float32(p.FloatWithFallback(prefHeight, float64(defaultSize.Height)))
	if w < 480 || w > 8000 || h < 320 || h > 8000 {
		w, h = defaultSize.Width, defaultSize.Height
	}
	u.win.Resize(fyne.NewSize(w, h))
	if c := Column(p.IntWithFallback(prefSortBy, int(ColDown))); c >= 0 && c < numColumns {
		u.view.sortBy, u.view.asc = c, p.Bool(prefSortAsc)
		u.updateSortButtons()
	}
	if o := p.FloatWithFallback(prefSplit, 0.62); o >= 0.15 && o <= 0.9 {
		u.split.Offset = o
	}
}

// saveLayout keeps the window's size, sort and split for the next run.
func (u *UI) saveLayout() {
	p := u.app.Preferences()
	if s := u.win.Canvas().Size(); s.Width > 0 && s.Height > 0 {
		p.SetFloat(prefWidth, float64(s.Width))
		p.SetFloat(prefHeight, float64(s.Height))
	}
	p.SetInt(prefSortBy, int(u.view.sortBy))
	p.SetBool(prefSortAsc, u.view.asc)
	p.SetFloat(prefSplit, u.split.Offset)
}

// quit keeps the layout and ends the app.
func (u *UI) quit() {
	u.saveLayout()
	u.app.Quit()
}
