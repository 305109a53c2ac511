//go:build linux && bench

package socktarget_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBenchReceiveClamp prints, for an iperf3 download under a rule set
// before it starts, at 1, 10 and 100 MB/s, with and without the receive
// window clamp (socktarget.ClampReceive): goodput ÷ limit over the seconds
// after the first, the worst 1-s window ÷ limit and the sender's
// retransmissions.
func TestBenchReceiveClamp(t *testing.T) {
	requireTagger(t)
	testenv.RequireTool(t, "iperf3", "nstat")
	saved := socktarget.RwndTime
	t.Cleanup(func() { socktarget.RwndTime = saved })
	fmt.Printf("\niperf3 download, 4 s, under a rule set before it starts (× limit; clamp: window = %v at the limit, floor %d B)\n", saved, socktarget.RwndFloor)
	fmt.Printf("%-5s %-6s %10s %9s %9s %8s\n", "pair", "clamp", "limit", "goodput", "worst 1s", "retrans")
	for _, p := range pairs {
		bed := testenv.NewBed(t)
		m, _ := newManager(t, bed, p)
		startIperfServer(t, bed)
		for _, limit := range []float64{1e6, 10e6, 100e6} {
			for _, rw := range []time.Duration{saved, 0} {
				socktarget.RwndTime = rw
				clampRun(t, bed, m, p.name, limit, rw != 0)
			}
		}
	}
}

func clampRun(t *testing.T, bed *testenv.Bed, m *backends.Manager, pair string, limit float64, clamp bool) {
	id := appRule(t, m, "/usr/bin/iperf3", backends.Limits{Down: backends.Limit{Rate: backends.Rate(limit)}})
	defer m.Remove(id)
	retrans := func() float64 {
		out, _ := bed.Command(bed.Peer, "nstat", "-a", "-z", "-j").Output()
		var doc map[string]map[string]float64
		json.Unmarshal(out, &doc)
		return doc["kernel"]["TcpRetransSegs"]
	}
	before := retrans()
	rates := iperf(t, bed, 4, "-R")
	after := retrans()
	if len(rates) < 2 {
		t.Fatalf("iperf3: %v", rates)
	}
	fmt.Printf("%-5s %-6v %7.0f MB/s %9.3f %9.2f %8.0f\n", pair, clamp, limit/1e6,
		mean(rates[1:])/limit, slices.Max(rates)/limit, after-before)
}
