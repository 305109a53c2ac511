//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// watcher is a minimal org.kde.StatusNotifierWatcher: it records the items
// that register.
type watcher struct{ items chan [2]string }

// RegisterStatusNotifierItem is the watcher's D-Bus method.
func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	w.items <- [2]string{string(sender), service}
	return nil
}

// menuNode is one com.canonical.dbusmenu layout node.
type menuNode struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []menuNode
}

func (n menuNode) label() string {
	s, _ := n.Props["label"].Value().(string)
	return s
}

// parseLayout decodes a (ia{sv}av) layout as godbus hands it over.
func parseLayout(v any) (menuNode, error) {
	var f []any
	switch x := v.(type) {
	case []any:
		f = x
	case dbus.Variant:
		return parseLayout(x.Value())
	default:
		return menuNode{}, fmt.Errorf("layout node of type %T", v)
	}
	if len(f) != 3 {
		return menuNode{}, fmt.Errorf("layout node with %d fields", len(f))
	}
	n := menuNode{}
	n.ID, _ = f[0].(int32)
	n.Props, _ = f[1].(map[string]dbus.Variant)
	kids, _ := f[2].([]dbus.Variant)
	for _, k := range kids {
		c, err := parseLayout(k.Value())
		if err != nil {
			return n, err
		}
		n.Children = append(n.Children, c)
	}
	return n, nil
}

func (n menuNode) find(prefix string) (menuNode, bool) {
	for _, c := range n.Children {
		if strings.HasPrefix(c.label(), prefix) {
			return c, true
		}
	}
	return menuNode{}, false
}

// trayHost is a private session bus with a StatusNotifierWatcher on it.
type trayHost struct {
	addr  string
	conn  *dbus.Conn
	items chan [2]string
}

func startTrayHost(t *testing.T) *trayHost {
	t.Helper()
	return startTrayHostOn(t, bustest.StartSessionBus(t).Address)
}

// startTrayHostOn puts a StatusNotifierWatcher on the bus at addr.
func startTrayHostOn(t *testing.T, addr string) *trayHost {
	t.Helper()
	h := &trayHost{addr: addr}
	conn, err := dbus.Connect(h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.conn = conn
	w := &watcher{items: make(chan [2]string, 4)}
	h.items = w.items
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own the watcher name: %v %v", r, err)
	}
	return h
}

// trayItem is a registered StatusNotifierItem and its dbusmenu.
type trayItem struct {
	t    *testing.T
	obj  dbus.BusObject
	menu dbus.BusObject
}

// waitItem waits for g's item to register and finds its menu through the
// item's Menu property.
func (h *trayHost) waitItem(t *testing.T, g *guiProc) *trayItem {
	t.Helper()
	var item [2]string
	select {
	case item = <-h.items:
	case <-g.exited:
		t.Fatal("chadthrottle exited before registering a tray item")
	case <-time.After(90 * time.Second):
		t.Fatal("no StatusNotifierItem registered within 90 s")
	}
	service, path := item[0], item[1]
	if !strings.HasPrefix(path, "/") { // some items register a bus name
		service, path = path, "/StatusNotifierItem"
	}
	t.Logf("item registered: %s %s", service, path)
	ti := &trayItem{t: t, obj: h.conn.Object(service, dbus.ObjectPath(path))}
	menuPath, ok := ti.prop("Menu").Value().(dbus.ObjectPath)
	if !ok || !menuPath.IsValid() {
		t.Fatalf("Menu property = %v", ti.prop("Menu"))
	}
	ti.menu = h.conn.Object(service, menuPath)
	return ti
}

func (ti *trayItem) prop(name string) dbus.Variant {
	ti.t.Helper()
	v, err := ti.obj.GetProperty("org.kde.StatusNotifierItem." + name)
	if err != nil {
		ti.t.Fatalf("read %s: %v", name, err)
	}
	return v
}

// layout reads the whole menu.
func (ti *trayItem) layout() menuNode {
	ti.t.Helper()
	var rev uint32
	var raw []any
	call := ti.menu.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
	if call.Err != nil {
		ti.t.Fatalf("GetLayout: %v", call.Err)
	}
	if err := call.Store(&rev, &raw); err != nil {
		ti.t.Fatalf("GetLayout reply: %v", err)
	}
	n, err := parseLayout(raw)
	if err != nil {
		ti.t.Fatal(err)
	}
	return n
}

// waitFor reads the menu until it is complete (ends with Quit; items
// arrive one by one while the menu is rebuilt) and has an entry starting
// with prefix.
func (ti *trayItem) waitFor(prefix string, d time.Duration) menuNode {
	ti.t.Helper()
	deadline := time.Now().Add(d)
	for {
		root := ti.layout()
		_, ok := root.find(prefix)
		if n := len(root.Children); ok && n > 0 && root.Children[n-1].label() == "Quit" {
			return root
		}
		if time.Now().After(deadline) {
			ti.t.Fatalf("tray menu never listed %q: %q", prefix, root.labels())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// click sends a dbusmenu "clicked" event.
func (ti *trayItem) click(n menuNode) {
	ti.t.Helper()
	if call := ti.menu.Call("com.canonical.dbusmenu.Event", 0, n.ID, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		ti.t.Fatalf("click %q: %v", n.label(), call.Err)
	}
}

func (n menuNode) labels() []string {
	var l []string
	for _, c := range n.Children {
		l = append(l, c.label())
	}
	return l
}

// synthQuickLimit checks the tray menu over the synthetic helper (open,
// the top apps with their quick limits, pause, quit) and returns
// Firefox's "1 MB/s".
func synthQuickLimit(t *testing.T, root menuNode) menuNode {
	t.Helper()
	t.Logf("tray menu: %q", root.labels())
	for _, want := range []string{"Open ChadThrottle", "Firefox", "Pause all limits", "Quit"} {
		if _, ok := root.find(want); !ok {
			t.Errorf("tray menu lacks %q: %q", want, root.labels())
		}
	}
	firefox, _ := root.find("Firefox")
	if got := strings.Join(firefox.labels(), "|"); got != "Limit download to:|100 KB/s|1 MB/s|5 MB/s|Custom…||Unlimited||Block" {
		t.Errorf("Firefox submenu = %q", got)
	}
	quick, ok := firefox.find("1 MB/s")
	if !ok {
		t.Fatal("no 1 MB/s quick limit")
	}
	return quick
}

// TestTray runs the real GUI binary (with its test-only synthetic data
// source) against a StatusNotifierWatcher on a private session bus: the
// item registers, its menu (found through the item's Menu property) lists
// the top apps with quick limits, clicking "1 MB/s" reaches the backend,
// the icon changes to the limits-active one, and Quit ends the program.
func TestTray(t *testing.T) {
	display := testenv.StartXvfb(t)
	host := startTrayHost(t)
	callLog := filepath.Join(t.TempDir(), "calls.jsonl")
	g := startGUI(t, []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + host.addr,
		envSynthetic + "=30", envCallLog + "=" + callLog})
	item := host.waitItem(t, g)

	// the menu fills once the first snapshot is in
	quick := synthQuickLimit(t, item.waitFor("Firefox", 30*time.Second))
	iconBefore := fmt.Sprint(item.prop("IconPixmap").Value())
	item.click(quick)

	if got := lastCall(t, callLog, 20*time.Second); got.Method != "SetAppLimit" || got.Exe != "/usr/lib/firefox/firefox" || got.Limit.Down != 1_000_000 || got.Limit.Up != 0 {
		t.Fatalf("backend received %+v, want SetAppLimit firefox down 1000000", got)
	}

	// limits active: the icon changes and the app shows as limited
	item.awaitIconChange(iconBefore, 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, _ := item.layout().find("Firefox")
		if strings.Contains(f.label(), "(limited)") {
			if c, _ := f.find("1 MB/s"); c.Props["toggle-state"].Value() != int32(1) {
				t.Errorf("1 MB/s not checked: %v", c.Props)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tray still shows Firefox unlimited: %q", f.label())
		}
		time.Sleep(200 * time.Millisecond)
	}

	item.quit(g, "Quit")
}
