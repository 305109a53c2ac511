package gui

import (
	"image/color"
	"math"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/widget"
)

// glyphText shows a short text that changes every second (a rate, a
// total) as pieces: each digit alone and each run of other characters
// ("." or " MB/s"), every piece a canvas.Text. Fyne keeps a text's
// texture by its string, size, style and colour, so the few distinct
// pieces are shaped, rasterized and uploaded once and then reused, where
// a whole new string such as "1.23 MB/s" costs all of that (and a texture
// kept for a minute) every time it changes: with software GL, most of the
// window's CPU and a good part of its memory. Digits have the same advance
// in the theme's font, so only kerning between a digit and a neighbour is
// lost. Touch it only on the UI goroutine.
type glyphText struct {
	widget.BaseWidget
	Text   string // what it shows (read it; Set changes it)
	color  color.Color
	size   float32
	style  fyne.TextStyle
	align  fyne.TextAlign
	pieces []*canvas.Text // the first n are shown
	objs   []fyne.CanvasObject
	n      int
	minW   float32 // the widest it has been (see MinSize)
}

// newGlyphText returns an empty text of size and style, aligned by align
// (leading or trailing) in the space it is given.
func newGlyphText(size float32, style fyne.TextStyle, align fyne.TextAlign, c color.Color) *glyphText {
	g := &glyphText{color: c, size: size, style: style, align: align}
	g.ExtendBaseWidget(g)
	return g
}

// Set shows s in colour c; pieces that stay the same are not touched.
func (g *glyphText) Set(s string, c color.Color) {
	if s == g.Text && c == g.color {
		return
	}
	g.Text, g.color = s, c
	parts := splitGlyphs(s)
	for len(g.pieces) < len(parts) {
		t := canvas.NewText("", c)
		t.TextSize, t.TextStyle = g.size, g.style
		t.Hide()
		g.pieces = append(g.pieces, t)
		g.objs = append(g.objs, t)
	}
	g.n = len(parts)
	for i, t := range g.pieces {
		if i >= len(parts) {
			setShown(t, false)
			continue
		}
		if t.Text != parts[i] || t.Color != c {
			t.Text, t.Color = parts[i], c
			t.Refresh()
		}
		setShown(t, true)
	}
	g.layout(g.Size())
}

// splitGlyphs cuts s into single digits and the runs between them.
func splitGlyphs(s string) []string {
	var parts []string
	start := -1
	for i, r := range s {
		if unicode.IsDigit(r) {
			if start >= 0 {
				parts = append(parts, s[start:i])
				start = -1
			}
			parts = append(parts, string(r))
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		parts = append(parts, s[start:])
	}
	return parts
}

// CreateRenderer implements fyne.Widget.
func (g *glyphText) CreateRenderer() fyne.WidgetRenderer { return glyphRenderer{g} }

// glyphRenderer places a glyphText's pieces side by side on whole pixels.
// A widget, not a container: a container's Move paints the window again
// even when the position stays the same.
type glyphRenderer struct{ g *glyphText }

func (r glyphRenderer) Destroy()                     {}
func (r glyphRenderer) Objects() []fyne.CanvasObject { return r.g.objs }
func (r glyphRenderer) Refresh()                     { r.g.layout(r.g.Size()) }
func (r glyphRenderer) Layout(size fyne.Size)        { r.g.layout(size) }

func (g *glyphText) widths() ([]float32, float32, float32) {
	ws := make([]float32, g.n)
	total, h := float32(0), float32(0)
	for i, t := range g.pieces[:g.n] {
		m := t.MinSize()
		ws[i] = m.Width
		total += m.Width
		h = max(h, m.Height)
	}
	if h == 0 {
		h = fyne.MeasureText("0", g.size, g.style).Height
	}
	return ws, total, h
}

// MinSize implements fyne.WidgetRenderer. It keeps the widest width the
// text has had: a minimum size that changes makes Fyne lay the parent out
// again.
func (r glyphRenderer) MinSize() fyne.Size {
	_, w, h := r.g.widths()
	r.g.minW = max(r.g.minW, w)
	return fyne.NewSize(r.g.minW, h)
}

func (g *glyphText) layout(size fyne.Size) {
	ws, total, h := g.widths()
	g.minW = max(g.minW, total)
	x := float32(0)
	switch g.align {
	case fyne.TextAlignTrailing:
		x = size.Width - total
	case fyne.TextAlignCenter:
		x = (size.Width - total) / 2
	}
	y := (size.Height - h) / 2
	for i, t := range g.pieces[:g.n] {
		place(t, fyne.NewPos(float32(math.Round(float64(x))), float32(math.Round(float64(y)))), fyne.NewSize(ws[i], h))
		x += ws[i]
	}
}
