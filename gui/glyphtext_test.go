package gui

import (
	"image/color"
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
)

func TestSplitGlyphs(t *testing.T) {
	for in, want := range map[string][]string{
		"1.23 MB/s":   {"1", ".", "2", "3", " MB/s"},
		"↓ 10 kB/s":   {"↓ ", "1", "0", " kB/s"},
		"–":           {"–"},
		"":            nil,
		"0 B/s":       {"0", " B/s"},
		"12.5 Mbit/s": {"1", "2", ".", "5", " Mbit/s"},
	} {
		if got := splitGlyphs(in); !slices.Equal(got, want) {
			t.Errorf("splitGlyphs(%q) = %q, want %q", in, got, want)
		}
	}
}

// A glyphText shows its text as pieces side by side, right-aligned, and a
// new value reuses the pieces (no new objects, unchanged pieces untouched).
func TestGlyphTextPieces(t *testing.T) {
	test.NewTempApp(t)
	fg := color.White
	g := newGlyphText(14, fyne.TextStyle{}, fyne.TextAlignTrailing, fg)
	w := test.NewWindow(g)
	defer w.Close()
	g.Set("1.23 MB/s", fg)
	g.Resize(fyne.NewSize(200, 30))
	shown := func() (s string, right float32) {
		for _, o := range g.objs {
			if t := o.(*canvas.Text); t.Visible() {
				s += t.Text
				right = max(right, t.Position().X+t.Size().Width)
			}
		}
		return s, right
	}
	if s, right := shown(); s != "1.23 MB/s" || g.Text != "1.23 MB/s" || right < 199 || right > 201 {
		t.Fatalf("shown %q (Text %q), right edge %v: want 1.23 MB/s ending at 200", s, g.Text, right)
	}
	first := g.pieces[0]
	n := len(g.objs)
	g.Set("1.99 MB/s", fg)
	if s, _ := shown(); s != "1.99 MB/s" || len(g.objs) != n || g.pieces[0] != first {
		t.Errorf("after a new value: shown %q with %d objects (was %d)", s, len(g.objs), n)
	}
	g.Set("0 B/s", fg)
	if s, _ := shown(); s != "0 B/s" {
		t.Errorf("shorter value: shown %q", s)
	}
	if w := g.MinSize().Width; w < fyne.MeasureText("1.99 MB/s", 14, fyne.TextStyle{}).Width*0.9 {
		t.Errorf("min width %v shrank with a shorter value (it keeps the widest)", w)
	}
}

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
