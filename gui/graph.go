package gui

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"golang.org/x/image/vector"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Series colours, legible on dark and light themes.
var (
	colorDown = color.NRGBA{R: 0x2f, G: 0x8c, B: 0xf0, A: 0xff}
	colorUp   = color.NRGBA{R: 0xf0, G: 0x8c, B: 0x1f, A: 0xff}
	colorMark = color.NRGBA{R: 0xff, G: 0x8c, B: 0x00, A: 0xff}
)

// history is a ring of the last api.HistoryLen samples.
type history struct {
	s []api.Sample
}

func (h *history) add(s api.Sample) {
	if len(h.s) >= api.HistoryLen {
		copy(h.s, h.s[1:])
		h.s = h.s[:api.HistoryLen-1]
	}
	h.s = append(h.s, s)
}

func (h *history) set(s []api.Sample) {
	if len(s) > api.HistoryLen {
		s = s[len(s)-api.HistoryLen:]
	}
	h.s = append(h.s[:0], s...)
}

// Graph draws download and upload over the last 60 s as two polylines,
// scaled to the largest sample. The plot is one raster the widget draws
// itself (plot): as ~120 canvas lines per graph, Mesa's software renderer
// held ~12 MB more with the details pane's graph shown (TestBenchGUI,
// issue #17). Touch it only on the UI goroutine.
type Graph struct {
	widget.BaseWidget
	samples []api.Sample
	unit    Unit
	min     fyne.Size
	caption bool // draw the scale caption
}

// NewGraph returns an empty graph with the given minimum size.
func NewGraph(min fyne.Size, caption bool) *Graph {
	g := &Graph{min: min, caption: caption}
	g.ExtendBaseWidget(g)
	return g
}

// SetSamples replaces the data (oldest first) and redraws.
// Nothing is redrawn when the data and unit are the same (an idle
// computer's graph: all zero).
func (g *Graph) SetSamples(s []api.Sample, u Unit) {
	if u == g.unit && slices.Equal(s, g.samples) && g.samples != nil {
		return
	}
	g.samples = append(g.samples[:0], s...)
	g.unit = u
	g.Refresh()
}

// Peak returns the largest sample value (for tests and captions).
func (g *Graph) Peak() uint64 {
	var m uint64
	for _, s := range g.samples {
		m = max(m, s.RxRate, s.TxRate)
	}
	return m
}

// CreateRenderer implements fyne.Widget.
func (g *Graph) CreateRenderer() fyne.WidgetRenderer {
	r := &graphRenderer{g: g, bg: canvas.NewRectangle(color.Transparent)}
	r.bg.CornerRadius = 4
	r.bg.StrokeWidth = 1
	r.plot = canvas.NewRaster(r.draw)
	r.caption = canvas.NewText("", color.Black)
	r.caption.TextSize = theme.CaptionTextSize()
	r.objects = []fyne.CanvasObject{r.bg, r.plot, r.caption}
	r.applyTheme()
	return r
}

type graphRenderer struct {
	g       *Graph
	bg      *canvas.Rectangle
	plot    *canvas.Raster
	caption *canvas.Text
	objects []fyne.CanvasObject
	grid    color.Color

	img  *image.RGBA // reused between draws of one size
	rast *vector.Rasterizer
}

func (r *graphRenderer) applyTheme() {
	th := r.g.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	r.bg.FillColor = th.Color(theme.ColorNameInputBackground, v)
	r.bg.StrokeColor = th.Color(theme.ColorNameSeparator, v)
	r.grid = th.Color(theme.ColorNameSeparator, v)
	r.caption.Color = th.Color(theme.ColorNamePlaceHolder, v)
}

// graphPad is the plot's inset from the widget's edge, and graphStroke
// the polylines' width, in Fyne units.
const (
	graphPad    = 3
	graphStroke = 1.5
)

// draw renders the plot at w × h pixels: three grid lines and the two
// series, the newest sample at the right edge, 60 s across the width.
func (r *graphRenderer) draw(w, h int) image.Image {
	if r.img == nil || r.img.Rect.Dx() != w || r.img.Rect.Dy() != h {
		r.img = image.NewRGBA(image.Rect(0, 0, w, h))
		r.rast = vector.NewRasterizer(w, h)
	} else {
		clear(r.img.Pix)
	}
	size := r.g.Size()
	if w <= 0 || h <= 0 || size.Width <= 0 {
		return r.img
	}
	px := float32(w) / size.Width // pixels per unit
	pad := graphPad * px
	pw, ph := float32(w)-2*pad, float32(h)-2*pad
	grid := image.NewUniform(r.grid)
	for i := 1; i <= 3; i++ {
		y := int(pad + ph*float32(i)/4)
		draw.Draw(r.img, image.Rect(int(pad), y, int(pad+pw), y+max(1, int(px))), grid, image.Point{}, draw.Over)
	}
	peak := r.g.Peak()
	n := len(r.g.samples)
	if peak == 0 || n < 2 {
		return r.img
	}
	scale := ph / float32(peak) * 0.95
	step := pw / float32(api.HistoryLen-1)
	x := func(i int) float32 { return pad + pw - float32(n-1-i)*step }
	y := func(v uint64) float32 { return pad + ph - float32(v)*scale }
	for _, series := range []struct {
		c   color.Color
		val func(api.Sample) uint64
	}{{colorUp, func(s api.Sample) uint64 { return s.TxRate }}, {colorDown, func(s api.Sample) uint64 { return s.RxRate }}} {
		r.rast.Reset(w, h)
		for i := 0; i+1 < n; i++ {
			strokeSegment(r.rast, x(i), y(series.val(r.g.samples[i])), x(i+1), y(series.val(r.g.samples[i+1])), graphStroke*px/2)
		}
		r.rast.Draw(r.img, r.img.Bounds(), image.NewUniform(series.c), image.Point{})
	}
	return r.img
}

// strokeSegment adds the segment from (x0, y0) to (x1, y1), half as wide
// as hw on each side, to z as a quad. Every quad winds the same way, so
// where consecutive ones overlap the coverage adds up and is clamped.
func strokeSegment(z *vector.Rasterizer, x0, y0, x1, y1, hw float32) {
	dx, dy := x1-x0, y1-y0
	l := float32(math.Hypot(float64(dx), float64(dy)))
	if l == 0 {
		return
	}
	nx, ny := -dy/l*hw, dx/l*hw
	z.MoveTo(x0+nx, y0+ny)
	z.LineTo(x1+nx, y1+ny)
	z.LineTo(x1-nx, y1-ny)
	z.LineTo(x0-nx, y0-ny)
	z.ClosePath()
}

func (r *graphRenderer) Layout(size fyne.Size) {
	place(r.bg, fyne.NewPos(0, 0), size)
	place(r.plot, fyne.NewPos(0, 0), size)
	peak := r.g.Peak()
	if r.g.caption && peak > 0 {
		r.caption.Text = "peak " + FormatRate(peak, r.g.unit) + " · 60 s"
		setShown(r.caption, true)
	} else {
		setShown(r.caption, false)
	}
	place(r.caption, fyne.NewPos(graphPad+2, graphPad), r.caption.MinSize())
}

func (r *graphRenderer) MinSize() fyne.Size { return r.g.min }

func (r *graphRenderer) Refresh() {
	r.applyTheme()
	r.Layout(r.g.Size())
	r.plot.Refresh()
	canvas.Refresh(r.g)
}

func (r *graphRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *graphRenderer) Destroy()                     {}
