package gui

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
)

func TestSplitLead(t *testing.T) {
	for in, want := range map[string][2]string{
		"1.23 MB/s": {"", "1.23 MB/s"},
		"↓ 10 kB/s": {"↓ ", "10 kB/s"},
		"↓ –":       {"↓ –", ""},
		"":          {"", ""},
	} {
		if lead, rest := splitLead(in); lead != want[0] || rest != want[1] {
			t.Errorf("splitLead(%q) = %q, %q; want %q, %q", in, lead, rest, want[0], want[1])
		}
	}
}

// A glyphText is one object on screen (one draw call) for a number, two
// with a lead such as "↓ ", and its text ends at the right edge when it is
// right-aligned.
func TestGlyphTextOneObject(t *testing.T) {
	test.NewTempApp(t)
	fg := color.White
	g := newGlyphText(14, fyne.TextStyle{}, fyne.TextAlignTrailing, fg)
	w := test.NewWindow(g)
	defer w.Close()
	w.SetPadded(false)
	w.Resize(fyne.NewSize(200, 30))
	shown := func() (n int) {
		for _, o := range g.objs {
			if o.Visible() {
				n++
			}
		}
		return n
	}
	g.Set("1.23 MB/s", fg)
	if n := shown(); n != 1 || g.Text != "1.23 MB/s" {
		t.Fatalf("%q: %d objects shown, want 1", g.Text, n)
	}
	img := w.Canvas().Capture()
	if l, r := inkColumns(img); r < 195 || r > 200 || l < 120 {
		t.Errorf("right-aligned 1.23 MB/s inked columns %d–%d of 200, want it to end at the right edge", l, r)
	}
	first := g.num
	g.Set("1.99 MB/s", fg)
	if g.num != first || shown() != 1 {
		t.Errorf("a new value made new objects")
	}
	g.Set("↓ 0 B/s", fg)
	if n := shown(); n != 2 {
		t.Errorf("with a lead: %d objects shown, want 2", n)
	}
	if w := g.MinSize().Width; w < fyne.MeasureText("1.99 MB/s", 14, fyne.TextStyle{}).Width*0.9 {
		t.Errorf("min width %v shrank with a shorter value (it keeps the widest)", w)
	}
}

// glyphText draws its numbers itself; they must look like Fyne's own text
// beside them: same place, same width, near the same pixels, at 1× and at
// a fractional scale.
func TestGlyphTextLooksLikeText(t *testing.T) {
	test.NewTempApp(t)
	fg := color.White
	for _, scale := range []float32{1, 1.25, 2} {
		for _, style := range []fyne.TextStyle{{}, {Bold: true}} {
			capture := func(o fyne.CanvasObject) image.Image {
				return captureScaled(t, o, fyne.NewSize(160, 24), scale, nil)
			}
			const s = "1,234.56 MB/s"
			want := canvas.NewText(s, fg)
			want.TextStyle = style
			want.Resize(want.MinSize()) // where a canvas.Text of its own would be: vertically centred on a whole pixel
			want.Move(fyne.NewPos(0, float32(math.Round(float64(24-want.MinSize().Height)/2))))
			ref := capture(container.NewWithoutLayout(want))
			g := newGlyphText(14, style, fyne.TextAlignLeading, fg)
			g.Set(s, fg)
			got := capture(g)
			rl, rr := inkColumns(ref)
			gl, gr := inkColumns(got)
			if abs(rl-gl) > 1 || abs(rr-gr) > 1 {
				t.Errorf("scale %v %+v: inked columns %d–%d, Fyne's text %d–%d", scale, style, gl, gr, rl, rr)
			}
			d := meanInkDiff(ref, got)
			t.Logf("scale %v %+v: inked columns %d–%d (Fyne's %d–%d), mean difference %.1f", scale, style, gl, gr, rl, rr, d)
			if d > 3 { // 0.3–0.5 here: curves flattened by another rasterizer
				t.Errorf("scale %v %+v: mean difference from Fyne's text %.1f of 255 per inked pixel (want ≤ 3)", scale, style, d)
			}
		}
	}
}

// inkColumns returns the first and last column with a light pixel.
func inkColumns(img image.Image) (first, last int) {
	b := img.Bounds()
	first, last = b.Max.X, -1
	for x := b.Min.X; x < b.Max.X; x++ {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			if luma(img.At(x, y)) > 128 {
				first, last = min(first, x), max(last, x)
				break
			}
		}
	}
	return first, last
}

// meanInkDiff is the mean absolute luminance difference over the pixels
// inked in either image.
func meanInkDiff(a, b image.Image) float64 {
	sum, n := 0.0, 0
	r := a.Bounds().Intersect(b.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			la, lb := luma(a.At(x, y)), luma(b.At(x, y))
			if max(la, lb) > 40 {
				sum += math.Abs(float64(la - lb))
				n++
			}
		}
	}
	if n == 0 {
		return 255
	}
	return sum / float64(n)
}

func luma(c color.Color) int {
	r, g, b, _ := c.RGBA()
	return int((299*r + 587*g + 114*b) / 1000 >> 8)
}

func abs(v int) int { return max(v, -v) }

// A poll with the same data refreshes neither the list (which would build
// a new row and paint the window) nor the rows; changed data reaches the
// rows on screen without a list refresh.
func TestPollRefreshesOnlyChanges(t *testing.T) {
	fx := newFixture(t, testApps())
	made := 0
	create := fx.ui.apps.list.CreateItem
	fx.ui.apps.list.CreateItem = func() fyne.CanvasObject { made++; return create() }
	fx.poll()
	fx.poll()
	if made != 0 {
		t.Errorf("polls with the same apps built %d rows (list.Refresh)", made)
	}
	apps := testApps()
	apps[0].RxRate = 7_000_000
	fx.fake.SetApps(apps)
	fx.poll()
	if made != 0 {
		t.Errorf("a poll with new rates built %d rows (list.Refresh)", made)
	}
	var rates []string
	for _, r := range fx.rows() {
		rates = append(rates, r.name.Text+" "+r.down.Text)
	}
	if got := strings.Join(rates, ", "); !strings.Contains(got, "7 MB/s") {
		t.Errorf("rows after new rates: %s", got)
	}
	fx.fake.SetApps(apps[:2])
	fx.poll()
	if made == 0 {
		t.Error("a poll with fewer apps did not refresh the list")
	}
	if got := len(fx.rows()); got != 2 {
		t.Errorf("%d rows shown, want 2", got)
	}
}
