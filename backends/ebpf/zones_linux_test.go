//go:build linux && !no_ebpf

package ebpf

import (
	"sync"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestZonesPerDirection (issue #16): one app whose download limit covers
// internet traffic only and whose upload limit covers all traffic: its
// download from the bed's local peer runs unthrottled while its upload to
// the same peer is held to the limit; the download limit moved to local
// traffic holds the download too.
func TestZonesPerDirection(t *testing.T) {
	requireEBPF(t)
	d := newDownloadBed(t)
	u := &uploadBed{bed: d.bed, sinks: map[string]*sink{}}
	opts := backends.Options{NetNS: testenv.Path(d.bed.Local)}
	down, up := NewDownload(opts), NewUpload(opts)
	initThrottler(t, down)
	initThrottler(t, up)
	rt, rl := d.receiver(t, d.bed.PeerIP)
	st, s := u.sender(t, d.bed.PeerIP)
	tg := place(t, newPlacer(t), backends.Target{ID: "app-zones", Kind: backends.TargetApp,
		PIDs: []int{rt.PIDs[0], st.PIDs[0]}})
	const rate = 1_000_000
	if err := down.SetLimit(tg, backends.Limit{Rate: rate, Traffic: backends.TrafficInternet}); err != nil {
		t.Fatal(err)
	}
	defer down.RemoveLimit(tg.ID)
	if err := up.SetLimit(tg, backends.Limit{Rate: rate, Traffic: backends.TrafficAll}); err != nil {
		t.Fatal(err)
	}
	defer up.RemoveLimit(tg.ID)
	time.Sleep(time.Second) // what was queued before the limit drains
	var gotDown, gotUp float64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); gotDown = rateOf(loadTotal(rl), 2*time.Second) }()
	go func() { defer wg.Done(); gotUp = rateOf(s.Total, 2*time.Second) }()
	wg.Wait()
	t.Logf("local download %.0f B/s (limit %d on internet only), local upload %.0f B/s (limit %d on all)", gotDown, rate, gotUp, rate)
	if gotDown < rate*10 {
		t.Errorf("the internet-only download limit slowed local downloads to %.0f B/s", gotDown)
	}
	if !within(gotUp, rate, 0.2) {
		t.Errorf("upload limit on all traffic: %.0f B/s, want ≈ %d", gotUp, rate)
	}
	// The same download limit on local traffic does hold it.
	if err := down.SetLimit(tg, backends.Limit{Rate: rate, Traffic: backends.TrafficLocal}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // TCP recovers from the drops that cut the full-speed flow down
	gotDown = rateOf(loadTotal(rl), 2*time.Second)
	t.Logf("local download %.0f B/s with the limit on local traffic", gotDown)
	// eBPF downloads are policed and swing (#13): 0.70 and 1.30 × seen.
	if !within(gotDown, rate, 0.45) {
		t.Errorf("download limit on local traffic: %.0f B/s, want ≈ %d", gotDown, rate)
	}
}
