package gui

import "fyne.io/fyne/v2"

// columns lays objects out left to right with fixed widths; the one at
// index flex takes the remaining width. Rows and the header share one
// columns value so they line up.
type columns struct {
	widths []float32
	flex   int
	gap    float32
}

func (c *columns) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var w, h float32
	for i, o := range objs {
		if i < len(c.widths) {
			w += c.widths[i]
		}
		if o.Visible() {
			h = max(h, o.MinSize().Height)
		}
	}
	return fyne.NewSize(w+c.gap*float32(len(objs)-1), h)
}

func (c *columns) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	min := c.MinSize(objs)
	extra := max(0, size.Width-min.Width)
	x := float32(0)
	for i, o := range objs {
		w := float32(0)
		if i < len(c.widths) {
			w = c.widths[i]
		}
		if i == c.flex {
			w += extra
		}
		h := o.MinSize().Height
		if h < 1 { // rectangles and spacers fill the height
			h = size.Height
		}
		o.Resize(fyne.NewSize(w, h))
		o.Move(fyne.NewPos(x, (size.Height-h)/2))
		x += w + c.gap
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
		o.Resize(size)
		o.Move(fyne.NewPos(0, 0))
	}
}
