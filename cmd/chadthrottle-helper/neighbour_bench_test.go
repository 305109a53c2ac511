//go:build bench && linux

package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// Neighbour ÷ solo (issue #13: an unlimited neighbour keeps ≥ 95 % of its
// solo rate while another app is limited). The neighbour is a free-running
// flow, measured at its receiver (tcp_info every 50 ms). Solo: no limit is
// set and the other flow is stopped (SIGSTOP); beside: the other flow runs
// under a limit of neighbourLimit, so the figure holds what the limiter
// costs the neighbour (its programs, qdiscs and CPU) and what the limited
// flow does. Phases alternate in short pairs so load drifts on the shared
// 2-core VM hit both; each gives one 1-s window after 0.5 s (buffers
// drain, the limiter goes up or down). On this bed the neighbour is
// CPU-bound (GB/s over a veth), so the figure is mostly CPU contention.
const (
	neighbourLimit  = 5_000_000
	neighbourRounds = 12 // solo + beside pairs
)

// neighbourShare measures both directions for one helper variant; the peer
// gets its own sink and source for the neighbour on ports 5203 and 5204,
// so its receiver is a process of its own.
func neighbourShare(t *testing.T, bed *testenv.Bed, c *client.Client, backend string) []benchRow {
	nsink := bed.StartServer(bed.Peer, "sink", "[::]:5203", false)
	bed.StartServer(bed.Peer, "source", "[::]:5204", false)
	var rows []benchRow
	for _, dir := range settleDirs {
		if only := os.Getenv("BENCH_DIRS"); only != "" && !strings.Contains(only, dir.name) {
			continue
		}
		nport := map[string]string{"upload": "5203", "download": "5204"}[dir.name]
		rows = append(rows, neighbourCase(t, bed, c, backend, dir, nport, nsink.Process.Pid))
	}
	return rows
}

func neighbourCase(t *testing.T, bed *testenv.Bed, c *client.Client, backend string, dir settleDir, nport string, nsinkPID int) benchRow {
	ctx := context.Background()
	what := "neighbour ÷ solo, " + dir.name
	dur := time.Duration(3*neighbourRounds+10) * time.Second
	limited := bed.StartClient(bed.Local, dir.mode, bed.PeerIP+":"+dir.port, dur, time.Second)
	defer limited.Cmd.Process.Kill()
	neigh := bed.StartClient(bed.Local, dir.mode, bed.PeerIP+":"+nport, dur, time.Second)
	defer neigh.Cmd.Process.Kill()
	stop := make(chan struct{})
	defer close(stop)
	recvPID, recvNS := neigh.PID, bed.Local
	if dir.mode == "send" {
		recvPID, recvNS = nsinkPID, bed.Peer
	}
	np := startPoll(t, recvNS, false, stop, recvPID)
	lp := startPoll(t, bed.Local, dir.mode == "send", stop, limited.PID) // acked (upload) or received
	pid := int32(limited.PID)
	defer c.RemoveProcessLimit(ctx, pid)
	time.Sleep(time.Second)
	var solo, beside, ratios, lim []float64
	for r := 0; r < neighbourRounds; r++ {
		limited.Cmd.Process.Signal(syscall.SIGSTOP)
		c.RemoveProcessLimit(ctx, pid)
		s := neighbourWindow(np)
		if err := c.SetProcessLimit(ctx, pid, dir.lim(neighbourLimit)); err != nil {
			return benchRow{backend, what, "-", "", "", err.Error()}
		}
		limited.Cmd.Process.Signal(syscall.SIGCONT)
		from := lp.since(time.Now()) + 0.5
		b := neighbourWindow(np)
		lim = append(lim, testenv.RateBetween(lp.samples(), from, from+1)/neighbourLimit)
		solo, beside = append(solo, s), append(beside, b)
		if s > 0 {
			ratios = append(ratios, b/s)
		}
	}
	ms, mb := median(solo), median(beside)
	if ms == 0 {
		return benchRow{backend, what, "-", "", "", "the neighbour did not run alone"}
	}
	note := fmt.Sprintf("median of %d solo/beside pairs of 1-s windows at the receiver (medians: solo %.0f MB/s, range %.0f–%.0f; beside a %d MB/s-limited %s %.0f MB/s, ratio %.3f; limited flow %.3f × its limit)",
		len(ratios), ms/1e6, minOf(solo)/1e6, maxOf(solo)/1e6, neighbourLimit/1_000_000, dir.name, mb/1e6, mb/ms, median(lim))
	return benchRow{backend, what, fmt.Sprintf("%.3f", median(ratios)), "", "", note}
}

// neighbourWindow waits 1.5 s and returns the neighbour's rate over the
// last second of it.
func neighbourWindow(np poller) float64 {
	from := np.since(time.Now()) + 0.5
	time.Sleep(1500 * time.Millisecond)
	return testenv.RateBetween(np.samples(), from, from+1)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(v []float64) float64 {
	m := 0.0
	for i, x := range v {
		if i == 0 || x < m {
			m = x
		}
	}
	return m
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
