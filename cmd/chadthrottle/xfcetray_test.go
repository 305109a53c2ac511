package main

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// xfcePanelConfig is a panel along the top of the screen, 32 px high,
// holding only the status tray: the first tray icon is at (12, 16).
const xfcePanelConfig = `<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="length" type="uint" value="100"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="size" type="uint" value="32"/>
      <property name="plugin-ids" type="array">
        <value type="int" value="1"/>
      </property>
    </property>
  </property>
  <property name="plugins" type="empty">
    <property name="plugin-1" type="string" value="systray"/>
  </property>
</channel>
`

// startXfcePanel runs xfconfd and xfce4-panel (Debian's, with its status
// tray, a real StatusNotifierWatcher and host) on display and the session
// bus addr, and waits for the watcher. It returns the panel's output.
func startXfcePanel(t *testing.T, display, addr string) *testenv.Buffer {
	t.Helper()
	home := t.TempDir()
	cfg := filepath.Join(home, ".config", "xfce4", "xfconf", "xfce-perchannel-xml")
	if err := os.MkdirAll(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "xfce4-panel.xml"), []byte(xfcePanelConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	panelOut := &testenv.Buffer{}
	env := append(os.Environ(), "DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS="+addr, "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "NO_AT_BRIDGE=1")
	xfconfd := "/usr/lib/x86_64-linux-gnu/xfce4/xfconf/xfconfd"
	if m, _ := filepath.Glob("/usr/lib/*/xfce4/xfconf/xfconfd"); len(m) > 0 {
		xfconfd = m[0]
	}
	for _, d := range []struct {
		name string
		cmd  *exec.Cmd
	}{{"xfconfd", exec.Command(xfconfd)}, {"xfce4-panel", exec.Command("xfce4-panel")}} {
		d.cmd.Env = env
		testenv.StartDaemon(t, d.name, d.cmd, panelOut)
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var has bool
		if conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.kde.StatusNotifierWatcher").Store(&has) == nil && has {
			return panelOut
		}
		if time.Now().After(deadline) {
			t.Fatal("xfce4-panel's tray did not take org.kde.StatusNotifierWatcher")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// xtool runs an X client (xdotool, import) on display.
func xtool(t *testing.T, display string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// keyShown presses key and reports whether the screen changed (the menu's
// selection moved, a submenu opened), then a little longer for a submenu
// filled in after it appeared.
func keyShown(t *testing.T, display, key string) bool {
	t.Helper()
	prev := grab(t, display, "tray-nav")
	xtool(t, display, "xdotool", "key", key)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if differs(prev, grab(t, display, "tray-nav"), prev.Bounds()) {
			time.Sleep(300 * time.Millisecond)
			return true
		}
	}
	t.Logf("the screen did not change within 5 s of key %s", key)
	return false
}

// grab saves the screen as name.png in the test's artifacts and returns it.
func grab(t *testing.T, display, name string) image.Image {
	t.Helper()
	path := screenshot(t, display, name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// differs reports whether two screens differ inside r.
func differs(a, b image.Image, r image.Rectangle) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				return true
			}
		}
	}
	return false
}

// TestTrayInXfcePanel runs the real GUI hidden in xfce4-panel's status tray
// (a real tray host) under Xvfb, with the real helper (fake backends)
// started by the bus: the icon shows in the panel, a click opens the menu
// listing apps with their quick limits, choosing "1 MB/s" from an app's
// submenu (with the keyboard, as a person could) creates the rule, and
// the icon turns to its limited variant. Screenshots: the open menu, the
// submenu, the icon before and after.
func TestTrayInXfcePanel(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "xfce4-panel", "xdotool", "import")
	display := testenv.StartXvfb(t)
	helperBin := bustest.BuildBinary(t, "./cmd/chadthrottle-helper", "fakebackends")
	bus := startActivationBus(t, helperBin, "--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download",
		"--state-dir", t.TempDir(), "--run-dir", t.TempDir(), "--tag", testenv.UniqueName("x"))
	panel := startXfcePanel(t, display, bus.addr)
	g := startGUI(t, []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + bus.addr}, "--bus", bus.addr, "--hidden")

	icon := image.Rect(0, 0, 32, 32)
	blank := grab(t, display, "panel-empty")
	var before image.Image
	testenv.AwaitDaemon(t, "the icon in the panel", g.exited, g.out, 30*time.Second, func() bool {
		before = grab(t, display, "tray-icon")
		return differs(blank, before, icon)
	})
	if w := visibleWindows(t, display); len(w) != 0 {
		t.Errorf("--hidden in a real tray shows windows %v", w)
	}

	// The first open starts the helper and fills the menu (the panel asks
	// AboutToShowGroup, which the GUI watches for); open it again once
	// the helper answered and the menu lists apps.
	xtool(t, display, "xdotool", "mousemove", "12", "16", "click", "1")
	c, err := client.Connect(bus.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testenv.AwaitDaemon(t, "the helper started by the tray menu", g.exited, g.out, 30*time.Second, func() bool {
		up, _ := c.Running(context.Background())
		return up
	})
	time.Sleep(2 * time.Second)
	xtool(t, display, "xdotool", "key", "Escape")
	time.Sleep(500 * time.Millisecond)
	xtool(t, display, "xdotool", "mousemove", "12", "16", "click", "1")
	time.Sleep(1500 * time.Millisecond)
	menu := grab(t, display, "tray-menu")
	if !differs(before, menu, image.Rect(0, 40, 300, 200)) {
		t.Fatal("no menu under the icon after a click")
	}
	// A filled menu is taller than the "Connecting…" one (4 rows, to y≈142).
	if !differs(before, menu, image.Rect(0, 160, 300, 200)) {
		t.Fatal("the tray menu did not fill with apps (still connecting?); see tray-menu.png")
	}
	// Down: "Open ChadThrottle", then the first app (the heading is not
	// selectable); Right opens its submenu at "100 KB/s"; Down: "1 MB/s".
	// Each key waits for the screen to show it (a fixed pause lost a key
	// under load in CI: the wrong submenu item was chosen).
	var rules []api.Rule
	attempt := func() bool {
		for _, k := range []string{"Down", "Down", "Right", "Down"} {
			if !keyShown(t, display, k) {
				return false
			}
		}
		grab(t, display, "tray-submenu")
		xtool(t, display, "xdotool", "key", "Return")
		return testenv.WaitUntil(10*time.Second, func() bool {
			rules, _ = c.Rules(context.Background())
			return len(rules) == 1
		})
	}
	// Until 2026-12-04 the panel now and then showed the app's submenu as
	// an empty box (about 1 attempt in 5), logging libdbusmenu-gtk's
	// "Children but no menu … 'children-display' property: 'submenu'": it
	// had read fyne.io/systray's menu while it was being built. The menu
	// is now served whole (gui/dbusmenu.go), and that warning fails the
	// test. A second attempt is left for a key lost under load.
	if !attempt() {
		t.Logf("no rule from the first attempt (see tray-nav.png, tray-submenu.png); closing the menu and trying again")
		xtool(t, display, "xdotool", "key", "Escape", "Escape", "Escape")
		time.Sleep(500 * time.Millisecond)
		xtool(t, display, "xdotool", "mousemove", "12", "16", "click", "1")
		time.Sleep(1500 * time.Millisecond)
		if !attempt() {
			t.Fatalf("no rule from the tray menu in two attempts; see tray-nav.png, tray-submenu.png\n%s\npanel:\n%s", g.out.String(), panel.String())
		}
	}
	if out := panel.String(); strings.Contains(out, "DBUSMENU") || strings.Contains(out, "Children but no menu") {
		t.Errorf("the panel's dbusmenu client warned about our menu:\n%s", out)
	}
	if rules[0].Limit.Down != 1_000_000 {
		t.Errorf("rule %+v, want a 1 MB/s download limit", rules[0])
	}
	t.Logf("rule from the tray: %s %+v", rules[0].Exe, rules[0].Limit)
	testenv.AwaitDaemon(t, "the limited icon", g.exited, g.out, 20*time.Second, func() bool {
		return differs(before, grab(t, display, "tray-icon-limited"), icon)
	})
}
