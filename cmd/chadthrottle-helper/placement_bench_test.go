//go:build bench && linux

package main

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestBenchRuleBeforeStart prints, for the real helper in each placement
// (socket_tags: sockets tagged at creation; cgroup: the old way, processes
// moved after the proc connector reports their exec), how a 2 MB/s rule
// set before wget starts holds on a 10 MB download: how long it took
// (5 s when the rule bites from the first packet) and how far the download
// got ahead of the limit (bytes received − limit × time, at most).
func TestBenchRuleBeforeStart(t *testing.T) {
	testenv.RequireTool(t, "wget")
	fmt.Println("\nreal helper, rule of 2 MB/s down on wget set before it runs, 10 MB, 3 runs (median, max ahead)")
	fmt.Printf("%-6s %-12s %10s %14s\n", "pair", "placement", "took", "bytes ahead")
	for _, pair := range []struct {
		name  string
		extra []string
	}{{"ebpf", nil}, {"tc", []string{"--upload", "tc_htb", "--download", "ifb_tc"}}} {
		for _, placement := range []string{"socket_tags", "cgroup"} {
			took, ahead := ruleBeforeStart(t, append([]string{"--placement", placement}, pair.extra...))
			fmt.Printf("%-6s %-12s %8.2f s %11.0f kB\n", pair.name, placement, took, ahead/1e3)
		}
	}
}

func ruleBeforeStart(t *testing.T, extra []string) (tookMedian, aheadMax float64) {
	const limit = 2_000_000
	bed, bus, in := realBed(t, "http", "[::]:8080", extra...)
	h := in.start(t)
	defer h.stop(t, 15)
	c := connect(t, bus.Address)
	wget, err := exec.LookPath("wget")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetAppLimit(context.Background(), wget, 0, api.Limit{Down: limit}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	counter := testenv.NewTCPCounter(t, bed.Local)
	var took []float64
	for run := 0; run < 3; run++ {
		cmd := bed.Command(bed.Local, wget, "-q", "-T", "30", "-t", "1", "-O", "/dev/null", "http://"+bed.PeerIP+":8080/10000000")
		stop := make(chan struct{})
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		readings := counter.Poll(false, 20*time.Millisecond, stop, cmd.Process.Pid)
		err := cmd.Wait()
		took = append(took, time.Since(t0).Seconds())
		close(stop)
		if err != nil {
			t.Fatalf("wget: %v", err)
		}
		for _, s := range readings() {
			aheadMax = max(aheadMax, float64(s.Total)-limit*s.T)
		}
	}
	return sortedMid(took), aheadMax
}

// sortedMid returns the median of three or more figures.
func sortedMid(v []float64) float64 {
	a, b, c := v[0], v[1], v[2]
	return max(min(a, b), min(max(a, b), c))
}
