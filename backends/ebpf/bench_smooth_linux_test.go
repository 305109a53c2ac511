//go:build bench && linux && !no_ebpf

package ebpf

import (
	"fmt"
	"math"
	"os"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/monitor/capture"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/backendtest"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/backends/throttle/tc"
)

// Parts of TestBenchEBPF for issue #13: per-second spread of goodput ÷
// limit, an unlimited neighbour beside a limit, shown ÷ delivered for every
// monitor × throttler pair, attribution over repetitions.

type throttleRow struct {
	dir, name string
	res       []throttleResult
}

func printThrottle(rows []throttleRow) {
	fmt.Printf("\n== Throttle accuracy: goodput ÷ limit (target 0.97–1.03); per-second min–max and CV (target ≤ 3 %% at ≥ 1 MB/s); neighbour ÷ solo (target ≥ 0.95) ==\n")
	fmt.Printf("   machine load: %s", loadavg())
	if rtt := os.Getenv("BENCH_RTT"); rtt != "" {
		fmt.Printf("   bed: a delay line of %s round trip (BENCH_RTT)\n", rtt)
	}
	if cc := os.Getenv("CT_TEST_CC"); cc != "" {
		fmt.Printf("   servers' TCP congestion control: %s (CT_TEST_CC; the default here is bbr)\n", cc)
	}
	fmt.Printf("%-9s %-12s %-9s %8s %15s %7s %10s\n", "direction", "backend", "limit", "goodput", "per-second", "CV", "neighbour")
	for _, r := range rows {
		for i, c := range r.res {
			if c.err != nil {
				fmt.Printf("%-9s %-12s %-9s error: %v\n", r.dir, r.name, benchRates[i].name, c.err)
				continue
			}
			mark := " "
			if c.ratio < 0.97 || c.ratio > 1.03 || (benchRates[i].rate >= 1_000_000 && c.spread > 0.03) || c.neighbour < 0.95 {
				mark = "*"
			}
			fmt.Printf("%-9s %-12s %-9s %8.3f %15s %6.1f%% %10.3f %s\n", r.dir, r.name, benchRates[i].name, c.ratio,
				fmt.Sprintf("%.3f–%.3f", c.lo, c.hi), c.spread*100, c.neighbour, mark)
		}
	}
	fmt.Println("  * = a target missed. Goodput counted by the receiving application, once a second; neighbour: an")
	fmt.Println("  unlimited transfer in the same direction, its 1-s rate beside the limited one ÷ its rate in the next")
	fmt.Println("  second with the limited transfer stopped and its limit removed; median of 6 pairs.")
}

// benchFlow is one transfer in a bench cell: its target and the receiving
// application's byte count.
type benchFlow struct {
	target backends.Target
	total  func() uint64
	kill   func()
}

func startBenchFlow(t *testing.T, bed *testenv.Bed, dir string, dur time.Duration) benchFlow {
	var f benchFlow
	var pid int
	if dir == "upload" {
		s := newSink(t, bed)
		l := bed.StartClient(bed.Local, "send", hostPort(bed.PeerIP, s.Port), dur, time.Second)
		f.total, f.kill, pid = s.Total, func() { l.Cmd.Process.Kill() }, l.PID
	} else {
		l := bed.StartClient(bed.Local, "recv", hostPort(bed.PeerIP, 5203), dur, 50*time.Millisecond)
		f.total, f.kill, pid = loadTotal(l), func() { l.Cmd.Process.Kill() }, l.PID
	}
	f.target = backends.Target{ID: fmt.Sprintf("pid-%d", pid), Kind: backends.TargetProcess, PIDs: []int{pid}}
	return f
}

// benchThrottleCell limits one transfer at benchRates[i], measures it once
// a second over the rate's window, then an unlimited neighbour beside it.
func benchThrottleCell(t *testing.T, bed *testenv.Bed, b backends.Throttler, p *cgroupv2.Leaf, dir string, i int) throttleResult {
	r := benchRates[i]
	pairs := 6
	if os.Getenv("BENCH_PAIRS") == "0" {
		pairs = 0
	}
	f := startBenchFlow(t, bed, dir, 2*time.Second+r.window+time.Duration(3*pairs+6)*time.Second)
	defer f.kill()
	time.Sleep(300 * time.Millisecond)
	cg, err := p.Place(f.target.ID, f.target.PIDs)
	if err != nil {
		return throttleResult{err: err}
	}
	defer p.Release(f.target.ID)
	f.target.Cgroup = cg
	if err := b.SetLimit(f.target, backends.Limit{Rate: r.rate}); err != nil {
		return throttleResult{err: err}
	}
	defer b.RemoveLimit(f.target.ID)
	time.Sleep(2 * time.Second) // the receive queue filled before the limit drains
	var per []float64
	first := f.total()
	t0 := time.Now()
	prev, prevT := first, t0
	for s := 1; s <= int(r.window/time.Second); s++ {
		time.Sleep(time.Until(t0.Add(time.Duration(s) * time.Second)))
		cur, now := f.total(), time.Now()
		per = append(per, float64(cur-prev)/now.Sub(prevT).Seconds()/float64(r.rate))
		prev, prevT = cur, now
	}
	res := throttleResult{ratio: float64(prev-first) / time.Since(t0).Seconds() / float64(r.rate), spread: cv(per)}
	res.lo, res.hi = minMax(per)
	res.neighbour = math.NaN()
	if pairs > 0 {
		res.neighbour = benchNeighbour(t, bed, b, f, dir, r.rate, pairs)
	}
	return res
}

// benchNeighbour runs an unlimited transfer beside the limited one f and
// returns the median over pairs of its 1-s rate beside f ÷ its rate in the
// next second alone (f stopped, its limit removed: nothing of ours is
// installed).
func benchNeighbour(t *testing.T, bed *testenv.Bed, b backends.Throttler, f benchFlow, dir string, rate backends.Rate, pairs int) float64 {
	nb := startBenchFlow(t, bed, dir, time.Duration(3*pairs+3)*time.Second)
	defer nb.kill()
	time.Sleep(time.Second)
	pid := f.target.PIDs[0]
	var ratios []float64
	for k := 0; k < pairs; k++ {
		beside := rateOf(nb.total, time.Second)
		syscall.Kill(pid, syscall.SIGSTOP)
		b.RemoveLimit(f.target.ID)
		time.Sleep(300 * time.Millisecond)
		alone := rateOf(nb.total, time.Second)
		b.SetLimit(f.target, backends.Limit{Rate: rate})
		syscall.Kill(pid, syscall.SIGCONT)
		time.Sleep(500 * time.Millisecond)
		if alone > 0 {
			ratios = append(ratios, beside/alone)
		}
	}
	if len(ratios) == 0 {
		return math.NaN()
	}
	return median(ratios)
}

func minMax(xs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

// benchShown prints shown ÷ delivered for every monitor × throttler pair,
// upload and download at the bench's rates, all at once per throttler.
func benchShown(t *testing.T) {
	monitors := []*backends.Descriptor[backends.MonitorBackend]{Monitor}
	if capture.Monitor != nil {
		monitors = append(monitors, capture.Monitor)
	}
	var rates []backends.Rate
	for _, r := range benchRates {
		rates = append(rates, r.rate)
	}
	type pair struct {
		name string
		up   *backends.Descriptor[backends.UploadThrottleBackend]
		down *backends.Descriptor[backends.DownloadThrottleBackend]
	}
	fmt.Printf("\n== Shown ÷ delivered: what a monitor shows for a limited app ÷ what the receiving side got (target 0.98–1.02) ==\n")
	fmt.Printf("%-8s %-12s %-13s %12s %10s %10s\n", "monitor", "throttler", "flow", "delivered", "rate", "total")
	for _, th := range []pair{{"ebpf_cgroup", Upload, Download}, {"tc", tc.HTBUpload, tc.IFBDownload}} {
		if th.up == nil || th.down == nil {
			continue
		}
		var shown []backendtest.Shown
		t.Run("shown-"+th.name, func(t *testing.T) {
			shown = backendtest.ShownPairs(t, th.up, th.down, monitors, rates, 3*time.Second, 6*time.Second)
		})
		sort.SliceStable(shown, func(i, j int) bool { return shown[i].Monitor < shown[j].Monitor })
		for _, s := range shown {
			mark := " "
			if math.Abs(s.RateRatio-1) > 0.02 || math.Abs(s.TotalRatio-1) > 0.02 {
				mark = "*"
			}
			fmt.Printf("%-8s %-12s %-13s %10.0f/s %10.3f %10.3f %s\n", s.Monitor, th.name, s.Flow, s.Delivered, s.RateRatio, s.TotalRatio, mark)
		}
	}
	fmt.Println("  rate: the monitor's rate over 6 s (after 3 s under the limit) ÷ the receiver's; total: since the start.")
	fmt.Println("  Receiver: tcp_info bytes_received of the peer's sink (upload), the receiving ctload's count (download).")
}

// benchAttribution prints, over 10 repetitions of one 200 MB transfer and
// 40 processes that send 1 MB each and exit, the share of the bytes each
// monitor attributed to the right processes.
func benchAttribution(t *testing.T) {
	const reps = 10
	monitors := []monitorUnderTest{{"ebpf", inProcess(Monitor)}}
	if capture.Monitor != nil {
		monitors = append(monitors, monitorUnderTest{"capture", inProcess(capture.Monitor)})
	}
	fmt.Printf("\n== Attribution: 200 MB + 40 × 1 MB short processes, %d repetitions (target ≥ 99.5 %% every run) ==\n", reps)
	fmt.Printf("%-8s %9s %9s %9s %12s\n", "monitor", "min", "median", "max", "short seen")
	for _, m := range monitors {
		var shares []float64
		minSeen := 40
		t.Run("attribution-"+m.name, func(t *testing.T) {
			bed := testenv.NewBed(t)
			bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
			addr := hostPort(bed.PeerIP, 5201)
			for rep := 0; rep < reps; rep++ {
				share, seen := attributionRun(t, bed, m, addr)
				shares = append(shares, share)
				minSeen = min(minSeen, seen)
			}
		})
		if len(shares) == 0 {
			fmt.Printf("%-8s no run completed\n", m.name)
			continue
		}
		lo, hi := minMax(shares)
		mark := " "
		if lo < 0.995 {
			mark = "*"
		}
		fmt.Printf("%-8s %8.2f%% %8.2f%% %8.2f%% %9d/40 %s\n", m.name, lo*100, median(shares)*100, hi*100, minSeen, mark)
	}
	fmt.Println("  share: bytes attributed to the 41 processes ÷ the payload they wrote, read 2.5 s after the last one.")
}

func attributionRun(t *testing.T, bed *testenv.Bed, m monitorUnderTest, addr string) (share float64, seen int) {
	run := m.start(t, bed)
	defer run.stop()
	pids := map[int]bool{}
	var sent uint64
	pid, last := sendBytes(t, bed, addr, 200_000_000)
	pids[pid], sent = true, last.Total
	var short []int
	for i := 0; i < 40; i++ {
		pid, last := sendBytes(t, bed, addr, 1_000_000)
		pids[pid], sent = true, sent+last.Total
		short = append(short, pid)
	}
	time.Sleep(2500 * time.Millisecond)
	got := run.bytes()
	var attributed uint64
	for pid := range pids {
		attributed += got[pid]
	}
	for _, pid := range short {
		if got[pid] > 0 {
			seen++
		}
	}
	return float64(attributed) / float64(sent), seen
}
