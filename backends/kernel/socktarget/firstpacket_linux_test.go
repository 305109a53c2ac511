//go:build linux

package socktarget_test

import (
	"sync"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestRuleBitesFromFirstPacket: a rule set before a program starts limits
// it from its first packet, with real clients, on both throttler pairs:
// every 1-s window from the first is within the limit + 15 %, and a 10 MB
// download under 2 MB/s takes at least 4.5 s (issue #12).
func TestRuleBitesFromFirstPacket(t *testing.T) {
	requireTagger(t)
	testenv.RequireTool(t, "curl", "wget", "iperf3")
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			bed := testenv.NewBed(t)
			m, _ := newManager(t, bed, p)
			bed.StartServer(bed.Peer, "http", "[::]:8080", false)
			startIperfServer(t, bed)
			const limit = 2_000_000
			counter := testenv.NewTCPCounter(t, bed.Local)
			var wg sync.WaitGroup
			for _, client := range []string{"curl", "wget"} {
				appRule(t, m, "/usr/bin/"+client, backends.Limits{Down: backends.Limit{Rate: limit}})
				wg.Add(1)
				go func() { // separate apps, separate buckets: both at once
					defer wg.Done()
					s, took, err := download(bed, counter, client, 10_000_000)
					if err != nil {
						t.Error(err)
						return
					}
					checkDownload(t, p.name+" "+client, s, took, limit)
				}()
			}
			wg.Wait()
			// One fresh rule per run: a new program under a rule set
			// before it starts (an app's bucket that other processes of
			// the app keep busy saves up to its burst, see throttle.c).
			const ilimit = 1_000_000
			for _, c := range []struct {
				name string
				args []string
			}{
				{"tcp upload", nil},
				{"tcp download", []string{"-R"}},
				{"udp upload", []string{"-u", "-b", "40M"}},
				{"udp download", []string{"-u", "-b", "40M", "-R"}},
			} {
				id := appRule(t, m, "/usr/bin/iperf3", backends.Limits{
					Down: backends.Limit{Rate: ilimit}, Up: backends.Limit{Rate: ilimit}})
				rates := iperf(t, bed, 2, c.args...)
				t.Logf("%s iperf3 %s: per-second receiver rates %v B/s (limit %s)", p.name, c.name, ints(rates), mb(ilimit))
				checkWindows(t, "iperf3 "+c.name, rates, ilimit)
				if len(rates) == 0 || rates[len(rates)-1] < 0.5*ilimit {
					t.Errorf("iperf3 %s: rates %v: the transfer stalled", c.name, rates)
				}
				if err := m.Remove(id); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Tolerance of every 1-s window from the first, in every case: the limit
// + 15 % (issue #12). A tc download's connections get a receive window
// clamped to the limit (socktarget.ClampReceive) and a tc upload's a send
// buffer (socktarget.ClampSend), so the shaper's queue never drops (the
// upload ran 0.88 then 1.19 × once in 9 runs without it: TCP filled the
// queue in slow start and the receiver got the held tail at once). An
// ebpf_cgroup download is policed: its connections get a small window on a
// near path (RwndTimePolicer) and its bucket passes at most 1.08 × the
// limit in any second (ebpf.IngressSecondCap), so tokens saved while the
// sender sat in a retransmission timeout cannot push a later second over
// (12 runs here: every window 0.86–1.10 ×, sliding 1-s windows ≤ 1.085 ×;
// before both, later seconds up to 1.35 ×). The ebpf upload is paced.
const tol = 1.15

// checkDownload checks a 10 MB download under limit: at least 4.5 s, and
// its aligned and sliding 1-s windows.
func checkDownload(t *testing.T, what string, s []testenv.Sample, took time.Duration, limit float64) {
	ws := windows(s)
	t.Logf("%s: 10 MB in %.2f s, 1-s windows %v B/s, worst sliding 1-s window %s (limit %s)",
		what, took.Seconds(), ints(ws), mb(worstWindow(s, time.Second)), mb(limit))
	if took < 4500*time.Millisecond {
		t.Errorf("%s: 10 MB under %s took %.2f s, want ≥ 4.5 s", what, mb(limit), took.Seconds())
	}
	checkWindows(t, what, ws, limit)
	if w := worstWindow(s, time.Second); w > tol*limit {
		t.Errorf("%s: a sliding 1-s window ran at %s, over the limit %s × %.2f", what, mb(w), mb(limit), tol)
	}
	if t.Failed() {
		t.Logf("%s: the readings (s, B): %v", what, s)
	}
}

// checkWindows checks per-second rates against the tolerance.
func checkWindows(t *testing.T, what string, rates []float64, limit float64) {
	for i, r := range rates {
		if r > tol*limit {
			t.Errorf("%s: second %d ran at %s, over the limit %s × %.2f", what, i+1, mb(r), mb(limit), tol)
		}
	}
}
