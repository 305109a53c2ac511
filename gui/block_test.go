package gui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The row's block toggle blocks and unblocks the app, the row shows it
// (mark, caption, button), a rate edit keeps the block, and the tray's
// app menu offers Block/Unblock.
func TestBlockToggle(t *testing.T) {
	fx := newFixture(t, testApps())
	r := fx.row("Firefox")
	if r.block.Text != "Block" || r.block.Disabled() {
		t.Fatalf("toggle before: %q disabled=%v", r.block.Text, r.block.Disabled())
	}
	test.Tap(r.block)
	c, ok := fx.waitCall()
	if !ok || c.Method != "SetAppBlock" || c.Exe != "/usr/bin/firefox" || c.Limit.Block != api.TrafficAll {
		t.Fatalf("block call: %+v (ok %v)", c, ok)
	}
	fx.poll()
	r = fx.row("Firefox")
	if r.block.Text != "Blocked" || r.block.Importance != widget.DangerImportance || r.mark.FillColor != colorMark ||
		!strings.Contains(r.sub.Text, "blocked") {
		t.Errorf("blocked row: button %q importance %v, caption %q", r.block.Text, r.block.Importance, r.sub.Text)
	}
	// A rate limit on a blocked app keeps the block.
	fx.ui.showLimitDialog(testApps()[1])
	entries, set := fx.dialogParts("Set limit")
	test.Type(entries[0], "1MB/s")
	test.Tap(set)
	if c, ok = fx.waitCall(); !ok || c.Method != "SetAppLimit" {
		t.Fatalf("limit call: %+v", c)
	}
	fx.poll()
	if r = fx.row("Firefox"); r.block.Text != "Blocked" {
		t.Errorf("a limit lifted the block in the window: %q", r.block.Text)
	}
	// The tray's app menu says Unblock now, and unblocks.
	fx.ui.refreshTray(true)
	fx.drain()
	sub := findItem(t, fx.app.menu, "Firefox").ChildMenu
	it := findItem(t, sub, "Unblock")
	it.Action()
	if c, ok = fx.waitCall(); !ok || c.Method != "RemoveAppBlock" || c.Exe != "/usr/bin/firefox" {
		t.Fatalf("tray unblock: %+v (ok %v)", c, ok)
	}
	fx.poll()
	if r = fx.row("Firefox"); r.block.Text != "Block" || strings.Contains(r.sub.Text, "blocked") {
		t.Errorf("after unblock: button %q caption %q", r.block.Text, r.sub.Text)
	}
}

// The limit dialog's schedule field: a valid schedule goes with the limit,
// a bad one is an error and no call.
func TestScheduleEditor(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.ui.showLimitDialog(testApps()[2])
	entries, set := fx.dialogParts("Set limit")
	test.Type(entries[1], "100KB/s")
	test.Type(entries[2], "Mon-Fri 09:00-17:00,Sat 10:00-12:00")
	test.Tap(set)
	c, ok := fx.waitCall()
	if !ok || c.Method != "SetAppLimit" || c.Limit.Up != 100_000 || c.Limit.When != "Mon-Fri 09:00-17:00,Sat 10:00-12:00" {
		t.Fatalf("scheduled limit: %+v (ok %v)", c, ok)
	}
	fx.poll()
	fx.ui.showLimitDialog(testApps()[2])
	entries, set = fx.dialogParts("Set limit")
	if entries[2].Text != "Mon-Fri 09:00-17:00,Sat 10:00-12:00" {
		t.Errorf("dialog shows schedule %q", entries[2].Text)
	}
	entries[2].SetText("Mon 9-17")
	test.Tap(set)
	fx.drain()
	if n := len(fx.fake.Calls()); n != 1 {
		t.Errorf("a bad schedule made a call: %+v", fx.fake.Calls())
	}
}
