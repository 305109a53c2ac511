//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/gui"
)

// xConnected reports whether process pid holds a connection to the X
// server of display (":N"): a Unix socket whose peer is one of the
// server's ends on /tmp/.X11-unix/XN (ss lists both ends with their
// inodes).
func xConnected(t *testing.T, pid int, display string) bool {
	t.Helper()
	out, err := exec.Command("ss", "-xpH").Output()
	if err != nil {
		t.Fatalf("ss -xpH: %v", err)
	}
	server := map[string]bool{} // inodes of the X server's ends
	var peers []string          // peer inodes of pid's sockets
	sock := "/.X11-unix/X" + strings.TrimPrefix(display, ":")
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		if strings.HasSuffix(f[4], sock) {
			server[f[5]] = true
		}
		if strings.Contains(line, "pid="+strconv.Itoa(pid)+",") {
			peers = append(peers, f[7])
		}
	}
	for _, p := range peers {
		if server[p] {
			return true
		}
	}
	return false
}

// lastCall waits up to d for a limit call in the synthetic helper's call
// log and returns the last one.
func lastCall(t *testing.T, callLog string, d time.Duration) gui.FakeCall {
	t.Helper()
	var got gui.FakeCall
	deadline := time.Now().Add(d)
	for got.Method == "" {
		if f, err := os.Open(callLog); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				json.Unmarshal(sc.Bytes(), &got)
			}
			f.Close()
		}
		if got.Method == "" {
			if time.Now().After(deadline) {
				t.Fatal("the backend received no call")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return got
}

// awaitIconChange waits until the item's icon differs from before.
func (ti *trayItem) awaitIconChange(before string, d time.Duration) {
	ti.t.Helper()
	deadline := time.Now().Add(d)
	for fmt.Sprint(ti.prop("IconPixmap").Value()) == before {
		if time.Now().After(deadline) {
			ti.t.Fatal("tray icon did not change after a limit was set")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ownerPID returns the pid of the process that owns name on the bus.
func (h *trayHost) ownerPID(t *testing.T, name string) int {
	t.Helper()
	var pid uint32
	if err := h.conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, name).Store(&pid); err != nil {
		t.Fatalf("owner of %s: %v", name, err)
	}
	return int(pid)
}

// openMenu sends the dbusmenu "opened" event for the root, as tray hosts
// do when they show the menu.
func (ti *trayItem) openMenu() {
	ti.t.Helper()
	if call := ti.menu.Call("com.canonical.dbusmenu.Event", 0, int32(0), "opened", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		ti.t.Fatalf("open the tray menu: %v", call.Err)
	}
}

// quit chooses Quit once the menu lists prefix and waits for g to end.
func (ti *trayItem) quit(g *guiProc, prefix string) {
	ti.t.Helper()
	quit, _ := ti.waitFor(prefix, 30*time.Second).find("Quit")
	ti.click(quit)
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		ti.t.Fatal("Quit did not end the program")
	}
}

// TestTrayOnly runs the real GUI binary --hidden (the login autostart)
// under Xvfb with a tray host: it runs the tray without Fyne's driver, so
// the process holds no X connection; its menu lists the apps with the
// same quick limits as the window's tray; a quick limit reaches the
// (synthetic) helper and turns the icon; "Open ChadThrottle" shows the
// window in the same process (it executes itself: same pid, the item
// registers again); closing the window goes back to the tray only (no X
// connection again); Quit ends it.
func TestTrayOnly(t *testing.T) {
	testenv.RequireTool(t, "xdotool", "ss")
	display := testenv.StartXvfb(t)
	host := startTrayHost(t)
	callLog := filepath.Join(t.TempDir(), "calls.jsonl")
	g := startGUI(t, []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + host.addr,
		envSynthetic + "=30", envCallLog + "=" + callLog}, "--hidden")
	pid := g.cmd.Process.Pid
	item := host.waitItem(t, g)

	item.openMenu()
	quick := synthQuickLimit(t, item.waitFor("Firefox", 30*time.Second))
	if xConnected(t, pid, display) {
		t.Fatal("hidden in the tray, the process is connected to the X server")
	}
	iconBefore := fmt.Sprint(item.prop("IconPixmap").Value())
	item.click(quick)
	if got := lastCall(t, callLog, 20*time.Second); got.Method != "SetAppLimit" || got.Exe != "/usr/lib/firefox/firefox" || got.Limit.Down != 1_000_000 {
		t.Fatalf("backend received %+v, want SetAppLimit firefox down 1000000", got)
	}
	item.awaitIconChange(iconBefore, 20*time.Second)
	if w := visibleWindows(t, display); len(w) != 0 {
		t.Fatalf("windows shown while in the tray only: %v", w)
	}

	// Open: the same process shows the window (and connects to X)
	open, _ := item.layout().find("Open ChadThrottle")
	item.click(open)
	var wins []string
	testenv.AwaitDaemon(t, "the window", g.exited, g.out, 30*time.Second, func() bool {
		wins = visibleWindows(t, display)
		return len(wins) == 1
	})
	if got := xdo(t, display, "getwindowpid", wins[0]); got != strconv.Itoa(pid) {
		t.Errorf("the window belongs to pid %s, not the tray's %d", got, pid)
	}
	if !xConnected(t, pid, display) { // the check's positive control
		t.Error("with its window shown the process has no X connection: the check does not see it")
	}
	item = host.waitItem(t, g) // registered again by the new image
	if p := host.ownerPID(t, item.obj.Destination()); p != pid {
		t.Errorf("the tray item now belongs to pid %d, want %d", p, pid)
	}
	time.Sleep(1500 * time.Millisecond) // the first poll of the new image
	screenshot(t, display, "tray-only-opened")

	// close: back to the tray only, without X
	xdo(t, display, "mousemove", "300", "300", "click", "1")
	time.Sleep(300 * time.Millisecond)
	xdo(t, display, "key", "ctrl+w")
	item = host.waitItem(t, g)
	testenv.AwaitDaemon(t, "the X connection closed", g.exited, g.out, 20*time.Second, func() bool {
		return !xConnected(t, pid, display) && len(visibleWindows(t, display)) == 0
	})
	item.openMenu()
	item.quit(g, "Firefox")
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after Quit", code)
	}
}
