package gui

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"sync"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	xfont "golang.org/x/image/font"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// glyphText shows a short text that changes every second (a rate, a
// total) as one raster it draws itself, with the theme's font, from its
// first digit on; what comes before the first digit ("↓ ") is a plain
// canvas.Text, since it rarely changes.
//
// Why not a canvas.Text: Fyne keeps a text's texture by its string for a
// minute, so a value that changes every second leaves a trail of
// textures. Why not one canvas.Text per digit (this type's first design,
// which let Fyne reuse ten digit textures): every object is a draw call,
// and Mesa's software renderer (llvmpipe, what a machine without a GPU
// driver draws with) copies its whole fragment state, tens of kilobytes,
// into the frame for every draw call that binds another texture. With a
// dozen pieces per row that was a third of the window's draw calls and
// about 10 MB of the window's memory (issue #17: 388 → 259 draw calls per
// paint and RSS 160.8 → 149.5 MB with the row numbers left out). Here a
// value is one draw call and one small texture, replaced when it changes.
// Touch it only on the UI goroutine.
type glyphText struct {
	widget.BaseWidget
	Text  string // what it shows (read it; Set changes it)
	color color.Color
	size  float32
	style fyne.TextStyle
	align fyne.TextAlign
	lead  *canvas.Text   // the part before the first digit
	num   *canvas.Raster // the rest, drawn by draw
	plain *canvas.Text   // the rest, when the font lacks one of its characters
	strip *numStrip      // draws num instead of it, when set (numstrip.go)
	rest  string
	restW float32 // the rest's width
	minW  float32 // the widest it has been (see MinSize)
	objs  []fyne.CanvasObject
}

// newGlyphText returns an empty text of size and style, aligned by align
// (leading or trailing) in the space it is given.
func newGlyphText(size float32, style fyne.TextStyle, align fyne.TextAlign, c color.Color) *glyphText {
	g := &glyphText{color: c, size: size, style: style, align: align}
	text := func() *canvas.Text {
		t := canvas.NewText("", c)
		t.TextSize, t.TextStyle = size, style
		t.Hide()
		return t
	}
	g.lead, g.plain = text(), text()
	g.num = canvas.NewRaster(g.draw)
	g.num.Hide()
	g.objs = []fyne.CanvasObject{g.lead, g.num, g.plain}
	g.ExtendBaseWidget(g)
	return g
}

// Set shows s in colour c.
func (g *glyphText) Set(s string, c color.Color) {
	if s == g.Text && c == g.color {
		return
	}
	g.Text, g.color = s, c
	lead, rest := splitLead(s)
	setCanvasText(g.lead, lead, c)
	setShown(g.lead, lead != "")
	g.rest = rest
	f := faceFor(g.style)
	w, ok := f.width(rest, g.size)
	if ok {
		g.restW = w
		setShown(g.plain, false)
		if g.strip == nil {
			setShown(g.num, rest != "")
			g.num.Refresh()
		}
	} else { // not in the theme's font: Fyne finds a font that has it
		g.restW = fyne.MeasureText(rest, g.size, g.style).Width
		setShown(g.num, false)
		setCanvasText(g.plain, rest, c)
		setShown(g.plain, true)
	}
	g.layout(g.Size())
}

// splitLead cuts s before its first digit.
func splitLead(s string) (lead, rest string) {
	for i, r := range s {
		if unicode.IsDigit(r) {
			return s[:i], s[i:]
		}
	}
	return s, ""
}

// CreateRenderer implements fyne.Widget.
func (g *glyphText) CreateRenderer() fyne.WidgetRenderer { return glyphRenderer{g} }

// glyphRenderer lays a glyphText out. A widget, not a container: a
// container's Move paints the window again even when the position stays
// the same.
type glyphRenderer struct{ g *glyphText }

func (r glyphRenderer) Destroy()                     {}
func (r glyphRenderer) Objects() []fyne.CanvasObject { return r.g.objs }
func (r glyphRenderer) Refresh()                     { r.g.layout(r.g.Size()) }
func (r glyphRenderer) Layout(size fyne.Size)        { r.g.layout(size) }

// widths returns the lead's width, the whole text's and its height.
func (g *glyphText) widths() (lead, total, h float32) {
	h = fyne.MeasureText("0", g.size, g.style).Height
	if g.lead.Text != "" {
		lead = g.lead.MinSize().Width
	}
	return lead, lead + g.restW, h
}

// MinSize implements fyne.WidgetRenderer. It keeps the widest width the
// text has had: a minimum size that changes makes Fyne lay the parent out
// again.
func (r glyphRenderer) MinSize() fyne.Size {
	_, w, h := r.g.widths()
	r.g.minW = max(r.g.minW, float32(math.Ceil(float64(w))))
	return fyne.NewSize(r.g.minW, h)
}

func (g *glyphText) layout(size fyne.Size) {
	leadW, total, h := g.widths()
	g.minW = max(g.minW, float32(math.Ceil(float64(total))))
	x := float32(0)
	switch g.align {
	case fyne.TextAlignTrailing:
		x = size.Width - total
	case fyne.TextAlignCenter:
		x = (size.Width - total) / 2
	}
	x = float32(math.Round(float64(x)))
	y := float32(math.Round(float64((size.Height - h) / 2)))
	place(g.lead, fyne.NewPos(x, y), fyne.NewSize(leadW, h))
	place(g.plain, fyne.NewPos(x+leadW, y), fyne.NewSize(g.restW, h))
	// the raster covers the text only (a smaller texture to replace when
	// the value changes), with a pixel to spare for antialiasing
	place(g.num, fyne.NewPos(x+leadW, y), fyne.NewSize(float32(math.Ceil(float64(g.restW)))+1, float32(math.Ceil(float64(h)))+1))
	if g.strip != nil {
		g.strip.changed()
	}
}

// draw is the raster's generator: the rest of the text, w×h pixels for
// the raster's size.
func (g *glyphText) draw(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	size := g.num.Size()
	if g.rest == "" || size.Width <= 0 {
		return img
	}
	faceFor(g.style).draw(img, g.rest, g.size, canvasScale(g, size.Width, w), g.color)
	return img
}

// numFace draws text with one font the way Fyne's painter does (go-text:
// outlines scaled to the size times the pixel scale, advances at the
// whole-number size, the baseline at the ascent rounded up), without
// kerning and without falling back to other fonts.
type numFace struct {
	mu  sync.Mutex
	f   *sfnt.Font
	buf sfnt.Buffer
	ras vector.Rasterizer
}

var numFaces sync.Map // fyne.Resource → *numFace (nil: not a font sfnt reads)

// faceFor returns the face of the theme's font for style, nil when it
// cannot be read (then glyphText lets Fyne draw).
func faceFor(style fyne.TextStyle) *numFace {
	res := theme.Current().Font(style)
	if res == nil {
		return nil
	}
	if f, ok := numFaces.Load(res); ok {
		return f.(*numFace)
	}
	var face *numFace
	if f, err := sfnt.Parse(res.Content()); err == nil { // reads the font's tables as it needs them
		face = &numFace{f: f}
	}
	numFaces.Store(res, face)
	return face
}

// width returns the advance width of s at size (logical pixels); ok is
// false when the font lacks a character of s.
func (f *numFace) width(s string, size float32) (w float32, ok bool) {
	if f == nil {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range s {
		i, err := f.f.GlyphIndex(&f.buf, r)
		if err != nil || i == 0 {
			return 0, false
		}
		a, err := f.f.GlyphAdvance(&f.buf, i, fixed.I(int(size)), xfont.HintingNone)
		if err != nil {
			return 0, false
		}
		w += float32(a) / 64
	}
	return w, true
}

// draw draws s into dst in colour c from its top-left corner, at size
// (logical) times scale.
func (f *numFace) draw(dst *image.RGBA, s string, size, scale float32, c color.Color) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ppem := fixed.Int26_6(size * scale * 64)
	m, err := f.f.Metrics(&f.buf, fixed.I(int(size)), xfont.HintingNone)
	if err != nil {
		return
	}
	x, base := float32(0), float32(math.Ceil(float64(float32(m.Ascent)/64*scale)))
	b := dst.Bounds()
	f.ras.Reset(b.Dx(), b.Dy())
	f.ras.DrawOp = draw.Over
	pt := func(p fixed.Point26_6) (float32, float32) { return x + float32(p.X)/64, base + float32(p.Y)/64 }
	for _, r := range s {
		i, err := f.f.GlyphIndex(&f.buf, r)
		if err != nil || i == 0 {
			continue
		}
		segs, err := f.f.LoadGlyph(&f.buf, i, ppem, nil)
		if err != nil {
			continue
		}
		started := false
		for _, sg := range segs {
			switch sg.Op {
			case sfnt.SegmentOpMoveTo:
				if started {
					f.ras.ClosePath()
				}
				f.ras.MoveTo(pt(sg.Args[0]))
				started = true
			case sfnt.SegmentOpLineTo:
				f.ras.LineTo(pt(sg.Args[0]))
			case sfnt.SegmentOpQuadTo:
				bx, by := pt(sg.Args[0])
				cx, cy := pt(sg.Args[1])
				f.ras.QuadTo(bx, by, cx, cy)
			case sfnt.SegmentOpCubeTo:
				bx, by := pt(sg.Args[0])
				cx, cy := pt(sg.Args[1])
				dx, dy := pt(sg.Args[2])
				f.ras.CubeTo(bx, by, cx, cy, dx, dy)
			}
		}
		if started {
			f.ras.ClosePath()
		}
		a, err := f.f.GlyphAdvance(&f.buf, i, fixed.I(int(size)), xfont.HintingNone)
		if err == nil {
			x += float32(a) / 64 * scale
		}
	}
	f.ras.Draw(dst, b, image.NewUniform(c), image.Point{})
}
