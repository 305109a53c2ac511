//go:build linux

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// xdo runs xdotool on display.
func xdo(t *testing.T, display string, args ...string) string {
	t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("xdotool %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestEndToEnd: the real helper (production backends) in a namespace bed
// on a private system bus, the real GUI binary under Xvfb, driven with
// xdotool like a person: filter for the test flow's app, type a limit into
// its download entry. The rule shows in `chadthrottlectl rules`, the flow
// slows to the limit, and screenshots are saved as test artifacts.
func TestEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "xdotool", "import", "nsenter", "tc")
	bed := testenv.NewBed(t)
	bus := bustest.StartBus(t)
	helperBin := bustest.BuildBinary(t, "./cmd/chadthrottle-helper")
	ctl := bustest.BuildBinary(t, "./cmd/chadthrottlectl")

	// the helper, shaping the bed's local end
	helper := exec.Command("nsenter", "--net="+testenv.Path(bed.Local), "--", helperBin,
		"--bus", bus.Address, "--state-dir", t.TempDir(), "--run-dir", t.TempDir(),
		"--tag", testenv.UniqueName("g"), "--interface", bed.LocalDev)
	hout := &testenv.Buffer{}
	helper.Stdout, helper.Stderr = hout, hout
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	helperDone := make(chan struct{})
	go func() { helper.Wait(); close(helperDone) }()
	t.Cleanup(func() {
		helper.Process.Signal(os.Interrupt)
		select {
		case <-helperDone:
		case <-time.After(30 * time.Second):
			helper.Process.Kill()
			<-helperDone
		}
		if t.Failed() {
			t.Logf("helper output:\n%s", hout.String())
		}
	})
	c, err := client.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if up, _ := c.Running(ctx); up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper did not start:\n%s", hout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("helper: monitor %s, upload %s, download %q (%s)", st.Monitor, st.Upload, st.Download, st.DownloadReason)
	// limit the direction the helper can limit here, download preferred
	down := st.Download != ""
	mode, serverMode := "recv", "source"
	if !down {
		mode, serverMode = "send", "sink"
	}
	bed.StartServer(bed.Peer, serverMode, "[::]:5201", false)
	load := bed.StartClient(bed.Local, mode, bed.PeerIP+":5201", 90*time.Second, 200*time.Millisecond)
	free := load.RateOver(t, time.Second)

	display := testenv.StartXvfb(t)
	host := startTrayHost(t)
	g := startGUI(t, []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + host.addr}, "--bus", bus.Address)
	item := host.waitItem(t, g)
	win := g.waitWindow(t, display, "^ChadThrottle$", 90*time.Second, 300*time.Millisecond)
	// window origin: clicks are relative to it
	var wx, wy int
	for _, l := range strings.Split(xdo(t, display, "getwindowgeometry", "--shell", win), "\n") {
		if v, ok := strings.CutPrefix(l, "X="); ok {
			wx, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(l, "Y="); ok {
			wy, _ = strconv.Atoi(v)
		}
	}
	at := func(x, y int) []string { return []string{"mousemove", strconv.Itoa(wx + x), strconv.Itoa(wy + y)} }

	// the flow's app: the client's executable, as the helper names it
	var app api.App
	deadline = time.Now().Add(30 * time.Second)
	for app.ID == "" {
		snap, err := c.Apps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range snap.Apps {
			for _, p := range a.PIDs {
				if int(p) == load.PID {
					app = a
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper does not list the test flow's process %d", load.PID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("flow app %q (%s), unlimited %.0f B/s", app.Name, app.Exe, free)
	time.Sleep(3 * time.Second) // a few seconds of graph
	screenshot(t, display, "1-window")

	// filter for the app, then type the limit into the first row's entry
	xdo(t, display, append(at(650, 30), "click", "1")...)
	xdo(t, display, "type", "--delay", "30", app.Name)
	time.Sleep(1500 * time.Millisecond)
	const limit = 1_000_000
	entryX := 770 // download limit entry of the first row
	if !down {
		entryX = 991 // upload limit entry
	}
	xdo(t, display, append(at(entryX, 128), "click", "1")...)
	xdo(t, display, "type", "--delay", "30", "1MB/s")
	xdo(t, display, "key", "Return")

	// the rule reaches the helper: chadthrottlectl shows it
	waitRule := func(want uint64, how string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		var last []byte
		for {
			out, err := exec.Command(ctl, "--bus", bus.Address, "rules", "--json").Output()
			if err != nil {
				t.Fatalf("chadthrottlectl rules: %v", err)
			}
			last = out
			var rs struct{ Rules []api.Rule }
			if err := json.Unmarshal(out, &rs); err != nil {
				t.Fatalf("rules --json: %v\n%s", err, out)
			}
			for _, r := range rs.Rules {
				got := r.Limit.Down
				if !down {
					got = r.Limit.Up
				}
				if r.Exe == app.Exe && r.UID == app.UID && got == want {
					text, _ := exec.Command(ctl, "--bus", bus.Address, "rules").Output()
					t.Logf("after %s, chadthrottlectl rules:\n%s", how, text)
					return
				}
			}
			if time.Now().After(deadline) {
				screenshot(t, display, "error-no-rule")
				t.Fatalf("no rule of %d B/s for %s (uid %d) after %s; rules: %s", want, app.Exe, app.UID, how, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitRule(limit, "typing 1MB/s into the row")

	// and it is enforced on the flow
	time.Sleep(2 * time.Second)
	rate := load.RateOver(t, 4*time.Second)
	t.Logf("flow: unlimited %.0f B/s, limited to %d B/s: %.0f B/s (%.3f)", free, limit, rate, rate/limit)
	if rate < 0.7*limit || rate > 1.3*limit {
		t.Errorf("limited flow runs at %.0f B/s, want about %d", rate, limit)
	}
	xdo(t, display, append(at(150, 128), "click", "1")...) // select the row: details and graph
	xdo(t, display, append(at(650, 30), "click", "1")...)  // clear the filter
	xdo(t, display, "key", "ctrl+a", "BackSpace")
	time.Sleep(5 * time.Second)
	screenshot(t, display, "2-limited")

	// the tray: the flow's app is on top; its quick limit reaches the helper
	root := item.waitFor(app.Name+" (limited)", 30*time.Second)
	t.Logf("tray menu: %q", root.labels())
	entry, _ := root.find(app.Name + " (limited)")
	quick, ok := entry.find("5 MB/s")
	if !ok {
		t.Fatalf("no 5 MB/s in %q", entry.labels())
	}
	item.click(quick)
	waitRule(5_000_000, "the tray's 5 MB/s")
	time.Sleep(2 * time.Second)
	rate = load.RateOver(t, 4*time.Second)
	t.Logf("flow after the tray's 5 MB/s: %.0f B/s (%.3f)", rate, rate/5_000_000)
	if rate < 0.7*5_000_000 || rate > 1.3*5_000_000 {
		t.Errorf("flow at %.0f B/s after the tray's 5 MB/s", rate)
	}
	screenshot(t, display, "3-tray-limit")
	blockFromRow(t, display, at, ctl, bus.Address, app, load)
	globalFromHeader(t, display, at, ctl, bus.Address, app)
}
