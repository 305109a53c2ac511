//go:build bench && linux && !no_ebpf

package ebpf

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBenchBlock prints the blocker's figures on a namespace bed: how fast
// a blocked app's connect() is refused (curl's own time from start to
// failure, beside an unblocked connect), and how long an open download
// keeps delivering after Block returns.
func TestBenchBlock(t *testing.T) {
	bed := testenv.NewBed(t)
	testenv.RequireTool(t, "curl")
	b := newTestBlocker(t, bed)
	url := fmt.Sprintf("http://%s:%d/", bed.PeerIP, bed.ServeHTTP(bed.Peer))
	p := newPlacer(t)
	holder := bed.Command(bed.Local, "sleep", "120")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	tg := backends.Target{ID: "bench", Kind: backends.TargetApp, PIDs: []int{holder.Process.Pid}}
	cg, err := p.Place(tg.ID, tg.PIDs)
	if err != nil {
		t.Fatal(err)
	}
	tg.Cgroup = cg
	const runs = 40
	times := func(blocked bool) []float64 {
		var ms []float64
		for i := 0; i < runs; i++ {
			f := curlFrom(t, bed, cg.Path, url)
			if f.refused() != blocked {
				t.Fatalf("curl %d: exit %d %q, want refused=%v", i, f.code, f.eperm(), blocked)
			}
			ms = append(ms, f.seconds*1000)
		}
		sort.Float64s(ms)
		return ms
	}
	open := times(false)
	if err := b.Block(tg, backends.TrafficAll); err != nil {
		t.Fatal(err)
	}
	refused := times(true)
	if err := b.Unblock(tg.ID); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nblock: curl start → result, %d runs each (ms): refused connect p50 %.2f p95 %.2f max %.2f; "+
		"unblocked fetch p50 %.2f p95 %.2f\n", runs, pct(refused, 50), pct(refused, 95), refused[len(refused)-1],
		pct(open, 50), pct(open, 95))

	// An open download: delivery after Block returns.
	bed.StartServer(bed.Peer, "source", "[::]:5204", false)
	var stops []float64
	for i := 0; i < 5; i++ {
		load := bed.StartClient(bed.Local, "recv", bed.PeerIP+":5204", 20*time.Second, 10*time.Millisecond)
		total := loadTotal(load)
		waitGrowing(t, "download", total, 5*time.Second)
		cur := backends.Target{ID: fmt.Sprintf("stream-%d", i), PIDs: []int{load.PID}}
		t0 := time.Now()
		if err := b.Block(cur, backends.TrafficAll); err != nil {
			t.Fatal(err)
		}
		last, lastAt := total(), time.Now()
		for time.Since(t0) < 2*time.Second {
			if v := total(); v != last {
				last, lastAt = v, time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		stops = append(stops, float64(lastAt.Sub(t0).Microseconds())/1000)
		b.Unblock(cur.ID)
		load.Cmd.Process.Kill()
	}
	sort.Float64s(stops)
	fmt.Printf("block: open download's last delivery after Block returned (ms, 5 runs, 10 ms reports): %v\n", stops)
}

func pct(sorted []float64, p int) float64 { return sorted[(len(sorted)-1)*p/100] }
