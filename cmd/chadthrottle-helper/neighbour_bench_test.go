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
// flow, measured at its receiver (tcp_info every 50 ms); beside it a flow
// limited to neighbourLimit runs, or is stopped (SIGSTOP) for the solo
// phases. Phases alternate, so load drifts on the shared 2-core VM hit
// both; the first second after each switch is left out (the stopped
// flow's buffers drain, the resumed one's refill).
const (
	neighbourLimit  = 5_000_000
	neighbourRounds = 6 // solo + beside pairs
	neighbourPhase  = 3 // seconds per phase, the first one left out
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
	dur := time.Duration(2*neighbourRounds*neighbourPhase+10) * time.Second
	limited := bed.StartClient(bed.Local, dir.mode, bed.PeerIP+":"+dir.port, dur, time.Second)
	defer limited.Cmd.Process.Kill()
	if err := c.SetProcessLimit(ctx, int32(limited.PID), dir.lim(neighbourLimit)); err != nil {
		return benchRow{backend, what, "-", "", "", err.Error()}
	}
	defer c.RemoveProcessLimit(ctx, int32(limited.PID))
	neigh := bed.StartClient(bed.Local, dir.mode, bed.PeerIP+":"+nport, dur, time.Second)
	defer neigh.Cmd.Process.Kill()
	stop := make(chan struct{})
	defer close(stop)
	recvPID, recvNS := neigh.PID, bed.Local
	if dir.mode == "send" {
		recvPID, recvNS = nsinkPID, bed.Peer
	}
	np := startPoll(t, recvNS, false, stop, recvPID)
	lp := startPoll(t, bed.Local, dir.mode == "recv", stop, limited.PID) // acked (upload) or received
	time.Sleep(2 * time.Second)
	var solo, beside, lim []float64
	for r := 0; r < neighbourRounds; r++ {
		for _, alone := range []bool{true, false} {
			sig := syscall.SIGCONT
			if alone {
				sig = syscall.SIGSTOP
			}
			limited.Cmd.Process.Signal(sig)
			from := np.since(time.Now()) + 1
			time.Sleep(neighbourPhase * time.Second)
			for w := from; w+1 <= from-1+neighbourPhase+1e-9; w++ {
				rate := testenv.RateBetween(np.samples(), w, w+1)
				if alone {
					solo = append(solo, rate)
				} else {
					beside = append(beside, rate)
					lim = append(lim, testenv.RateBetween(lp.samples(), w, w+1)/neighbourLimit)
				}
			}
		}
	}
	limited.Cmd.Process.Signal(syscall.SIGCONT)
	ms, mb := median(solo), median(beside)
	if ms == 0 {
		return benchRow{backend, what, "-", "", "", "the neighbour did not run alone"}
	}
	note := fmt.Sprintf("at the receiver, median of %d one-second windows each: solo %.0f MB/s, beside a %d MB/s-limited %s %.0f MB/s (limited flow %.3f × its limit); solo range %.0f–%.0f",
		len(solo), ms/1e6, neighbourLimit/1_000_000, dir.name, mb/1e6, median(lim), minOf(solo)/1e6, maxOf(solo)/1e6)
	return benchRow{backend, what, fmt.Sprintf("%.3f", mb/ms), "", "", note}
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
