package gui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// A row's app name is a bold Label that this file shortens, not the
// Label's own truncation: the list is sorted by rate, so with many apps
// every row on screen shows another app's name after each poll, and the
// Label's truncation shapes the whole text on every change (~0.3 % of a
// core with 200 apps, issue #17). The fitted names are kept per column
// width, and fyne.MeasureText caches what it measured.

type nameFitKey struct {
	name  string
	width float32
}

// nameFitMax bounds the fitted names kept (cleared when full).
const nameFitMax = 4096

// fitName returns name shortened with an ellipsis to width, bold.
func (u *UI) fitName(name string, width float32) string {
	k := nameFitKey{name, width}
	if s, ok := u.nameFit[k]; ok {
		return s
	}
	s := fitText(name, theme.TextSize(), fyne.TextStyle{Bold: true}, width)
	if u.nameFit == nil || len(u.nameFit) >= nameFitMax {
		u.nameFit = map[nameFitKey]string{}
	}
	u.nameFit[k] = s
	return s
}

// setName shows the app's name in the row.
func (r *appRow) setName(name string) {
	r.nameRaw = name
	r.fitName()
}

// fitName fits the row's name to its column (nameLayout calls it again
// when the column's width changes).
func (r *appRow) fitName() {
	r.nameW = r.name.Size().Width
	w := r.nameW - 2*theme.InnerPadding() // the Label's text area
	if w < 50 {
		w = 190 // not laid out yet
	}
	setText(r.name, r.u.fitName(r.nameRaw, w))
}

// fitText shortens s with an ellipsis so it fits width at text size.
func fitText(s string, size float32, style fyne.TextStyle, width float32) string {
	if fyne.MeasureText(s, size, style).Width <= width {
		return s
	}
	r := []rune(s)
	lo, hi := 0, len(r) // longest prefix that fits with "…"
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fyne.MeasureText(string(r[:mid])+"…", size, style).Width <= width {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return string(r[:lo]) + "…"
}
