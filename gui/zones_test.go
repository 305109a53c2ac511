package gui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// dialogSelects returns the selects of the open dialog, in layout order.
func (fx *fixture) dialogSelects() []*widget.Select {
	fx.t.Helper()
	var out []*widget.Select
	for _, o := range test.LaidOutObjects(fx.ui.win.Canvas().Overlays().Top()) {
		if s, ok := o.(*widget.Select); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestLimitDialogZones: the limit dialog lets each direction pick its
// zone; the call carries both, and the dialog shows them when it opens
// again; the process dialog has them too, with a schedule.
func TestLimitDialogZones(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.ui.showLimitDialog(testApps()[0])
	entries, set := fx.dialogParts("Set limit")
	zones := fx.dialogSelects()
	if len(zones) != 2 || zones[0].Selected != "All traffic" || zones[1].Selected != "All traffic" {
		t.Fatalf("zone selects %v", zones)
	}
	test.Type(entries[0], "1MB/s")
	test.Type(entries[1], "200KB/s")
	zones[0].SetSelected("Internet only")
	test.Tap(set)
	c, ok := fx.waitCall()
	want := api.Limit{Down: 1_000_000, Up: 200_000, DownTraffic: api.TrafficInternet, UpTraffic: api.TrafficAll}
	if !ok || c.Method != "SetAppLimit" || c.Limit != want {
		t.Fatalf("limit call %+v (ok %v), want %+v", c, ok, want)
	}
	fx.poll()
	fx.ui.showLimitDialog(testApps()[0])
	if zones = fx.dialogSelects(); zones[0].Selected != "Internet only" || zones[1].Selected != "All traffic" {
		t.Errorf("reopened dialog shows %q and %q", zones[0].Selected, zones[1].Selected)
	}
	if r := fx.row("Steam"); r.limDn.zone.Text != "internet only" || r.limUp.zone.Text != "" {
		t.Errorf("Steam's row shows zones %q and %q under its sliders", r.limDn.zone.Text, r.limUp.zone.Text)
	}

	fx.fake.SetDetails(api.AppDetails{App: testApps()[1], Processes: []api.Process{{PID: 21, Comm: "firefox"}}})
	fx.ui.apps.list.Select(fx.ui.view.index("1000:/usr/bin/firefox"))
	fx.poll()
	fx.ui.det.procs.Select(widget.TableCellID{Row: 0, Col: 0})
	test.Tap(fx.ui.det.limBtn)
	entries, set = fx.dialogParts("Set limit")
	zones = fx.dialogSelects()
	if len(entries) != 3 || len(zones) != 2 {
		t.Fatalf("process dialog: %d entries, %d selects", len(entries), len(zones))
	}
	test.Type(entries[1], "64")
	zones[1].SetSelected("Local network only")
	test.Type(entries[2], "Sat+Sun 00:00-24:00")
	test.Tap(set)
	c, ok = fx.waitCall()
	want = api.Limit{Up: 64_000, DownTraffic: api.TrafficAll, UpTraffic: api.TrafficLocal, When: "Sat+Sun 00:00-24:00"}
	if !ok || c.Method != "SetProcessLimit" || c.PID != 21 || c.Limit != want {
		t.Fatalf("process limit %+v (ok %v), want %+v", c, ok, want)
	}
}

func TestZoneCaption(t *testing.T) {
	for _, c := range []struct {
		l    api.Limit
		want string
	}{
		{api.Limit{Down: 1, Traffic: "all"}, ""},
		{api.Limit{Down: 1, Traffic: "internet"}, " (internet)"},
		{api.Limit{Down: 1, Up: 1, DownTraffic: "internet", UpTraffic: "all"}, " (down internet, up all)"},
		{api.Limit{Down: 1, DownTraffic: "local", UpTraffic: "all"}, " (local network)"}, // only the download is limited
		{api.Limit{Up: 1, DownTraffic: "local", UpTraffic: "all"}, ""},
	} {
		if got := zoneCaption(c.l); got != c.want {
			t.Errorf("%+v: %q, want %q", c.l, got, c.want)
		}
		if got := limitText(c.l, Units[0]); !strings.HasSuffix(got, c.want) {
			t.Errorf("%+v: process limit cell %q, want it to end %q", c.l, got, c.want)
		}
	}
}
