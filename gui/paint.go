package gui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Repaint economy. Fyne's GL driver paints the whole window whenever any
// object was refreshed since the last frame, and before painting it lays
// out again every container whose child changed its minimum size. A
// layout that resizes or shows an object there refreshes it, and that
// marks the window for a second full paint of the same picture in the
// next frame (with software GL that doubles the cost of every poll). The
// layouts here keep sizes stable and show only what is hidden, so one
// poll is one frame.

// place moves and sizes o, each only when it changes: a container's Move
// marks the window for painting even when the position is the same.
func place(o fyne.CanvasObject, pos fyne.Position, size fyne.Size) {
	if o.Size() != size {
		o.Resize(size)
	}
	if o.Position() != pos {
		o.Move(pos)
	}
}

// setShown shows or hides o only when that changes (Show refreshes).
func setShown(o fyne.CanvasObject, v bool) {
	switch {
	case v && !o.Visible():
		o.Show()
	case !v && o.Visible():
		o.Hide()
	}
}

// stickyRow lays its objects out left to right like an HBox, but each
// keeps the widest size it has had: the header's totals change text every
// second and would otherwise resize (and move the one after) every time.
type stickyRow struct {
	widths []float32
}

func (r *stickyRow) sizes(objs []fyne.CanvasObject) ([]float32, float32) {
	if len(r.widths) != len(objs) {
		r.widths = make([]float32, len(objs))
	}
	h := float32(0)
	for i, o := range objs {
		m := o.MinSize()
		r.widths[i] = max(r.widths[i], m.Width)
		h = max(h, m.Height)
	}
	return r.widths, h
}

// MinSize implements fyne.Layout.
func (r *stickyRow) MinSize(objs []fyne.CanvasObject) fyne.Size {
	ws, h := r.sizes(objs)
	w := float32(0)
	for i, x := range ws {
		if i > 0 {
			w += theme.Padding()
		}
		w += x
	}
	return fyne.NewSize(w, h)
}

// Layout implements fyne.Layout.
func (r *stickyRow) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	ws, _ := r.sizes(objs)
	x := float32(0)
	for i, o := range objs {
		place(o, fyne.NewPos(x, 0), fyne.NewSize(ws[i], size.Height))
		x += ws[i] + theme.Padding()
	}
}

// bind records that list row b shows index id now (updateRow).
func (l *listPart) bind(id widget.ListItemID, b *rowBox) {
	if l.bound == nil {
		l.bound = map[widget.ListItemID]*rowBox{}
	}
	if l.bound[b.index] == b && b.index != id {
		delete(l.bound, b.index)
	}
	l.bound[id] = b
	b.index = id
}

// refreshRows shows a poll's data in the rows on screen. list.Refresh
// would too, but it builds a whole new row every time (to measure it) and
// refreshes every row, separator and the scroller, so that the window is
// painted even when no value changed; here only what changed is
// refreshed. A different number of rows needs list.Refresh (the scroller's
// length).
func (u *UI) refreshRows() {
	if len(u.view.rows) != u.apps.listed {
		u.refreshList()
		return
	}
	for i, b := range u.apps.bound {
		u.updateRow(i, b) // rows kept for reuse off screen cost a little, draw nothing
	}
	u.showCount()
}

// tableKey is what a details table of rows shows: every cell's text.
func tableKey[T any](rows []T, cols []detailCol[T], unit Unit) string {
	var b strings.Builder
	for i := range rows {
		for _, c := range cols {
			b.WriteString(c.show(&rows[i], unit))
			b.WriteByte(0)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// refreshTable refreshes t when what it shows (key) changed since *last:
// a table's Refresh paints the window even when every cell stays the same.
func refreshTable(t *widget.Table, last *string, key string) {
	if key != *last {
		*last = key
		t.Refresh()
	}
}
