package gui

import (
	"runtime/debug"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
)

// The header's totals keep the widest size they had: a shorter rate
// moves nothing (no layout, no second paint), a longer one widens them.
func TestStickyRowKeepsWidth(t *testing.T) {
	test.NewTempApp(t)
	a, b := canvas.NewText("↓ 10.8 MB/s", nil), canvas.NewText("↑ 1 KB/s", nil)
	row := &stickyRow{}
	c := container.New(row, a, b)
	c.Resize(c.MinSize())
	wide := a.Size().Width
	posB := b.Position()
	a.Text = "↓ 9 KB/s"
	if a.MinSize().Width >= wide {
		t.Fatalf("test texts: %v is not narrower than %v", a.MinSize().Width, wide)
	}
	c.Resize(c.MinSize())
	c.Refresh()
	if a.Size().Width != wide || b.Position() != posB {
		t.Errorf("shorter text: width %v (want %v), next at %v (want %v)", a.Size().Width, wide, b.Position(), posB)
	}
	a.Text = "↓ 888.8 MB/s and more"
	c.Resize(c.MinSize())
	if a.Size().Width <= wide || b.Position().X <= posB.X {
		t.Errorf("longer text: width %v, next at %v; want wider than %v and after %v", a.Size().Width, b.Position(), wide, posB)
	}
}

// place leaves an object alone when position and size are unchanged.
func TestPlaceOnlyOnChange(t *testing.T) {
	test.NewTempApp(t)
	r := canvas.NewRectangle(nil)
	place(r, fyne.NewPos(3, 4), fyne.NewSize(10, 20))
	if r.Position() != fyne.NewPos(3, 4) || r.Size() != fyne.NewSize(10, 20) {
		t.Fatalf("placed at %v size %v", r.Position(), r.Size())
	}
	l := canvas.NewLine(nil)
	setShown(l, false)
	setShown(l, false)
	if l.Visible() {
		t.Error("line still shown")
	}
	setShown(l, true)
	if !l.Visible() {
		t.Error("line not shown")
	}
}

// The window's collector runs at GOGC=50 unless the user set GOGC.
func TestWindowGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	windowGC()
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC unset: the window's GC percent is %d, want 50", got)
	}
	t.Setenv("GOGC", "200")
	windowGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=200 set by the user: windowGC changed the GC percent to %d", got)
	}
}
