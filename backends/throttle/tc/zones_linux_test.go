//go:build linux

package tc

import (
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestZonesPerDirection (issue #16): one app whose download limit covers
// internet traffic only and whose upload limit covers all traffic: its
// download from the bed's local peer runs unthrottled while its upload to
// the same peer is held to the limit.
func TestZonesPerDirection(t *testing.T) {
	e := newEnv(t)
	down, up := initBackend(t, e, ingress), initBackend(t, e, egress)
	rl := e.client(t, ingress, false, 15*time.Second)
	sl := e.client(t, egress, false, 15*time.Second)
	target := e.place(t, "zones", backends.TargetApp, rl.PID, sl.PID)
	const rate = 1_000_000
	if err := down.SetLimit(target, backends.Limit{Rate: rate, Traffic: backends.TrafficInternet}); err != nil {
		t.Fatal(err)
	}
	if err := up.SetLimit(target, backends.Limit{Rate: rate, Traffic: backends.TrafficAll}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the upload is clamped from full speed
	var gotDown float64
	done := make(chan struct{})
	go func() { defer close(done); gotDown = e.rate(t, ingress, 2*time.Second, rl.PID) }()
	gotUp := e.rate(t, egress, 2*time.Second, sl.PID)
	<-done
	t.Logf("local download %.0f B/s (limit %d on internet only), local upload %.0f B/s (limit %d on all)", gotDown, rate, gotUp, rate)
	if gotDown < 10*rate {
		t.Errorf("the internet-only download limit slowed local downloads to %.0f B/s", gotDown)
	}
	testenv.Settles(t, "upload limit on all traffic", gotUp, func() float64 {
		return e.rate(t, egress, 3*time.Second, sl.PID)
	}, rate, 0.4, 1.25)
}
