package gui

import (
	"image"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

// shownShapes counts the visible rectangles and circles among a widget's
// own objects: each is a draw call.
func shownShapes(t *testing.T, w fyne.Widget) (n int) {
	for _, o := range test.TempWidgetRenderer(t, w).Objects() {
		switch o.(type) {
		case *canvas.Rectangle, *canvas.Circle:
			if o.Visible() {
				n++
			}
		}
	}
	return n
}

// captureIn draws o alone in a 200×40 window at scale 1.
func captureIn(t *testing.T, o fyne.CanvasObject, prep func(w fyne.Window)) image.Image {
	return captureScaled(t, o, fyne.NewSize(200, 40), 1, prep)
}

// captureScaled draws o alone, without padding, in a window of size at
// scale; prep (if any) runs on the window before the capture.
func captureScaled(t *testing.T, o fyne.CanvasObject, size fyne.Size, scale float32, prep func(w fyne.Window)) image.Image {
	w := test.NewWindow(o)
	t.Cleanup(w.Close)
	w.SetPadded(false)
	c := w.Canvas().(test.WindowlessCanvas)
	c.SetScale(scale)
	w.Resize(size)
	if prep != nil {
		prep(w)
	}
	return c.Capture()
}

// The light slider draws one shape less than Fyne's while its ring is
// transparent and one more less at its maximum (the track under the
// active part), shows the ring when hovered and when focused, and looks
// the same in each state.
func TestLightSliderRing(t *testing.T) {
	test.NewTempApp(t)
	states := []struct {
		name string
		do   func(w fyne.Window, s fyne.Widget)
	}{
		{"idle", nil},
		{"hovered", func(w fyne.Window, s fyne.Widget) { s.(desktop.Hoverable).MouseIn(&desktop.MouseEvent{}) }},
		{"hovered, then left", func(w fyne.Window, s fyne.Widget) {
			s.(desktop.Hoverable).MouseIn(&desktop.MouseEvent{})
			s.(desktop.Hoverable).MouseOut()
		}},
		{"focused", func(w fyne.Window, s fyne.Widget) { w.Canvas().Focus(s.(fyne.Focusable)) }},
		{"disabled", func(w fyne.Window, s fyne.Widget) { s.(fyne.Disableable).Disable() }},
	}
	for _, st := range states {
		for _, value := range []float64{40, sliderMax} {
			stock := widget.NewSlider(0, sliderMax)
			stock.Value = value
			light := newLightSlider(0, sliderMax)
			light.Value = value
			shot := func(s fyne.Widget) image.Image {
				return captureIn(t, s, func(w fyne.Window) {
					if st.do != nil {
						st.do(w, s)
					}
				})
			}
			want, got := shot(stock), shot(light)
			if d := meanInkDiff(want, got); d > 1 {
				t.Errorf("%s at %v: differs from Fyne's slider by %.1f per inked pixel", st.name, value, d)
			}
			ns, nl := shownShapes(t, stock), shownShapes(t, light)
			expect := ns
			if st.name != "hovered" && st.name != "focused" {
				expect-- // the transparent ring
			}
			if value == sliderMax {
				expect-- // the covered track
			}
			if nl != expect {
				t.Errorf("%s at %v: %d shapes shown, Fyne's slider %d (want %d)", st.name, value, nl, ns, expect)
			}
		}
	}
}

// The light entry draws its box and border as one shape and looks like
// Fyne's entry, empty with its placeholder, typed into, focused and
// disabled.
func TestLightEntryLooksLikeEntry(t *testing.T) {
	test.NewTempApp(t)
	states := []struct {
		name string
		do   func(w fyne.Window, f fyne.Focusable, e *widget.Entry)
	}{
		{"placeholder", nil},
		{"text", func(w fyne.Window, f fyne.Focusable, e *widget.Entry) { e.SetText("2.5 MB/s") }},
		{"focused", func(w fyne.Window, f fyne.Focusable, e *widget.Entry) { w.Canvas().Focus(f) }},
		{"disabled", func(w fyne.Window, f fyne.Focusable, e *widget.Entry) { e.Disable() }},
	}
	for _, st := range states {
		stock := widget.NewEntry()
		stock.SetPlaceHolder("unlimited")
		light := newLightEntry()
		light.SetPlaceHolder("unlimited")
		want := captureIn(t, stock, func(w fyne.Window) {
			if st.do != nil {
				st.do(w, stock, stock)
			}
		})
		got := captureIn(t, light, func(w fyne.Window) {
			if st.do != nil {
				st.do(w, light, &light.Entry)
			}
		})
		d := meanInkDiff(want, got)
		t.Logf("%s: mean difference %.2f", st.name, d)
		if d > 3 {
			t.Errorf("%s: differs from Fyne's entry by %.1f per inked pixel", st.name, d)
		}
		if ns, nl := shownShapes(t, stock), shownShapes(t, light); nl != ns-1 {
			t.Errorf("%s: %d shapes shown, Fyne's entry %d (want one less)", st.name, nl, ns)
		}
	}
}

// The light widgets leave every object where Fyne's layout puts it: one
// that the trim moved would be moved back by the next layout and forth by
// the trim again, and each move paints the window a second time.
func TestLightWidgetsKeepFynesLayout(t *testing.T) {
	test.NewTempApp(t)
	stockE, lightE := widget.NewEntry(), newLightEntry()
	stockS, lightS := widget.NewSlider(0, sliderMax), newLightSlider(0, sliderMax)
	stockS.Value, lightS.Value = sliderMax, sliderMax
	for _, pair := range [][2]fyne.Widget{{stockE, lightE}, {stockS, lightS}} {
		size := fyne.NewSize(120, 36)
		pair[0].Resize(size)
		pair[1].Resize(size)
		rs, rl := test.TempWidgetRenderer(t, pair[0]), test.TempWidgetRenderer(t, pair[1])
		for range 2 {
			rs.Layout(size)
			rl.Layout(size)
			rl.Refresh()
			os, ol := rs.Objects(), rl.Objects()
			if len(os) != len(ol) {
				t.Fatalf("%T: %d objects, Fyne's %d", pair[1], len(ol), len(os))
			}
			for i := range os {
				if os[i].Position() != ol[i].Position() || os[i].Size() != ol[i].Size() {
					t.Errorf("%T object %d (%T) at %v size %v, Fyne's at %v size %v", pair[1], i, ol[i],
						ol[i].Position(), ol[i].Size(), os[i].Position(), os[i].Size())
				}
			}
		}
	}
}
