package gui

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/test"
)

// fourCols places its objects side by side, each 90 wide, from dx on.
type fourCols struct{ dx float32 }

func (l *fourCols) MinSize([]fyne.CanvasObject) fyne.Size { return fyne.NewSize(4*90, 24) }
func (l *fourCols) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for i, o := range objs {
		place(o, fyne.NewPos(l.dx+float32(i)*90, 0), fyne.NewSize(90, size.Height))
	}
}

// fillFirst gives its first object the whole size and leaves the rest
// where they are (the strip's raster places itself), like rowRenderer.
type fillFirst struct{}

func (fillFirst) MinSize(objs []fyne.CanvasObject) fyne.Size { return objs[0].MinSize() }
func (fillFirst) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	place(objs[0], fyne.Position{}, size)
}

// stripRow is four right-aligned numbers in padded columns, as an app row
// has them; with strip, drawn by one numStrip.
type stripRow struct {
	top   fyne.CanvasObject
	cols  *fourCols
	inner *fyne.Container
	gs    []*glyphText
	boxes []fyne.CanvasObject
	strip *numStrip
}

func newStripRow(withStrip bool) *stripRow {
	r := &stripRow{cols: &fourCols{}}
	var lay fyne.Layout = r.cols
	if withStrip {
		r.strip = newNumStrip()
		lay = stripLayout{r.cols, r.strip}
	}
	for range 4 {
		g := newGlyphText(14, fyne.TextStyle{}, fyne.TextAlignTrailing, color.White)
		box := container.New(layout.NewCustomPaddedLayout(0, 0, 0, 6), g)
		if r.strip != nil {
			r.strip.add(g, box)
		}
		r.gs, r.boxes = append(r.gs, g), append(r.boxes, box)
	}
	r.inner = container.New(lay, r.boxes...)
	r.top = r.inner
	if r.strip != nil {
		r.top = container.New(fillFirst{}, r.inner, r.strip.raster)
	}
	return r
}

func (r *stripRow) set(vals ...string) {
	for i, v := range vals {
		r.gs[i].Set(v, color.White)
	}
}

// shownRasters counts the rasters of r on screen: each is a draw call.
func (r *stripRow) shownRasters() (n int) {
	if r.strip != nil && r.strip.raster.Visible() {
		n++
	}
	for _, g := range r.gs {
		if g.num.Visible() {
			n++
		}
	}
	return n
}

// A row's numbers drawn by one numStrip look like each drawn by its own
// glyphText (pixel for pixel), after values change width, after a column
// moves without changing size, with a column hidden and with a value the
// theme's font cannot draw; and they are one raster instead of four.
// Whole scales here: the test driver's painter puts an object on the
// pixel its position rounds up to, Fyne's GL painter on the nearest one
// (TestNumStripFractionalScale checks that rule).
func TestNumStripLooksLikeGlyphTexts(t *testing.T) {
	test.NewTempApp(t)
	for _, scale := range []float32{1, 2} {
		ref, got := newStripRow(false), newStripRow(true)
		for _, st := range stripSteps {
			st.do(ref)
			st.do(got)
			want, have := captureRow(t, ref, scale), captureRow(t, got, scale)
			d := meanInkDiff(want, have)
			rl, rr := inkColumns(want)
			gl, gr := inkColumns(have)
			t.Logf("scale %v, %s: mean difference %.2f, inked columns %d–%d (own rasters %d–%d)", scale, st.name, d, gl, gr, rl, rr)
			if d > 1 || abs(rl-gl) > 1 || abs(rr-gr) > 1 {
				t.Errorf("scale %v, %s: differs from the glyphTexts' own rasters by %.2f per inked pixel, inked %d–%d vs %d–%d (want ≤ 1, ±1 px)",
					scale, st.name, d, gl, gr, rl, rr)
			}
		}
		if n := got.shownRasters(); n != 1 {
			t.Errorf("scale %v: %d rasters shown with the strip, want 1", scale, n)
		}
		if n := ref.shownRasters(); n != 2 { // the third hidden, the second drawn by Fyne
			t.Errorf("scale %v: %d rasters shown without the strip, want 2", scale, n)
		}
		if !got.gs[1].plain.Visible() {
			t.Errorf("scale %v: the value with ∞ is not drawn by Fyne's text", scale)
		}
	}
}

var stripSteps = []struct {
	name string
	do   func(r *stripRow)
}{
	{"first values", func(r *stripRow) { r.set("1.23 MB/s", "0 B/s", "345 MB", "43.4 GB") }},
	{"values of other widths", func(r *stripRow) { r.set("812 KB/s", "10.5 MB/s", "1,024 MB", "7 B") }},
	{"a column moved, same size", func(r *stripRow) { r.cols.dx = 17; r.inner.Refresh() }},
	{"a column hidden", func(r *stripRow) { r.boxes[2].Hide(); r.set("9.99 MB/s") }},
	{"a character the font lacks", func(r *stripRow) { r.set("", "5 ∞B/s") }},
}

// captureRow draws r alone in a 400×24 window at scale.
func captureRow(t *testing.T, r *stripRow, scale float32) image.Image {
	return captureScaled(t, r.top, fyne.NewSize(400, 24), scale, nil)
}

// At a fractional scale each number in the strip's image is the image
// its own glyphText would draw, at the pixel Fyne's GL painter would put
// that raster on: its position in the window times the scale, rounded
// to the nearest (roundToPixel in Fyne's internal/painter/gl/draw.go),
// counted from where the strip's raster lands by the same rule.
func TestNumStripFractionalScale(t *testing.T) {
	test.NewTempApp(t)
	const scale = 1.25
	r := newStripRow(true)
	for _, st := range stripSteps[:3] { // values, then a column moved by a fraction
		st.do(r)
		if r.cols.dx != 0 {
			r.cols.dx = 17.3
			r.inner.Refresh()
		}
		captureRow(t, r, scale)
		abs := fyne.CurrentApp().Driver().AbsolutePositionForObject(r.strip.raster)
		size := r.strip.raster.Size()
		w, h := int(math.Round(float64(size.Width*scale))), int(math.Round(float64(size.Height*scale)))
		have := r.strip.draw(w, h)
		px := func(v float32) int { return int(math.Round(float64(v * scale))) }
		want := image.NewRGBA(image.Rect(0, 0, w, h))
		for i, g := range r.gs {
			// the raster is hidden (the strip draws it): where its box puts it
			gp := fyne.CurrentApp().Driver().AbsolutePositionForObject(r.boxes[i]).Add(g.Position()).Add(g.num.Position())
			gs := g.num.Size()
			own := g.draw(px(gp.X+gs.Width)-px(gp.X), px(gp.Y+gs.Height)-px(gp.Y))
			at := image.Pt(px(gp.X)-px(abs.X), px(gp.Y)-px(abs.Y))
			draw.Draw(want, own.Bounds().Add(at), own, image.Point{}, draw.Over)
			if gp.X*scale != float32(px(gp.X)) {
				t.Logf("%s: field %d at x %.2f px, put on %d", st.name, i, gp.X*scale, px(gp.X))
			}
		}
		if d := meanInkDiff(want, have); d > 0.5 {
			t.Errorf("%s: the strip differs from the fields' own images at their pixels by %.2f per inked pixel", st.name, d)
		}
	}
}

// The strip redraws only when a field changes: a Set of the same values
// or a layout that moves nothing leaves the raster alone (each redraw is
// a new texture for the frame).
func TestNumStripRedrawsOnlyChanges(t *testing.T) {
	test.NewTempApp(t)
	r := newStripRow(true)
	w := test.NewWindow(r.top)
	defer w.Close()
	w.Resize(fyne.NewSize(400, 24))
	r.set("1.23 MB/s", "0 B/s", "345 MB", "43.4 GB")
	w.Canvas().Capture()
	if len(r.strip.drawn) != 4 {
		t.Fatalf("strip draws %d fields, want 4", len(r.strip.drawn))
	}
	drawn := &r.strip.drawn[0] // changed replaces the slice when it redraws
	r.set("1.23 MB/s", "0 B/s", "345 MB", "43.4 GB")
	r.inner.Refresh()
	w.Resize(fyne.NewSize(400, 24))
	w.Canvas().Capture()
	if &r.strip.drawn[0] != drawn {
		t.Errorf("the same values and places redrew the strip")
	}
	r.set("2 MB/s")
	if &r.strip.drawn[0] == drawn || r.strip.drawn[0].text != "2 MB/s" {
		t.Errorf("a new value did not redraw the strip (first field %q)", r.strip.drawn[0].text)
	}
}
