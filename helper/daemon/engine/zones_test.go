package engine

import (
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestZonesPerDirection: an app's download limit and its upload limit
// each reach their throttler with their own traffic type, for a rule and
// for a process limit; a later limit with one zone covers both again; the
// app's snapshot says which zone each direction covers.
func TestZonesPerDirection(t *testing.T) {
	b := newBench(t, firefoxProcs)
	l := api.Limit{Down: 1_000_000, Up: 200_000, Traffic: "internet/all"}
	if err := b.e.SetAppLimit(admin, firefox, 1000, l); err != nil {
		t.Fatal(err)
	}
	check := func(what, id string, down, up backends.TrafficType) {
		t.Helper()
		dl, _ := b.down.Limit(id)
		ul, _ := b.up.Limit(id)
		if dl.Traffic != down || ul.Traffic != up || dl.Rate == 0 || ul.Rate == 0 {
			t.Errorf("%s: download %+v upload %+v, want %s and %s", what, dl, ul, down, up)
		}
	}
	check("rule internet/all", appA, backends.TrafficInternet, backends.TrafficAll)
	if a, _ := b.app("1000:" + firefox); a.Limit.DownZone() != "internet" || a.Limit.UpZone() != "all" {
		t.Errorf("snapshot limit %+v", a.Limit)
	}
	if r := b.e.Rules(); len(r) != 1 || r[0].Limit.DownTraffic != "internet" || r[0].Limit.UpTraffic != "all" || r[0].Limit.Traffic != "" {
		t.Errorf("rules %+v", r)
	}
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Down: 1, Up: 1, DownTraffic: "all", UpTraffic: "local"}); err != nil {
		t.Fatal(err)
	}
	check("rule all/local", appA, backends.TrafficAll, backends.TrafficLocal)
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Down: 1, Up: 1, Traffic: "local"}); err != nil {
		t.Fatal(err)
	}
	check("rule local", appA, backends.TrafficLocal, backends.TrafficLocal)
	if err := b.e.SetProcessLimit(asUID(1000), 101, 0, api.Limit{Down: 5, Up: 5, Traffic: "local/internet"}); err != nil {
		t.Fatal(err)
	}
	check("process local/internet", pidTargetID(101, 1010), backends.TrafficLocal, backends.TrafficInternet)
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Down: 1, Traffic: "internet/lan"}); err == nil {
		t.Error("a bad upload zone was accepted")
	}
}
