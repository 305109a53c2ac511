package main

import (
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// globalFromHeader is TestEndToEnd's global limit step: the flow's app
// gets priority high (chadthrottlectl; the row's selector shows it), the
// header's Global button sets a 10 MB/s global download limit in the real
// helper (the window runs as root: manage), and the screenshot shows both.
func globalFromHeader(t *testing.T, display string, at func(x, y int) []string, ctl, bus string, app api.App) {
	t.Helper()
	if out, err := exec.Command(ctl, "--bus", bus, "priority", "--app", app.Exe, "--uid", "0", "high").CombinedOutput(); err != nil {
		t.Fatalf("chadthrottlectl priority: %v\n%s", err, out)
	}
	global := func() api.GlobalLimit {
		out, err := exec.Command(ctl, "--bus", bus, "status", "--json").Output()
		if err != nil {
			t.Fatalf("chadthrottlectl status: %v", err)
		}
		var st struct{ Global api.GlobalLimit }
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		return st.Global
	}
	xdo(t, display, append(at(839, 30), "click", "1")...) // the header's Global button
	time.Sleep(time.Second)
	xdo(t, display, "key", "Tab")
	xdo(t, display, "type", "--delay", "30", "10MB/s")
	xdo(t, display, "key", "Return")
	if !testenv.WaitUntil(10*time.Second, func() bool { return global().Down == 10_000_000 }) {
		screenshot(t, display, "error-no-global")
		t.Fatalf("the header's Global dialog did not set the global limit: %+v", global())
	}
	time.Sleep(2 * time.Second)
	screenshot(t, display, "5-global-priority")
	if out, err := exec.Command(ctl, "--bus", bus, "unlimit", "--global").CombinedOutput(); err != nil {
		t.Errorf("unlimit --global: %v\n%s", err, out)
	}
}
