//go:build bench && linux && !no_ebpf

package ebpf

import (
	"fmt"
	"testing"
	"time"

	cilium "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBenchBudget prints the byte budget's figures on a namespace bed: the
// bytes a curl at line rate writes under a 10 MB budget (5 runs), and what
// the budget costs: line-rate download time of 1 GB with no budget
// anywhere (programs detached), of another app while a budget exists, and
// of the budgeted app itself (a budget it does not use up), with the
// ingress program's ns per packet.
func TestBenchBudget(t *testing.T) {
	bed := testenv.NewBed(t)
	testenv.RequireTool(t, "curl")
	b := newTestBlocker(t, bed)
	prog, other := testenv.CopyProgram(t, "curl"), testenv.CopyProgram(t, "curl")
	bed.StartServer(bed.Peer, "http", "[::]:8093", false)
	url := func(n int) string { return fmt.Sprintf("http://%s:8093/%d", bed.PeerIP, n) }
	tg := backends.Target{ID: "bench", Kind: backends.TargetApp, Exe: prog, UID: 0}
	var got []int64
	for i := 0; i < 5; i++ {
		if err := b.SetBudget(tg, backends.Budget{On: true, Bytes: 10_000_000, Down: true, Refuse: true, Gen: uint64(i)}); err != nil {
			t.Fatal(err)
		}
		n, _ := download(t, bed, prog, url(200_000_000))
		got = append(got, n)
	}
	fmt.Printf("\nbudget: curl at line rate under a 10 MB download budget wrote (bytes, 5 runs): %v\n", got)

	stats, err := cilium.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Logf("no BPF run-time statistics: %v", err)
	} else {
		defer stats.Close()
	}
	const size = 1_000_000_000
	timed := func(what, p string) {
		before, _ := b.objs.CtBlockIngress.Stats()
		t0 := time.Now()
		n, f := downloadFor(t, bed, p, url(size), "30")
		took := time.Since(t0)
		if n != size {
			t.Errorf("%s: wrote %d of %d bytes: %s", what, n, size, f.stderr)
		}
		line := fmt.Sprintf("budget: 1 GB %-34s %6.2f s (%.2f Gbit/s)", what, took.Seconds(), float64(size)*8/took.Seconds()/1e9)
		if after, err := b.objs.CtBlockIngress.Stats(); err == nil && before != nil && after.RunCount > before.RunCount {
			runs := after.RunCount - before.RunCount
			line += fmt.Sprintf(", ingress program %.0f ns/packet over %d packets", float64(after.Runtime-before.Runtime)/float64(runs), runs)
		}
		fmt.Println(line)
	}
	if err := b.RemoveBudget(tg.ID); err != nil {
		t.Fatal(err)
	}
	timed("with no budget (detached)", other)
	if err := b.SetBudget(tg, backends.Budget{On: true, Bytes: 1 << 40, Down: true, Refuse: true, Gen: 99}); err != nil {
		t.Fatal(err)
	}
	timed("of another app beside a budget", other)
	timed("of the budgeted app", prog)
	if err := b.RemoveBudget(tg.ID); err != nil {
		t.Fatal(err)
	}
	timed("with no budget again (detached)", other)
}
