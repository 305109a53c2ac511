package gui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestGlobalLimitControl: the header's global limit button opens a dialog
// that sets the machine's limit, the button shows it, Remove lifts it, and
// a bad rate makes no call.
func TestGlobalLimitControl(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.poll()
	btn := fx.ui.hdr.globalBtn
	if btn.Text != "Global: none" {
		t.Fatalf("button before: %q", btn.Text)
	}
	test.Tap(btn)
	entries, set := fx.dialogParts("Set")
	test.Type(entries[0], "10MB/s")
	test.Type(entries[1], "2MB/s")
	test.Tap(set)
	c, ok := fx.waitCall()
	if !ok || c.Method != "SetGlobalLimit" || c.Limit.Down != 10_000_000 || c.Limit.Up != 2_000_000 {
		t.Fatalf("set call: %+v (ok %v)", c, ok)
	}
	if !fx.until(func() bool { return strings.Contains(btn.Text, "↓10") }) {
		t.Errorf("button after set: %q", btn.Text)
	}
	// The helper's value comes back with the status poll.
	fx.ui.needStatus.Store(true)
	fx.poll()
	if !strings.Contains(btn.Text, "10") {
		t.Errorf("button after poll: %q", btn.Text)
	}
	// A bad rate: no call.
	test.Tap(btn)
	entries, set = fx.dialogParts("Set")
	entries[0].SetText("fast")
	test.Tap(set)
	if c, ok := fx.fake.WaitCall(200 * time.Millisecond); ok {
		t.Errorf("a bad rate made a call: %+v", c)
	}
	fx.ui.win.Canvas().Overlays().Top().Hide()
	fx.drain()
	// Remove.
	test.Tap(btn)
	_, remove := fx.dialogParts("Remove")
	test.Tap(remove)
	if c, ok = fx.waitCall(); !ok || c.Method != "RemoveGlobalLimit" {
		t.Fatalf("remove call: %+v (ok %v)", c, ok)
	}
	if !fx.until(func() bool { return btn.Text == "Global: none" }) {
		t.Errorf("button after remove: %q", btn.Text)
	}
	// Refused (no manage): the window says so and keeps the old value.
	fx.fake.SetLimitError(errors.Join(ErrNotAuthorized, errors.New("polkit said no")))
	fx.ui.setGlobal(api.GlobalLimit{Down: 5})
	fx.waitCall()
	fx.drain()
	if btn.Text != "Global: none" {
		t.Errorf("button after a refused set: %q", btn.Text)
	}
}

// TestPrioritySelector: each row's priority selector shows the app's
// priority (normal by default) and sets it; the rule then carries it.
func TestPrioritySelector(t *testing.T) {
	apps := testApps()
	apps[0].Limit = api.Limit{Priority: api.PriorityLow}
	fx := newFixture(t, apps)
	if r := fx.row("Steam"); r.prio.Selected != api.PriorityLow {
		t.Errorf("Steam shows %q, want low", r.prio.Selected)
	}
	r := fx.row("Firefox")
	if r.prio.Selected != api.PriorityNormal || r.prio.Disabled() {
		t.Fatalf("Firefox shows %q (disabled %v), want normal", r.prio.Selected, r.prio.Disabled())
	}
	r.prio.SetSelected(api.PriorityHigh)
	c, ok := fx.waitCall()
	if !ok || c.Method != "SetAppPriority" || c.Exe != "/usr/bin/firefox" || c.Limit.Priority != api.PriorityHigh {
		t.Fatalf("priority call: %+v (ok %v)", c, ok)
	}
	fx.poll()
	if r = fx.row("Firefox"); r.prio.Selected != api.PriorityHigh {
		t.Errorf("after poll Firefox shows %q", r.prio.Selected)
	}
	// Showing a priority on a recycled row fires no call.
	fx.ui.apps.list.Refresh()
	fx.drain()
	if c, ok := fx.fake.WaitCall(200 * time.Millisecond); ok {
		t.Errorf("redrawing made a call: %+v", c)
	}
	r.prio.SetSelected(api.PriorityNormal)
	if c, ok = fx.waitCall(); !ok || c.Limit.Priority != api.PriorityNormal {
		t.Fatalf("back to normal: %+v", c)
	}
	fx.poll()
	if a, _ := fx.ui.view.app("1000:/usr/bin/firefox"); a.Limit.Priority != "" {
		t.Errorf("normal left %q in the limit", a.Limit.Priority)
	}
}

// until runs UI work until cond holds, at most a second.
func (fx *fixture) until(cond func() bool) bool {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		fx.drain()
		if cond() {
			return true
		}
	}
	return false
}
