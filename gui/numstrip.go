package gui

import (
	"image"
	"image/color"
	"math"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
)

// numStrip draws the numbers of several glyphTexts side by side in one
// row (an app row's two rates and two totals) as one raster: one draw
// call instead of one per number (issue #17: with software GL every draw
// call costs tens of kilobytes of the frame's memory; docs/architecture.md,
// "What the window costs to draw"). Each glyphText keeps its size, its
// layout and its lead and fallback texts; only its raster is left hidden
// and the strip draws what it would have drawn, where it would have been.
// Touch it only on the UI goroutine.
type numStrip struct {
	raster *canvas.Raster
	fields []stripField
	drawn  []fieldShot // what the raster shows (see changed)
}

// stripField is one glyphText and the object that holds it among the
// row's columns (whose position is in the strip's coordinates' parent).
type stripField struct {
	g   *glyphText
	box fyne.CanvasObject
}

// fieldShot is a field as drawn: its text, colour and place.
type fieldShot struct {
	text  string
	color color.Color
	pos   fyne.Position
	size  fyne.Size
}

func newNumStrip() *numStrip {
	s := &numStrip{}
	s.raster = canvas.NewRaster(s.draw)
	s.raster.Hide()
	return s
}

// add makes the strip draw g's number; box holds g and is a direct child
// of the container the strip's raster is drawn over, at the same origin.
func (s *numStrip) add(g *glyphText, box fyne.CanvasObject) {
	s.fields = append(s.fields, stripField{g: g, box: box})
	g.strip = s
	g.num.Hide()
}

// stripLayout is a container's layout that lets a strip follow its
// fields when they move (a column can move without changing its size,
// and then its glyphText is not laid out again).
type stripLayout struct {
	inner fyne.Layout
	strip *numStrip
}

func (l stripLayout) MinSize(objs []fyne.CanvasObject) fyne.Size { return l.inner.MinSize(objs) }

func (l stripLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	l.inner.Layout(objs, size)
	l.strip.changed()
}

// shot returns where and what field f shows now; ok is false when the
// strip does not draw it (column hidden, nothing to draw, or a character
// the theme's font lacks: then the glyphText draws it itself).
func (f stripField) shot() (sh fieldShot, ok bool) {
	g := f.g
	if !f.box.Visible() || g.rest == "" || g.plain.Visible() {
		return sh, false
	}
	pos := f.box.Position().Add(g.Position()).Add(g.num.Position())
	return fieldShot{text: g.rest, color: g.color, pos: pos, size: g.num.Size()}, true
}

// changed places the raster over the fields and redraws it when one of
// them shows something else or moved. Cheap when nothing changed: the
// glyphTexts call it at every Set and layout.
func (s *numStrip) changed() {
	shots := make([]fieldShot, 0, len(s.fields))
	var lo, hi fyne.Position
	for _, f := range s.fields {
		sh, ok := f.shot()
		if !ok {
			continue
		}
		// across the fields' boxes (which move only with the columns), so
		// a value of another width does not move the raster
		bl, br := f.box.Position().X, f.box.Position().X+f.box.Size().Width
		if len(shots) == 0 {
			lo, hi = fyne.NewPos(bl, sh.pos.Y), fyne.NewPos(br, sh.pos.Y+sh.size.Height)
		}
		lo = fyne.NewPos(min(lo.X, bl, sh.pos.X), min(lo.Y, sh.pos.Y))
		hi = fyne.NewPos(max(hi.X, br, sh.pos.X+sh.size.Width), max(hi.Y, sh.pos.Y+sh.size.Height))
		shots = append(shots, sh)
	}
	setShown(s.raster, len(shots) > 0)
	if len(shots) == 0 {
		s.drawn = nil
		return
	}
	// whole logical pixels (draw puts each field on its own pixel from
	// the raster's absolute position)
	lo = fyne.NewPos(float32(math.Floor(float64(lo.X))), float32(math.Floor(float64(lo.Y))))
	hi = fyne.NewPos(float32(math.Ceil(float64(hi.X))), float32(math.Ceil(float64(hi.Y))))
	moved := s.raster.Position() != lo || s.raster.Size() != fyne.NewSize(hi.X-lo.X, hi.Y-lo.Y)
	place(s.raster, lo, fyne.NewSize(hi.X-lo.X, hi.Y-lo.Y))
	if !moved && slices.Equal(shots, s.drawn) {
		return
	}
	s.drawn = shots
	s.raster.Refresh()
}

// draw is the raster's generator: each field's number at its place, w×h
// pixels for the raster's size.
func (s *numStrip) draw(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	origin, size := s.raster.Position(), s.raster.Size()
	if size.Width <= 0 {
		return img
	}
	scale := canvasScale(s.raster, size.Width, w)
	// Fyne's painter puts each object on the pixel its position in the
	// window rounds to; a field lands where its own raster would have
	abs := fyne.CurrentApp().Driver().AbsolutePositionForObject(s.raster)
	px := func(v float32) int { return int(math.Round(float64(v * scale))) }
	for _, f := range s.fields {
		sh, ok := f.shot()
		if !ok {
			continue
		}
		x := px(abs.X+sh.pos.X-origin.X) - px(abs.X)
		y := px(abs.Y+sh.pos.Y-origin.Y) - px(abs.Y)
		fw := int(math.Ceil(float64(sh.size.Width * scale)))
		fh := int(math.Ceil(float64(sh.size.Height * scale)))
		r := image.Rect(x, y, x+fw, y+fh).Intersect(img.Bounds())
		if r.Empty() {
			continue
		}
		faceFor(f.g.style).draw(img.SubImage(r).(*image.RGBA), sh.text, f.g.size, scale, sh.color)
	}
	return img
}

// canvasScale is the scale o is drawn at: its canvas's, or else what its
// width in pixels (px, rounded by Fyne) says.
func canvasScale(o fyne.CanvasObject, width float32, px int) float32 {
	scale := float32(px) / width
	if c := fyne.CurrentApp().Driver().CanvasForObject(o); c != nil && math.Abs(float64(c.Scale()*width)-float64(px)) <= 1 {
		scale = c.Scale()
	}
	return scale
}
