package gui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// menuClient reads a menuServer over a real dbus-daemon, as a tray host.
type menuClient struct {
	t       *testing.T
	obj     dbus.BusObject
	updates chan *dbus.Signal
}

func startMenuServer(t *testing.T, opened func()) (*menuServer, *menuClient) {
	t.Helper()
	testenv.RequireTool(t, "dbus-daemon")
	bus := bustest.StartSessionBus(t)
	server, host := bus.Conn(t), bus.Conn(t)
	s := newMenuServer(opened)
	if err := s.export(server, "/StatusNotifierMenu"); err != nil {
		t.Fatal(err)
	}
	c := &menuClient{t: t, obj: host.Object(server.Names()[0], "/StatusNotifierMenu"), updates: make(chan *dbus.Signal, 64)}
	if err := host.AddMatchSignal(dbus.WithMatchInterface(dbusmenuIface), dbus.WithMatchMember("LayoutUpdated")); err != nil {
		t.Fatal(err)
	}
	host.Signal(c.updates)
	return s, c
}

// layout is GetLayout(0, -1) as "id label{children}" lines, and the revision.
func (c *menuClient) layout() (uint32, string) {
	c.t.Helper()
	var rev uint32
	var l menuLayout
	if err := c.obj.Call(dbusmenuIface+".GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &l); err != nil {
		c.t.Fatalf("GetLayout: %v", err)
	}
	var b strings.Builder
	var walk func(l menuLayout, indent string)
	walk = func(l menuLayout, indent string) {
		label, _ := l.Props["label"].Value().(string)
		kind, _ := l.Props["type"].Value().(string)
		sub, _ := l.Props["children-display"].Value().(string)
		fmt.Fprintf(&b, "%s%d %s%s %s\n", indent, l.ID, label, kind, sub)
		for _, v := range l.Children {
			var child menuLayout
			if err := dbus.Store([]any{v.Value()}, &child); err != nil {
				c.t.Fatalf("child layout %v: %v", v, err)
			}
			walk(child, indent+"  ")
		}
	}
	walk(l, "")
	return rev, b.String()
}

// updated waits for a LayoutUpdated signal and returns its revision.
func (c *menuClient) updated() uint32 {
	c.t.Helper()
	select {
	case sig := <-c.updates:
		return sig.Body[0].(uint32)
	case <-time.After(5 * time.Second):
		c.t.Fatal("no LayoutUpdated within 5 s")
		return 0
	}
}

func (c *menuClient) noUpdate() {
	c.t.Helper()
	select {
	case sig := <-c.updates:
		c.t.Fatalf("LayoutUpdated %v for a menu that did not change", sig.Body)
	case <-time.After(300 * time.Millisecond):
	}
}

func testTrayMenu(app string, rate string, clicked chan string) *fyne.Menu {
	quick := fyne.NewMenu("", fyne.NewMenuItem("1 MB/s", func() { clicked <- app + " 1 MB/s" }),
		fyne.NewMenuItem("Unlimited", func() { clicked <- app + " unlimited" }))
	appItem := fyne.NewMenuItem(app+" "+rate, nil)
	appItem.ChildMenu = quick
	pause := fyne.NewMenuItem("Pause all limits", func() { clicked <- "pause" })
	if rate == "paused" {
		pause = fyne.NewMenuItem("Resume limits", func() { clicked <- "resume" })
	}
	open := fyne.NewMenuItem("Open ChadThrottle", func() { clicked <- "open" })
	open.Disabled = rate == "disabled"
	return fyne.NewMenu("ChadThrottle", open, fyne.NewMenuItemSeparator(), appItem, pause)
}

func (c *menuClient) click(id int32) error {
	return c.obj.Call(dbusmenuIface+".Event", 0, id, "clicked", dbus.MakeVariant(""), uint32(0)).Err
}

// TestMenuServer serves menus to a host over a real dbus-daemon: each
// menu whole (children and the submenu mark in the same reply), a signal
// only when what a host sees changed, ids kept for a submenu whose label
// changed (and its children) and for a leaf whose label stays, a new id
// for a leaf whose label changed; clicks run the current menu's action
// and a click on a replaced item is refused; AboutToShow and "opened" say
// someone looks.
func TestMenuServer(t *testing.T) {
	opened := make(chan struct{}, 8)
	s, c := startMenuServer(t, func() { opened <- struct{}{} })
	clicked := make(chan string, 8)

	s.set(testTrayMenu("Firefox", "1 kB/s", clicked))
	rev1 := c.updated()
	_, first := c.layout()
	want := "0  submenu\n" +
		"  1 Open ChadThrottle \n" +
		"  2 separator \n" +
		"  3 Firefox 1 kB/s submenu\n" +
		"    4 1 MB/s \n" +
		"    5 Unlimited \n" +
		"  6 Pause all limits \n"
	if first != want {
		t.Fatalf("layout\n%s\nwant\n%s", first, want)
	}

	s.set(testTrayMenu("Firefox", "1 kB/s", clicked)) // the same menu, new actions
	c.noUpdate()

	s.set(testTrayMenu("Steam", "2 kB/s", clicked)) // another app at the same place
	if rev2 := c.updated(); rev2 <= rev1 {
		t.Errorf("revision %d after %d", rev2, rev1)
	}
	if _, l := c.layout(); l != strings.Replace(want, "Firefox 1 kB/s", "Steam 2 kB/s", 1) {
		t.Fatalf("after the app changed, layout\n%s", l)
	}
	if err := c.click(4); err != nil {
		t.Fatal(err)
	}
	if got := <-clicked; got != "Steam 1 MB/s" {
		t.Errorf("clicked %q, want the current menu's action", got)
	}

	s.set(testTrayMenu("Steam", "paused", clicked))
	c.updated()
	if _, l := c.layout(); !strings.Contains(l, "  7 Resume limits \n") {
		t.Fatalf("a leaf whose label changed kept its id:\n%s", l)
	}
	if err := c.click(6); err == nil {
		t.Error("a click on a replaced item (6) was accepted")
	}
	var props []itemProps
	if err := c.obj.Call(dbusmenuIface+".GetGroupProperties", 0, []int32{7, 6}, []string{"label"}).Store(&props); err != nil {
		t.Fatal(err)
	}
	if len(props) != 1 || props[0].ID != 7 || props[0].Props["label"].Value() != "Resume limits" || len(props[0].Props) != 1 {
		t.Errorf("GetGroupProperties(7, 6; label) = %+v", props)
	}

	s.set(testTrayMenu("Steam", "disabled", clicked))
	c.updated()
	var enabled dbus.Variant
	if err := c.obj.Call(dbusmenuIface+".GetProperty", 0, int32(1), "enabled").Store(&enabled); err != nil {
		t.Fatal(err)
	}
	if enabled.Value() != false {
		t.Errorf("disabled item's enabled = %v", enabled)
	}

	var need bool
	if err := c.obj.Call(dbusmenuIface+".AboutToShow", 0, int32(0)).Store(&need); err != nil || need {
		t.Errorf("AboutToShow = %v, %v", need, err)
	}
	if err := c.obj.Call(dbusmenuIface+".Event", 0, int32(0), "opened", dbus.MakeVariant(""), uint32(0)).Err; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		select {
		case <-opened:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of 2 opens heard", i)
		}
	}
	var version uint32
	if err := c.obj.Call("org.freedesktop.DBus.Properties.Get", 0, dbusmenuIface, "Version").Store(&version); err != nil || version != 3 {
		t.Errorf("Version = %d, %v", version, err)
	}
}

// TestMenuServerParentFirst: a host's request for a new submenu's
// children is answered only after its request for the submenu, as
// libdbusmenu needs (it files a child into its parent's menu when the
// child's answer comes).
func TestMenuServerParentFirst(t *testing.T) {
	s, c := startMenuServer(t, nil)
	s.set(testTrayMenu("Firefox", "1 kB/s", make(chan string, 1)))
	children := c.obj.Go(dbusmenuIface+".GetGroupProperties", 0, make(chan *dbus.Call, 1), []int32{4, 5}, []string{})
	select {
	case <-children.Done:
		t.Fatalf("the children's properties were answered before their parent's: %v", children.Err)
	case <-time.After(100 * time.Millisecond):
	}
	var props []itemProps
	if err := c.obj.Call(dbusmenuIface+".GetGroupProperties", 0, []int32{1, 2, 3, 6}, []string{}).Store(&props); err != nil || len(props) != 4 {
		t.Fatalf("parent level: %v, %v", props, err)
	}
	parentAt := time.Now()
	select {
	case <-children.Done:
		if children.Err != nil {
			t.Fatal(children.Err)
		}
		t.Logf("children answered %v after the parent", time.Since(parentAt))
	case <-time.After(5 * time.Second):
		t.Fatal("the children's properties were not answered after the parent's")
	}
	// Once the parent was answered, the children's are not held back.
	start := time.Now()
	if err := c.obj.Call(dbusmenuIface+".GetGroupProperties", 0, []int32{4, 5}, []string{}).Store(&props); err != nil || len(props) != 2 {
		t.Fatalf("children again: %v, %v", props, err)
	}
	if d := time.Since(start); d > parentWait {
		t.Errorf("children of an answered submenu took %v", d)
	}
}

// TestMenuServerWhole reads the layout while menus are set as fast as they
// can be (at most a million): every reply is a whole menu (each submenu mark with its
// children), which fyne.io/systray's export could not promise.
func TestMenuServerWhole(t *testing.T) {
	s, c := startMenuServer(t, nil)
	clicked := make(chan string, 1)
	s.set(testTrayMenu("App", "0 kB/s", clicked))
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		i := 0
		for ; i < 1_000_000; i++ {
			select {
			case <-stop:
				done <- i
				return
			default:
			}
			s.set(testTrayMenu(fmt.Sprintf("App%d", i%7), fmt.Sprintf("%d kB/s", i), clicked))
		}
		<-stop
		done <- i
	}()
	const reads = 60
	for r := 0; r < reads; r++ {
		_, l := c.layout()
		lines := strings.Split(strings.TrimSpace(l), "\n")
		if len(lines) != 7 || !strings.HasSuffix(lines[3], "submenu") || !strings.Contains(lines[4], "1 MB/s") {
			close(stop)
			<-done
			t.Fatalf("read %d: a menu not whole:\n%s", r, l)
		}
	}
	close(stop)
	sets := <-done
	t.Logf("%d whole layouts read while %d menus were set", reads, sets)
}
