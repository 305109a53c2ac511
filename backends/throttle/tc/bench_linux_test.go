//go:build bench && linux

package tc

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testenv"
)

const iperfPort = "5301"

var benchRates = []backends.Rate{100_000, 1_000_000, 10_000_000, 100_000_000}

// benchCell is one measured limit.
type benchCell struct {
	goodput  float64   // mean payload rate ÷ limit
	perSec   []float64 // per-second payload rates ÷ limit
	neighbor float64   // unlimited neighbour's rate ÷ its solo rate (NaN if not measured)
	note     string
}

func (c benchCell) spread() (lo, hi, cv float64) {
	if len(c.perSec) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	var sum, sq float64
	for _, v := range c.perSec {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		sum += v
	}
	mean := sum / float64(len(c.perSec))
	for _, v := range c.perSec {
		sq += (v - mean) * (v - mean)
	}
	return lo, hi, math.Sqrt(sq/float64(len(c.perSec))) / mean
}

// perSecond samples the pids' payload rate once a second for n seconds
// and also returns the neighbours' mean rate over the same time.
func (e *env) perSecond(t *testing.T, dir direction, n int, pids []int, neighbour []int) (rates []float64, mean, nbMean float64) {
	start := time.Now()
	b0 := e.tcpBytes(t, dir, pids...)
	var n0 uint64
	if len(neighbour) > 0 {
		n0 = e.tcpBytes(t, dir, neighbour...)
	}
	prev, prevT := b0, start
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Second)))
		b := e.tcpBytes(t, dir, pids...)
		now := time.Now()
		rates = append(rates, float64(b-prev)/now.Sub(prevT).Seconds())
		prev, prevT = b, now
	}
	secs := time.Since(start).Seconds()
	mean = float64(prev-b0) / secs
	if len(neighbour) > 0 {
		nbMean = float64(e.tcpBytes(t, dir, neighbour...)-n0) / secs
	}
	return rates, mean, nbMean
}

const (
	warmup  = 2 * time.Second
	measure = 6
)

// TestBenchThrottle measures tc_htb (upload) and ifb_tc (download) on the
// namespace test bed, with trickle beside them in the same run, and prints
// goodput ÷ limit, the per-second spread and the unlimited neighbour's share
// of its solo rate.
func TestBenchThrottle(t *testing.T) {
	e := newEnv(t)
	testenv.RequireTool(t, "trickle", "iperf3")
	srv := e.bed.Command(e.bed.Peer, "iperf3", "-s", "-p", iperfPort)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	time.Sleep(300 * time.Millisecond)

	type row struct {
		dir   string
		rate  backends.Rate
		ours  benchCell
		trick benchCell
	}
	var rows []row
	solo := map[direction]float64{}
	for _, d := range directions() {
		// The neighbour's solo rate: one unlimited transfer, nothing installed.
		l := e.client(t, d.dir, false, 10*time.Second)
		time.Sleep(time.Second)
		_, solo[d.dir], _ = e.perSecond(t, d.dir, 3, []int{l.PID}, nil)
		l.Cmd.Process.Kill()
		l.Wait()

		b := e.newBackend(t, d.dir)
		if err := b.Init(); err != nil {
			t.Fatalf("Init: %v", err)
		}
		for i, rate := range benchRates {
			r := row{dir: d.name, rate: rate}
			r.ours = e.benchOurs(t, b, d.dir, rate, solo[d.dir], i)
			r.trick = e.benchTrickle(t, d.dir, rate)
			rows = append(rows, r)
		}
		if err := b.Cleanup(); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
	}

	fmt.Printf("\nThrottle accuracy on the namespace test bed (veth, %d s per cell after %v warm-up; payload from tcp_info)\n", measure, warmup)
	fmt.Printf("solo unlimited rate: upload %.0f MB/s, download %.0f MB/s\n", solo[egress]/1e6, solo[ingress]/1e6)
	fmt.Printf("%-9s %-9s | %-8s %-22s %-10s | %-8s %-22s\n", "direction", "limit", "goodput", "per-second min–max (cv)", "neighbour", "trickle", "per-second min–max (cv)")
	fmt.Printf("%-9s %-9s | %-8s %-22s %-10s | %-8s %-22s\n", "", "", "÷ limit", "÷ limit", "÷ solo", "÷ limit", "÷ limit")
	for _, r := range rows {
		lo, hi, cv := r.ours.spread()
		tlo, thi, tcv := r.trick.spread()
		fmt.Printf("%-9s %-9s | %-8.3f %-22s %-10.3f | %-8.3f %-22s %s\n", r.dir, human(r.rate),
			r.ours.goodput, fmt.Sprintf("%.3f–%.3f (%.3f)", lo, hi, cv), r.ours.neighbor,
			r.trick.goodput, fmt.Sprintf("%.3f–%.3f (%.3f)", tlo, thi, tcv), r.trick.note)
	}
	fmt.Println()
}

func human(r backends.Rate) string {
	switch {
	case r >= 1_000_000:
		return fmt.Sprintf("%g MB/s", float64(r)/1e6)
	default:
		return fmt.Sprintf("%g kB/s", float64(r)/1e3)
	}
}

// benchOurs limits a fresh transfer (opened before the limit) with b while
// an unlimited neighbour runs beside it.
func (e *env) benchOurs(t *testing.T, b backends.Throttler, dir direction, rate backends.Rate, solo float64, i int) benchCell {
	t.Helper()
	dur := warmup + measure*time.Second + 3*time.Second
	lim := e.client(t, dir, false, dur)
	nb := e.client(t, dir, false, dur)
	defer func() {
		for _, l := range []*testenv.Load{lim, nb} {
			l.Cmd.Process.Kill()
			l.Wait()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	id := "bench-" + strconv.Itoa(i)
	cg, err := e.placer.Place(id, []int{lim.PID})
	if err != nil {
		t.Fatal(err)
	}
	defer e.placer.Release(id)
	target := backends.Target{ID: id, Kind: backends.TargetProcess, PIDs: []int{lim.PID}, Cgroup: cg}
	if err := b.SetLimit(target, backends.Limit{Rate: rate}); err != nil {
		t.Fatalf("SetLimit %d: %v", rate, err)
	}
	defer b.RemoveLimit(id)
	time.Sleep(warmup)
	rates, mean, nbMean := e.perSecond(t, dir, measure, []int{lim.PID}, []int{nb.PID})
	c := benchCell{goodput: mean / float64(rate), neighbor: nbMean / solo}
	for _, r := range rates {
		c.perSec = append(c.perSec, r/float64(rate))
	}
	return c
}

// benchTrickle runs iperf3 under trickle (standalone, LD_PRELOAD) at the same
// rate. trickle counts KB as 1024 bytes and takes whole numbers.
func (e *env) benchTrickle(t *testing.T, dir direction, rate backends.Rate) benchCell {
	t.Helper()
	kb := int(math.Round(float64(rate) / 1024))
	args := []string{"-s"}
	if dir == egress {
		args = append(args, "-u", strconv.Itoa(kb))
	} else {
		args = append(args, "-d", strconv.Itoa(kb))
	}
	secs := int(warmup/time.Second) + measure + 2
	args = append(args, "iperf3", "-c", e.bed.PeerIP, "-p", iperfPort, "-t", strconv.Itoa(secs), "-i", "0")
	if dir == ingress {
		args = append(args, "-R")
	}
	cmd := e.bed.Command(e.bed.Local, "trickle", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// nsenter execs trickle, which execs iperf3 with its library preloaded.
	pid := cmd.Process.Pid
	time.Sleep(warmup)
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		return benchCell{goodput: math.NaN(), note: "iperf3 under trickle exited early: " + strings.TrimSpace(out.String())}
	}
	want := float64(kb * 1024)
	rates, mean, _ := e.perSecond(t, dir, measure, []int{pid}, nil)
	c := benchCell{goodput: mean / want, neighbor: math.NaN()}
	for _, r := range rates {
		c.perSec = append(c.perSec, r/want)
	}
	if mean == 0 {
		c.note = "no data moved: " + lastLine(out.String())
	}
	return c
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

