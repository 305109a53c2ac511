package gui

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

func TestFormatRate(t *testing.T) {
	cases := []struct {
		bps  uint64
		unit Unit
		want string
	}{
		{0, UnitAuto, "0 B/s"},
		{999, UnitAuto, "999 B/s"},
		{1500, UnitAuto, "1.5 KB/s"},
		{12_345, UnitAuto, "12.3 KB/s"},
		{999_499, UnitAuto, "999 KB/s"},
		{999_500, UnitAuto, "1 MB/s"},
		{2_500_000, UnitAuto, "2.5 MB/s"},
		{1_250_000_000, UnitAuto, "1.25 GB/s"},
		{2_500_000, UnitKBps, "2500 KB/s"},
		{2_500, UnitMBps, "0 MB/s"},
		{25_000, UnitMBps, "0.03 MB/s"},
		{1_250_000, UnitMbits, "10 Mbit/s"},
	}
	for _, c := range cases {
		if got := FormatRate(c.bps, c.unit); got != c.want {
			t.Errorf("FormatRate(%d, %s) = %q, want %q", c.bps, c.unit, got, c.want)
		}
	}
	if got := FormatBytes(9_000_000_000); got != "9 GB" {
		t.Errorf("FormatBytes = %q", got)
	}
	if got := FormatLimit(0, UnitAuto); got != "unlimited" {
		t.Errorf("FormatLimit(0) = %q", got)
	}
}

func TestParseLimit(t *testing.T) {
	ok := []struct {
		in   string
		unit Unit
		want uint64
	}{
		{"", UnitAuto, 0},
		{"unlimited", UnitAuto, 0},
		{" none ", UnitAuto, 0},
		{"0", UnitMBps, 0},
		{"250", UnitAuto, 250_000},
		{"250", UnitKBps, 250_000},
		{"1.5", UnitMBps, 1_500_000},
		{"1,5", UnitMBps, 1_500_000},
		{"8", UnitMbits, 1_000_000},
		{"500KB/s", UnitAuto, 500_000},
		{"1.5 MB/s", UnitMbits, 1_500_000},
		{"1MiB/s", UnitAuto, 1 << 20},
		{"8Mbit/s", UnitAuto, 1_000_000},
	}
	for _, c := range ok {
		got, err := ParseLimit(c.in, c.unit)
		if err != nil || got != c.want {
			t.Errorf("ParseLimit(%q, %s) = %d, %v; want %d", c.in, c.unit, got, err, c.want)
		}
	}
	for _, in := range []string{"fast", "-5", "1e400", "12 parsecs", "99999999999999", "NaN"} {
		if v, err := ParseLimit(in, UnitAuto); err == nil {
			t.Errorf("ParseLimit(%q) = %d, want an error", in, v)
		} else if !errors.Is(err, api.ErrRate) {
			t.Errorf("ParseLimit(%q) error %v does not wrap api.ErrRate", in, err)
		}
	}
}

func TestSliderScale(t *testing.T) {
	if SliderToLimit(sliderMax) != 0 || LimitToSlider(0) != sliderMax {
		t.Fatal("the right end is not unlimited")
	}
	if got := SliderToLimit(0); got != 10_000 {
		t.Errorf("left end = %d, want 10 KB/s", got)
	}
	if got := SliderToLimit(sliderLogMax); got != 100_000_000 {
		t.Errorf("last limited position = %d, want 100 MB/s", got)
	}
	// log scale: every decade takes the same distance
	d1 := LimitToSlider(100_000) - LimitToSlider(10_000)
	d2 := LimitToSlider(10_000_000) - LimitToSlider(1_000_000)
	if d1 != d2 || d1 != sliderLogMax/4 {
		t.Errorf("decades %v and %v apart, want %v", d1, d2, sliderLogMax/4)
	}
	// monotonic, two significant digits, round trip within a step
	prev := uint64(0)
	for pos := 0.0; pos <= sliderLogMax; pos++ {
		l := SliderToLimit(pos)
		if l < prev {
			t.Fatalf("not monotonic at %v: %d < %d", pos, l, prev)
		}
		prev = l
		n := strings.Fields(FormatRate(l, UnitAuto))[0]
		if digits := len(strings.Trim(strings.ReplaceAll(n, ".", ""), "0")); digits > 2 {
			t.Fatalf("limit %d at %v shows as %q", l, pos, FormatRate(l, UnitAuto))
		}
		if back := LimitToSlider(l); back < pos-6 || back > pos+6 {
			t.Fatalf("round trip %v → %d → %v", pos, l, back)
		}
	}
	if LimitToSlider(1) != 0 || LimitToSlider(1e12) != sliderLogMax {
		t.Error("limits outside the scale do not clamp")
	}
}

func TestAutostart(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("XDG_CONFIG_DIRS", t.TempDir())
	path := filepath.Join(dir, "autostart", AutostartFile)
	if AutostartEnabled() {
		t.Fatal("enabled with no entry anywhere")
	}
	if err := SetAutostart(true, true, "/opt/Chad Throttle/chadthrottle"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[Desktop Entry]", "Type=Application", `Exec="/opt/Chad Throttle/chadthrottle" --hidden`, "Icon=io.github.chadthrottle"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("autostart entry lacks %q:\n%s", want, b)
		}
	}
	if err := SetAutostart(true, false, "/usr/bin/chadthrottle"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if !strings.Contains(string(b), "Exec=/usr/bin/chadthrottle\n") {
		t.Errorf("entry without --hidden:\n%s", b)
	}
	if err := SetAutostart(false, false, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("entry still there after disabling: %v", err)
	}
	if err := SetAutostart(false, false, ""); err != nil {
		t.Errorf("disabling twice: %v", err)
	}
}

// The package installs a system-wide entry (/etc/xdg/autostart): turning
// start at login off must mask it with Hidden=true, not just delete the
// user's file.
func TestAutostartMasksSystemEntry(t *testing.T) {
	home, sys := t.TempDir(), t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("XDG_CONFIG_DIRS", sys)
	os.MkdirAll(filepath.Join(sys, "autostart"), 0o755)
	if err := os.WriteFile(filepath.Join(sys, "autostart", AutostartFile), []byte("[Desktop Entry]\nExec=chadthrottle --hidden\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !AutostartEnabled() {
		t.Fatal("system entry present but AutostartEnabled() = false")
	}
	if err := SetAutostart(false, true, "/usr/bin/chadthrottle"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(home, "autostart", AutostartFile))
	if err != nil || !strings.Contains(string(b), "\nHidden=true\n") {
		t.Fatalf("user entry = %q, %v; want Hidden=true", b, err)
	}
	if AutostartEnabled() {
		t.Fatal("still enabled after turning it off")
	}
	if err := SetAutostart(true, true, "/usr/bin/chadthrottle"); err != nil {
		t.Fatal(err)
	}
	if !AutostartEnabled() {
		t.Fatal("not enabled after turning it back on")
	}
}

func TestSettingsPersist(t *testing.T) {
	fx := newFixture(t, testApps())
	if fx.ui.settings != (Settings{Unit: UnitAuto, Traffic: api.TrafficAll}) {
		t.Fatalf("defaults = %+v", fx.ui.settings)
	}
	s := Settings{Unit: UnitMbits, Autostart: true, StartHidden: true, Traffic: api.TrafficInternet}
	fx.ui.applySettings(s)
	if got := loadSettings(fx.app.Preferences()); got != s {
		t.Errorf("reloaded %+v, want %+v", got, s)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "autostart", AutostartFile)); err != nil {
		t.Errorf("start at login did not write the autostart entry: %v", err)
	}
	if got := fx.row("Steam").down.Text; got != "40 Mbit/s" {
		t.Errorf("rate in Mbit/s = %q", got)
	}
	// new limits use the chosen traffic type
	fx.ui.edit("1000:/usr/bin/curl", dirUp, 100_000)
	c, ok := fx.waitCall()
	if !ok || c.Limit.Traffic != api.TrafficInternet {
		t.Errorf("new limit traffic: %+v", c)
	}
	fx.settle()
	// bad stored values fall back
	p := test.NewTempApp(t).Preferences()
	p.SetString(prefUnit, "furlongs")
	p.SetString(prefTraffic, "cosmic")
	if got := loadSettings(p); got.Unit != UnitAuto || got.Traffic != api.TrafficAll {
		t.Errorf("bad prefs gave %+v", got)
	}
}

func TestIconLookup(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(t.TempDir(), "none"))
	t.Setenv("XDG_DATA_DIRS", data)
	png, err := os.ReadFile("../assets/icons/hicolor/48x48/apps/io.github.chadthrottle.png")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(data, "icons", "hicolor", "48x48", "apps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "steam.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newIconCache()
	if r := c.resolve("steam"); r == assets.GenericAppIcon || string(r.Content()) != string(png) {
		t.Errorf("steam icon not found in %s", dir)
	}
	abs := filepath.Join(dir, "steam.png")
	if r := c.resolve(abs); r == assets.GenericAppIcon {
		t.Error("absolute icon path not loaded")
	}
	for _, name := range []string{"", "no-such-icon", "../../etc/passwd", "/etc/passwd"} {
		if r := c.resolve(name); r != assets.GenericAppIcon {
			t.Errorf("icon %q: got %s, want the generic icon", name, r.Name())
		}
	}
}

// TestFormatTotal: totals follow the unit setting's family: bits for
// Mbit/s, bytes otherwise, scaled to fit.
func TestFormatTotal(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		u    Unit
		want string
	}{
		{9_000_000_000, UnitAuto, "9 GB"}, {9_000_000_000, UnitMBps, "9 GB"}, {600_000, UnitKBps, "600 KB"},
		{9_000_000_000, UnitMbits, "72 Gbit"}, {100, UnitMbits, "800 bit"}, {125_000, UnitMbits, "1 Mbit"},
		{1 << 63, UnitMbits, "18446744 Tbit"}, // no overflow
	} {
		if got := FormatTotal(c.n, c.u); got != c.want {
			t.Errorf("FormatTotal(%d, %s) = %q, want %q", c.n, c.u, got, c.want)
		}
	}
}
