//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// activationBus is a session-type dbus-daemon on a private socket that
// starts the helper on demand, as the system bus does with the packaged
// activation file; the helper's output lands in log.
type activationBus struct {
	addr string
	log  *testenv.Buffer
}

// startActivationBus starts a bus that activates helperBin with args
// (after --bus ADDRESS).
func startActivationBus(t *testing.T, helperBin string, args ...string) *activationBus {
	t.Helper()
	testenv.RequireTool(t, "dbus-daemon")
	dir := bustest.PublicDir(t)
	sock := filepath.Join(dir, "bus")
	addr := "unix:path=" + sock
	services := filepath.Join(dir, "services")
	if err := os.Mkdir(services, 0o755); err != nil {
		t.Fatal(err)
	}
	service := fmt.Sprintf("[D-BUS Service]\nName=%s\nExec=%s --bus %s %s\n", api.BusName, helperBin, addr, strings.Join(args, " "))
	if err := os.WriteFile(filepath.Join(services, api.BusName+".service"), []byte(service), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>%s</listen><auth>EXTERNAL</auth><servicedir>%s</servicedir>
<policy context="default"><allow user="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`, addr, services)
	confPath := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &activationBus{addr: addr, log: &testenv.Buffer{}}
	cmd := exec.Command("dbus-daemon", "--config-file="+confPath, "--nofork", "--nopidfile", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = b.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		// the activated helper is the bus's child: stop it first
		if c, err := dbus.Connect(addr); err == nil {
			var pid uint32
			if c.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, api.BusName).Store(&pid) == nil && pid > 0 {
				syscall.Kill(int(pid), syscall.SIGTERM)
				for i := 0; i < 100 && syscall.Kill(int(pid), 0) == nil; i++ {
					time.Sleep(100 * time.Millisecond)
				}
			}
			c.Close()
		}
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("bus and helper output:\n%s", b.log.String())
		}
	})
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("dbus-daemon did not print its address: %v (%s)", err, b.log.String())
	}
	go io.Copy(b.log, out)
	return b
}

// helperEvents reports the helper's comings (true) and goings (false) on
// the bus at addr.
func helperEvents(t *testing.T, addr string) <-chan bool {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, api.BusName)); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan *dbus.Signal, 16)
	conn.Signal(sigs)
	ev := make(chan bool, 16)
	go func() {
		for s := range sigs {
			if len(s.Body) == 3 {
				owner, _ := s.Body[2].(string)
				ev <- owner != ""
			}
		}
	}()
	return ev
}

// expectHelper waits up to d for the helper to come (up) or go; it fails
// the test if that does not happen, and returns when it did.
func expectHelper(t *testing.T, ev <-chan bool, up bool, d time.Duration, what string) time.Time {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case got := <-ev:
			if got == up {
				return time.Now()
			}
		case <-timeout:
			t.Fatalf("%s: the helper did not %s within %v", what, map[bool]string{true: "start", false: "exit"}[up], d)
		}
	}
}

// expectNoHelperEvent fails if the helper comes or goes within d.
func expectNoHelperEvent(t *testing.T, ev <-chan bool, d time.Duration, what string) {
	t.Helper()
	select {
	case up := <-ev:
		t.Fatalf("%s: the helper %s", what, map[bool]string{true: "was started", false: "exited"}[up])
	case <-time.After(d):
	}
}

// TestHiddenTrayLetsHelperIdleExit runs the real GUI hidden in a tray
// (under Xvfb, with a StatusNotifierWatcher) against the real helper (fake
// backends), which the bus starts on demand and which exits after 3 idle
// seconds: at login nothing starts the helper; opening the tray menu does,
// and once the menu has been left alone the helper exits although the tray
// keeps running, and nothing starts it again; the window shown keeps it
// running.
func TestHiddenTrayLetsHelperIdleExit(t *testing.T) {
	testenv.RequireRoot(t) // the bus starts the helper as its own user
	display := testenv.StartXvfb(t)
	helperBin := bustest.BuildBinary(t, "./cmd/chadthrottle-helper", "fakebackends")
	const idle = 3 * time.Second
	bus := startActivationBus(t, helperBin, "--idle-exit", idle.String(), "--monitor", "fake", "--upload", "fake_upload",
		"--download", "fake_download", "--state-dir", t.TempDir(), "--run-dir", t.TempDir(), "--tag", testenv.UniqueName("i"))
	ev := helperEvents(t, bus.addr)
	host := startTrayHostOn(t, bus.addr)
	g := startGUI(t, []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + bus.addr}, "--bus", bus.addr, "--hidden")
	item := host.waitItem(t, g)

	// at login, hidden in the tray: the helper does not run, and nothing
	// starts it
	expectNoHelperEvent(t, ev, 6*time.Second, "hidden at start")

	// the tray menu opens: it fills, which starts the helper
	opened := time.Now()
	if call := item.menu.Call("com.canonical.dbusmenu.Event", 0, int32(0), "opened", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		t.Fatalf("open the tray menu: %v", call.Err)
	}
	started := expectHelper(t, ev, true, 30*time.Second, "tray menu opened")
	t.Logf("helper started %v after the tray menu opened", started.Sub(opened).Round(time.Millisecond))
	deadline := time.Now().Add(20 * time.Second)
	for {
		labels := item.waitFor("Open ChadThrottle", 20*time.Second).labels()
		if !strings.Contains(strings.Join(labels, "|"), "Connecting") {
			t.Logf("tray menu: %q", labels)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tray menu still connecting: %q", labels)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// left alone, the helper exits when idle while the tray runs on
	exited := expectHelper(t, ev, false, 60*time.Second, "tray menu left alone")
	t.Logf("helper exited %v after the tray menu opened (polls for 15 s after an open, then %v idle)",
		exited.Sub(opened).Round(time.Millisecond), idle)
	// The helper's output reaches the log through the bus's stderr pipe,
	// which may lag behind the name's release on the bus.
	for wait := time.Now().Add(5 * time.Second); !strings.Contains(bus.log.String(), "exiting: idle"); {
		if time.Now().After(wait) {
			t.Errorf("the helper did not say it exits idle:\n%s", bus.log.String())
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectNoHelperEvent(t, ev, 3*idle, "after the idle exit, hidden in the tray")
	select {
	case <-g.exited:
		t.Fatal("the GUI exited")
	default:
	}

	// the window shown polls: the helper starts and stays past its idle
	// time
	open, ok := item.layout().find("Open ChadThrottle")
	if !ok {
		t.Fatal("no Open ChadThrottle item")
	}
	item.click(open)
	expectHelper(t, ev, true, 30*time.Second, "window shown")
	expectNoHelperEvent(t, ev, 3*idle, "window shown")
}

// TestTrayErrorNotifies: a quick limit chosen in the tray of the hidden
// real GUI fails in the real helper (its state directory became a file,
// so the rule cannot be saved); the error arrives as a desktop
// notification on the session bus, and the window stays hidden.
func TestTrayErrorNotifies(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "xdotool")
	display := testenv.StartXvfb(t)
	helperBin := bustest.BuildBinary(t, "./cmd/chadthrottle-helper", "fakebackends")
	state := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	bus := startActivationBus(t, helperBin, "--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download",
		"--state-dir", state, "--run-dir", t.TempDir(), "--tag", testenv.UniqueName("n"))
	host := startTrayHostOn(t, bus.addr)
	notes := startNotificationServer(t, bus.addr, "body")
	g := startGUI(t, []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + bus.addr}, "--bus", bus.addr, "--hidden")
	item := host.waitItem(t, g)
	if call := item.menu.Call("com.canonical.dbusmenu.Event", 0, int32(0), "opened", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		t.Fatalf("open the tray menu: %v", call.Err)
	}
	var app, quick menuNode
	deadline := time.Now().Add(30 * time.Second)
	for app.label() == "" {
		for _, c := range item.waitFor("Open ChadThrottle", 30*time.Second).Children {
			if q, ok := c.find("1 MB/s"); ok {
				app, quick = c, q
				break
			}
		}
		if app.label() == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no app with quick limits in the tray menu: %q", item.layout().labels())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	name := strings.Fields(app.label())[0]
	t.Logf("quick limit 1 MB/s for %q", app.label())

	// the helper cannot save rules any more
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	item.click(quick)
	deadline = time.Now().Add(30 * time.Second)
	for len(notes.received()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no notification after a failing quick limit; helper:\n%s", bus.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	n := notes.received()[0]
	t.Logf("notification: %q / %q (app %q, icon %q)", n.summary, n.body, n.app, n.icon)
	if n.summary != "Could not limit "+name || n.body == "" || n.app != "ChadThrottle" {
		t.Errorf("notification %+v", n)
	}
	time.Sleep(time.Second)
	if w := visibleWindows(t, display); len(w) != 0 {
		t.Errorf("the window opened for a tray error that was notified: %v", w)
	}
}
