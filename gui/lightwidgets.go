package gui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/widget"
)

// Every object Fyne draws is a draw call, and with software GL each draw
// call costs memory and CPU (docs/architecture.md, "What the window costs
// to draw"). A row of the app list has two sliders and two entries, so
// what they draw for nothing is paid ~20 times per paint. These two look
// and behave exactly like Fyne's, minus that:
//   - lightSlider does not draw its hover/focus ring while the ring is
//     transparent (Fyne's GL painter draws a transparent circle like any
//     other), nor its track while the active part covers it whole;
//   - lightEntry draws its background and its border as one rounded
//     rectangle (fill and stroke in one draw) instead of two.

// lightSlider is a widget.Slider without the transparent ring and the
// hidden track.
type lightSlider struct{ widget.Slider }

func newLightSlider(min, max float64) *lightSlider {
	s := &lightSlider{}
	s.Min, s.Max, s.Step, s.Orientation = min, max, 1, widget.Horizontal
	s.ExtendBaseWidget(s)
	return s
}

// CreateRenderer implements fyne.Widget.
func (s *lightSlider) CreateRenderer() fyne.WidgetRenderer {
	return &trimRenderer{WidgetRenderer: s.Slider.CreateRenderer(), trim: trimSlider}
}

// trimSlider hides the circles that would draw nothing and a track that
// the active part covers whole (a slider at its maximum: every unlimited
// row).
func trimSlider(objs []fyne.CanvasObject) {
	for i, o := range objs {
		switch o := o.(type) {
		case *canvas.Circle:
			setShown(o, !transparent(o.FillColor) || (o.StrokeWidth > 0 && !transparent(o.StrokeColor)))
		case *canvas.Rectangle:
			setShown(o, !coveredLater(o, objs[i+1:]))
		}
	}
}

// coveredLater reports whether one of the objects drawn after r is an
// opaque rectangle in exactly r's place and shape.
func coveredLater(r *canvas.Rectangle, later []fyne.CanvasObject) bool {
	for _, o := range later {
		c, ok := o.(*canvas.Rectangle)
		if ok && c.Visible() && c.Position() == r.Position() && c.Size() == r.Size() &&
			c.CornerRadius == r.CornerRadius && opaque(c.FillColor) {
			return true
		}
	}
	return false
}

// lightEntry is a widget.Entry whose box and border are one rectangle.
type lightEntry struct{ widget.Entry }

func newLightEntry() *lightEntry {
	e := &lightEntry{}
	e.ExtendBaseWidget(e)
	return e
}

// CreateRenderer implements fyne.Widget.
func (e *lightEntry) CreateRenderer() fyne.WidgetRenderer {
	return &trimRenderer{WidgetRenderer: e.Entry.CreateRenderer(), trim: mergeBoxBorder}
}

// mergeBoxBorder gives the entry's box fill to its border and hides the
// box: one rounded rectangle with fill and stroke, in the border's place.
// The box is the first rectangle without a stroke, the border the first
// with one (Fyne 2.7: objects 0 and 1); anything else is left as it is.
// Each keeps the place Fyne's layout gives it, so a layout changes
// nothing (a size changed back and forth would paint the window twice).
func mergeBoxBorder(objs []fyne.CanvasObject) {
	var box, border *canvas.Rectangle
	for _, o := range objs {
		r, ok := o.(*canvas.Rectangle)
		if !ok {
			continue
		}
		switch {
		case box == nil && r.StrokeWidth == 0:
			box = r
		case border == nil && r.StrokeWidth > 0:
			border = r
		}
		if box != nil && border != nil {
			break
		}
	}
	if box == nil || border == nil || box.CornerRadius != border.CornerRadius {
		return
	}
	if border.FillColor != box.FillColor {
		border.FillColor = box.FillColor
		border.Refresh()
	}
	setShown(box, false)
}

// trimRenderer is a widget's own renderer with trim applied to its
// objects after every layout and refresh (which is when the widget sets
// their colours and places).
type trimRenderer struct {
	fyne.WidgetRenderer
	trim func([]fyne.CanvasObject)
}

// Layout implements fyne.WidgetRenderer.
func (r *trimRenderer) Layout(size fyne.Size) {
	r.WidgetRenderer.Layout(size)
	r.trim(r.Objects())
}

// Refresh implements fyne.WidgetRenderer.
func (r *trimRenderer) Refresh() {
	r.WidgetRenderer.Refresh()
	r.trim(r.Objects())
}

// opaque reports whether c hides what is under it.
func opaque(c color.Color) bool {
	if c == nil {
		return false
	}
	_, _, _, a := c.RGBA()
	return a == 0xffff
}

// transparent reports whether c draws nothing.
func transparent(c color.Color) bool {
	if c == nil {
		return true
	}
	_, _, _, a := c.RGBA()
	return a == 0
}
