package gui

import "fyne.io/fyne/v2"

// columns lays objects out left to right with preferred widths; the one
// at index flex takes the remaining width. When the row is narrower than
// the preferred widths, columns with a smaller minimum (mins) shrink
// toward it in proportion, and when even that does not fit, the optional
// columns are hidden first. Rows and the header share one columns value
// so they line up.
type columns struct {
	widths   []float32
	flex     int
	gap      float32
	mins     []float32 // per column, ≤ widths; nil or missing: no shrinking
	optional []bool    // per column: hidden when the row is too narrow
}

func (c *columns) min(i int) float32 {
	if i < len(c.mins) {
		return c.mins[i]
	}
	if i < len(c.widths) {
		return c.widths[i]
	}
	return 0
}

func (c *columns) opt(i int) bool { return i < len(c.optional) && c.optional[i] }

// MinSize is the narrowest row: optional columns hidden, the others at
// their minimum.
func (c *columns) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var w, h float32
	n := 0
	for i, o := range objs {
		if !c.opt(i) {
			w += c.min(i)
			n++
		}
		if o.Visible() || c.opt(i) {
			h = max(h, o.MinSize().Height)
		}
	}
	return fyne.NewSize(w+c.gap*float32(max(n-1, 0)), h)
}

// plan returns each column's width for a row of width total (0 for a
// hidden optional column).
func (c *columns) plan(n int, total float32) []float32 {
	ws := make([]float32, n)
	fit := func(hide bool) bool {
		var pref, floor float32
		shown := 0
		for i := 0; i < n; i++ {
			if hide && c.opt(i) {
				continue
			}
			shown++
			if i < len(c.widths) {
				pref += c.widths[i]
			}
			floor += c.min(i)
		}
		avail := total - c.gap*float32(max(shown-1, 0))
		if avail < floor && !hide {
			return false
		}
		shrink := float32(0) // share of (pref-min) given up
		if avail < pref && pref > floor {
			shrink = min(1, (pref-avail)/(pref-floor))
		}
		for i := 0; i < n; i++ {
			switch {
			case hide && c.opt(i):
				ws[i] = 0
			case i < len(c.widths):
				ws[i] = c.widths[i] - shrink*(c.widths[i]-c.min(i))
			}
		}
		if avail > pref && c.flex >= 0 && c.flex < n {
			ws[c.flex] += avail - pref
		}
		return true
	}
	if !fit(false) {
		fit(true)
	}
	return ws
}

func (c *columns) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	ws := c.plan(len(objs), size.Width)
	x := float32(0)
	for i, o := range objs {
		if c.opt(i) {
			if ws[i] == 0 {
				setShown(o, false)
				continue
			}
			setShown(o, true)
		}
		h := o.MinSize().Height
		if h < 1 { // rectangles and spacers fill the height
			h = size.Height
		}
		place(o, fyne.NewPos(x, (size.Height-h)/2), fyne.NewSize(ws[i], h))
		x += ws[i] + c.gap
	}
}

// fixedWidth lays out one object at a fixed minimum width.
type fixedWidth struct{ w, h float32 }

func (f fixedWidth) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var h float32
	for _, o := range objs {
		h = max(h, o.MinSize().Height)
	}
	return fyne.NewSize(f.w, max(h, f.h))
}

func (f fixedWidth) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		place(o, fyne.NewPos(0, 0), size)
	}
}
