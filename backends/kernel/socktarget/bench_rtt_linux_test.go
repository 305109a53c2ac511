//go:build linux && bench

package socktarget_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// benchRTTs returns the round trips the benchmarks emulate: 0 is the plain
// bed (sub-millisecond), others a delay line (testenv.NewBedRTT).
// CT_BENCH_RTTS="0 5 20" (milliseconds) chooses.
func benchRTTs() []time.Duration {
	spec := os.Getenv("CT_BENCH_RTTS")
	if spec == "" {
		spec = "0 5 20"
	}
	var out []time.Duration
	for _, f := range strings.Fields(spec) {
		if d, err := time.ParseDuration(f + "ms"); err == nil && d >= 0 {
			out = append(out, d)
		}
	}
	return out
}

// TestBenchRTTIperf prints, for iperf3 under a rule set before it starts,
// download and upload at 1 and 10 MB/s, 5 s, on the plain bed and across
// a delay line: the receiver's per-second goodput ÷ limit from the second
// second (min, max, mean, CV) and the sender's retransmissions.
func TestBenchRTTIperf(t *testing.T) {
	requireTagger(t)
	testenv.RequireTool(t, "iperf3", "nstat")
	fmt.Printf("\niperf3 under a rule set before it starts, 5 s: receiver's per-second goodput ÷ limit from the second second\n")
	fmt.Printf("%-6s %-5s %-5s %8s %6s %6s %6s %6s %8s %6s %s\n", "rtt", "pair", "dir", "limit", "min", "max", "mean", "CV %", "retrans", "RTOs", "line drops")
	for _, rtt := range benchRTTs() {
		for _, p := range pairs {
			// A subtest each: its bed and manager go before the next starts.
			t.Run(fmt.Sprintf("%v/%s", rtt, p.name), func(t *testing.T) {
				bed := bedAt(t, rtt)
				m, _ := newManager(t, bed, p)
				startIperfServer(t, bed)
				for _, dir := range []string{"down", "up"} {
					for _, limit := range []float64{1e6, 10e6} {
						iperfRTTRun(t, bed, m, rtt, p.name, dir, limit)
					}
				}
			})
		}
	}
}

func iperfRTTRun(t *testing.T, bed *testenv.Bed, m *backends.Manager, rtt time.Duration, pair, dir string, limit float64) {
	l := backends.Limits{Down: backends.Limit{Rate: backends.Rate(limit)}}
	args, sender := []string{"-R"}, bed.Peer
	if dir == "up" {
		l = backends.Limits{Up: backends.Limit{Rate: backends.Rate(limit)}}
		args, sender = nil, bed.Local
	}
	id := appRule(t, m, "/usr/bin/iperf3", l)
	defer m.Remove(id)
	before, drops := nstat(bed, sender), lineDrops(bed)
	rates := iperf(t, bed, 5, args...)
	after := nstat(bed, sender)
	drops = lineDrops(bed) - drops
	if len(rates) < 3 {
		t.Fatalf("iperf3: %v", rates)
	}
	r := rates[1:]
	fmt.Printf("%-6v %-5s %-5s %5.0f MB/s %6.3f %6.3f %6.3f %6.1f %8.0f %6.0f %d\n", rtt, pair, dir, limit/1e6,
		slices.Min(r)/limit, slices.Max(r)/limit, mean(r)/limit, 100*cv(r),
		after["TcpRetransSegs"]-before["TcpRetransSegs"], after["TcpExtTCPTimeouts"]-before["TcpExtTCPTimeouts"], drops)
	if bed.Line != nil {
		fmt.Printf("       delay line: a packet left at most %v late (since the bed started)\n", bed.Line.MaxLate().Round(time.Microsecond))
	}
	if slices.Max(r) > 1.5*limit || slices.Min(r) < 0.7*limit {
		fmt.Printf("       per-second ÷ limit: %v\n", ratios(rates, limit))
	}
}

// nstat returns the kernel's TCP counters in namespace ns.
func nstat(bed *testenv.Bed, ns string) map[string]float64 {
	out, _ := bed.Command(ns, "nstat", "-a", "-z", "-j").Output()
	var doc map[string]map[string]float64
	json.Unmarshal(out, &doc)
	return doc["kernel"]
}

// cv is the coefficient of variation (standard deviation ÷ mean).
func cv(xs []float64) float64 {
	m := mean(xs)
	var sq float64
	for _, x := range xs {
		sq += (x - m) * (x - m)
	}
	return math.Sqrt(sq/float64(len(xs))) / m
}

// mean is the arithmetic mean of xs.
func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// lineDrops returns the packets the bed's delay line dropped so far (0 on
// the plain bed).
func lineDrops(bed *testenv.Bed) uint64 {
	if bed.Line == nil {
		return 0
	}
	return bed.Line.Dropped()
}
