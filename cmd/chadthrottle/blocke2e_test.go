package main

import (
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// blockFromRow is TestEndToEnd's block step: the row's Block button (the
// app filtered to the first row) blocks the flow's app in the real helper
// (its open download stops), the screenshot shows the row blocked, and a
// second click unblocks it (the download runs again).
func blockFromRow(t *testing.T, display string, at func(x, y int) []string, ctl, bus string, app api.App, load *testenv.Load) {
	t.Helper()
	ruleBlock := func() string {
		out, err := exec.Command(ctl, "--bus", bus, "rules", "--json").Output()
		if err != nil {
			t.Fatalf("chadthrottlectl rules: %v", err)
		}
		var rs struct{ Rules []api.Rule }
		if err := json.Unmarshal(out, &rs); err != nil {
			t.Fatalf("rules --json: %v\n%s", err, out)
		}
		for _, r := range rs.Rules {
			if r.Exe == app.Exe && r.UID == app.UID {
				return r.Limit.Block
			}
		}
		return ""
	}
	xdo(t, display, append(at(650, 30), "click", "1")...) // filter: the app is the first row
	xdo(t, display, "type", "--delay", "30", app.Name)
	time.Sleep(1500 * time.Millisecond)
	xdo(t, display, append(at(1084, 128), "click", "1")...) // the first row's Block button
	if !testenv.WaitUntil(10*time.Second, func() bool { return ruleBlock() == api.TrafficAll }) {
		screenshot(t, display, "error-no-block")
		t.Fatal("the row's Block button did not block the app in the helper")
	}
	time.Sleep(1500 * time.Millisecond)
	if rate := load.RateOver(t, 2*time.Second); rate > 10_000 {
		t.Errorf("blocked app's open download still moves %.0f B/s", rate)
	}
	screenshot(t, display, "4-blocked")
	xdo(t, display, append(at(1084, 128), "click", "1")...) // "Blocked": unblock
	if !testenv.WaitUntil(10*time.Second, func() bool { return ruleBlock() == "" }) {
		t.Fatal("a second click did not unblock the app")
	}
	// The sender's retransmission timer backed off while every packet was
	// dropped (6.4 s after ~5 s blocked), so the flow resumes at its next
	// retry; a new connection would be at once. Failed once at 10 s in a
	// loaded full run.
	start := time.Now()
	if !testenv.WaitUntil(20*time.Second, func() bool { return load.RateOver(t, 500*time.Millisecond) > 1_000_000 }) {
		t.Error("the download does not run again within 20 s of unblock")
	}
	t.Logf("the download ran again %v after unblock", time.Since(start).Round(100*time.Millisecond))
}
