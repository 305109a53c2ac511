package gui

import (
	"image/color"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

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

// Graph draws download and upload over the last 60 s as two polylines
// made of canvas lines, scaled to the largest sample. Touch it only on the
// UI goroutine.
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
	for i := range r.grid {
		r.grid[i] = canvas.NewLine(color.Transparent)
		r.grid[i].StrokeWidth = 1
	}
	for i := 0; i < api.HistoryLen-1; i++ {
		d := canvas.NewLine(colorDown)
		d.StrokeWidth = 1.5
		u := canvas.NewLine(colorUp)
		u.StrokeWidth = 1.5
		r.down = append(r.down, d)
		r.up = append(r.up, u)
	}
	r.caption = canvas.NewText("", color.Black)
	r.caption.TextSize = theme.CaptionTextSize()
	r.objects = []fyne.CanvasObject{r.bg}
	for _, l := range r.grid {
		r.objects = append(r.objects, l)
	}
	for i := range r.down {
		r.objects = append(r.objects, r.down[i], r.up[i])
	}
	r.objects = append(r.objects, r.caption)
	r.applyTheme()
	return r
}

type graphRenderer struct {
	g        *Graph
	bg       *canvas.Rectangle
	grid     [3]*canvas.Line
	down, up []*canvas.Line
	caption  *canvas.Text
	objects  []fyne.CanvasObject
}

func (r *graphRenderer) applyTheme() {
	th := r.g.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	r.bg.FillColor = th.Color(theme.ColorNameInputBackground, v)
	r.bg.StrokeColor = th.Color(theme.ColorNameSeparator, v)
	for _, l := range r.grid {
		l.StrokeColor = th.Color(theme.ColorNameSeparator, v)
	}
	r.caption.Color = th.Color(theme.ColorNamePlaceHolder, v)
}

func (r *graphRenderer) Layout(size fyne.Size) {
	place(r.bg, fyne.NewPos(0, 0), size)
	const pad = 3
	w, h := size.Width-2*pad, size.Height-2*pad
	for i, l := range r.grid {
		y := pad + h*float32(i+1)/4
		l.Position1 = fyne.NewPos(pad, y)
		l.Position2 = fyne.NewPos(pad+w, y)
	}
	peak := r.g.Peak()
	scale := float32(0)
	if peak > 0 {
		scale = h / float32(peak) * 0.95
	}
	n := len(r.g.samples)
	// the newest sample sits at the right edge; 60 s span the width
	step := w / float32(api.HistoryLen-1)
	x := func(i int) float32 { return pad + w - float32(n-1-i)*step }
	y := func(v uint64) float32 { return pad + h - float32(v)*scale }
	for i := range r.down {
		if i+1 >= n {
			setShown(r.down[i], false)
			setShown(r.up[i], false)
			continue
		}
		a, b := r.g.samples[i], r.g.samples[i+1]
		r.down[i].Position1, r.down[i].Position2 = fyne.NewPos(x(i), y(a.RxRate)), fyne.NewPos(x(i+1), y(b.RxRate))
		r.up[i].Position1, r.up[i].Position2 = fyne.NewPos(x(i), y(a.TxRate)), fyne.NewPos(x(i+1), y(b.TxRate))
		setShown(r.down[i], true)
		setShown(r.up[i], true)
	}
	if r.g.caption && peak > 0 {
		r.caption.Text = "peak " + FormatRate(peak, r.g.unit) + " · 60 s"
		setShown(r.caption, true)
	} else {
		setShown(r.caption, false)
	}
	place(r.caption, fyne.NewPos(pad+2, pad), r.caption.MinSize())
}

func (r *graphRenderer) MinSize() fyne.Size { return r.g.min }

func (r *graphRenderer) Refresh() {
	r.applyTheme()
	r.Layout(r.g.Size())
	canvas.Refresh(r.g)
}

func (r *graphRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *graphRenderer) Destroy()                     {}
