package gui

import (
	"image"
	"image/color"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The graph's plot puts each series where its values are, at any pixel
// density, draws nothing away from the lines and the grid, and shows the
// newest sample at the right edge.
func TestGraphPlot(t *testing.T) {
	test.NewTempApp(t)
	g := NewGraph(fyne.NewSize(240, 60), false)
	g.Resize(fyne.NewSize(240, 60))
	s := make([]api.Sample, api.HistoryLen)
	for i := range s {
		s[i] = api.Sample{RxRate: 1300, TxRate: 300} // off the grid lines
	}
	s[len(s)-1].RxRate = 2000 // the peak, at the right edge
	g.SetSamples(s, UnitAuto)
	r := test.TempWidgetRenderer(t, g).(*graphRenderer)
	for _, px := range []int{1, 2} { // 1× and a HiDPI 2×
		img := r.draw(240*px, 60*px).(*image.RGBA)
		pad, ph := float32(graphPad*px), float32(60*px-2*graphPad*px)
		at := func(v uint64) int { return int(pad + ph - float32(v)*ph/2000*0.95 + 0.5) }
		mid := 120 * px
		if c := near(img, mid, at(1300), px); !isColor(c, colorDown) {
			t.Errorf("%d×: download at 1300 (y %d) is %v, want %v", px, at(1300), c, colorDown)
		}
		if c := near(img, mid, at(300), px); !isColor(c, colorUp) {
			t.Errorf("%d×: upload at 300 (y %d) is %v, want %v", px, at(300), c, colorUp)
		}
		if c := near(img, 240*px-int(pad)-1, at(2000), px); !isColor(c, colorDown) {
			t.Errorf("%d×: the newest download sample (2000, y %d) at the right edge is %v", px, at(2000), c)
		}
		// between the series and the grid lines: nothing drawn
		for _, y := range []int{at(1300) - 4*px, at(300) + 3*px} {
			if a := img.RGBAAt(mid, y).A; a != 0 {
				t.Errorf("%d×: pixel (%d, %d) away from the lines is drawn (alpha %d)", px, mid, y, a)
			}
		}
	}
	// no samples: only the grid
	g.SetSamples([]api.Sample{}, UnitAuto)
	img := r.draw(240, 60).(*image.RGBA)
	for x := 0; x < 240; x++ {
		for y := 0; y < 60; y++ {
			if c := img.RGBAAt(x, y); isColor(c, colorDown) || isColor(c, colorUp) {
				t.Fatalf("an empty graph draws a series at (%d, %d)", x, y)
			}
		}
	}
}

// near returns the most opaque pixel of img within px pixels of (x, y)
// vertically: an antialiased line's centre.
func near(img *image.RGBA, x, y, px int) color.RGBA {
	var best color.RGBA
	for dy := -px; dy <= px; dy++ {
		if c := img.RGBAAt(x, y+dy); c.A > best.A {
			best = c
		}
	}
	return best
}

// isColor says whether c, premultiplied and mostly opaque, is want.
func isColor(c color.RGBA, want color.NRGBA) bool {
	if c.A < 0xa0 {
		return false
	}
	d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
	un := func(v uint8) uint8 { return uint8(int(v) * 0xff / int(c.A)) }
	return d(un(c.R), want.R) < 0x20 && d(un(c.G), want.G) < 0x20 && d(un(c.B), want.B) < 0x20
}
