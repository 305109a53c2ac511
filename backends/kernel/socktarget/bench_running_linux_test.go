//go:build linux && bench

package socktarget_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBenchRunningDownload prints the per-second goodput ÷ limit at the
// receiver of a download limited while it runs (a process limit, as
// `limit --pid` on a browser's transfer), 2 repetitions at 1 and 10 MB/s,
// across a 20-ms delay line (CT_BENCH_RTTS="0 20" for others; 0 is the
// plain bed), from 3 s after the call for 8 s: min, max, mean, CV. The
// sender's congestion control is the namespace's default (bbr here)
// unless CT_TEST_CC names one.
//
// A policer on such a flow keeps the window the connection was offered
// before the limit (TCP does not shrink an offered window: ss showed the
// sender's snd_wnd at 6–9 MB seconds after a 1 MB/s limit, with the
// receive clamp adopted), so until that is used up the sender is held back
// only by drops.
func TestBenchRunningDownload(t *testing.T) {
	requireTagger(t)
	fmt.Printf("\ndownload limited while it runs (process limit), per-second goodput ÷ limit from 3 s after the call, 8 s\n")
	fmt.Printf("%-6s %-5s %8s %4s %6s %6s %6s %6s\n", "rtt", "pair", "limit", "rep", "min", "max", "mean", "CV %")
	rtts := []time.Duration{20 * time.Millisecond}
	if os.Getenv("CT_BENCH_RTTS") != "" {
		rtts = benchRTTs()
	}
	for _, rtt := range rtts {
		for _, p := range pairs {
			t.Run(fmt.Sprintf("%v/%s", rtt, p.name), func(t *testing.T) {
				bed := bedAt(t, rtt)
				m, _ := newManager(t, bed, p)
				bed.StartServer(bed.Peer, "source", "[::]:5201", false)
				for _, limit := range []float64{1e6, 10e6} {
					for rep := range 2 {
						runningDownload(t, bed, m, rtt, p.name, limit, rep)
					}
				}
			})
		}
	}
}

func runningDownload(t *testing.T, bed *testenv.Bed, m *backends.Manager, rtt time.Duration, pair string, limit float64, rep int) {
	load := bed.StartClient(bed.Local, "recv", bed.PeerIP+":5201", 20*time.Second, 200*time.Millisecond)
	defer load.Cmd.Process.Kill()
	stop := make(chan struct{})
	defer close(stop)
	polled := time.Now()
	samples := testenv.NewTCPCounter(t, bed.Local).Poll(false, 100*time.Millisecond, stop, load.PID)
	time.Sleep(1500 * time.Millisecond) // running free
	start := time.Now()
	id := fmt.Sprintf("pid-%d", load.PID)
	if err := m.Apply(backends.Target{ID: id, Kind: backends.TargetProcess, PIDs: []int{load.PID}},
		backends.Limits{Down: backends.Limit{Rate: backends.Rate(limit)}}); err != nil {
		t.Fatalf("limit: %v", err)
	}
	defer m.Remove(id)
	time.Sleep(11*time.Second + 200*time.Millisecond)
	all := samples()
	if len(all) == 0 {
		t.Fatal("no samples")
	}
	callT := start.Sub(polled).Seconds()
	var r []float64
	for s := callT + 3; s+1 <= callT+11; s++ {
		r = append(r, testenv.RateBetween(all, s, s+1))
	}
	fmt.Printf("%-6v %-5s %5.0f MB/s %4d %6.3f %6.3f %6.3f %6.1f", rtt, pair, limit/1e6, rep,
		slices.Min(r)/limit, slices.Max(r)/limit, mean(r)/limit, 100*cv(r))
	if os.Getenv("CT_BENCH_SERIES") != "" { // each second's ratio
		for _, x := range r {
			fmt.Printf(" %.2f", x/limit)
		}
	}
	fmt.Println()
}
