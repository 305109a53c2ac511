//go:build linux

package tc

import (
	"math"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestClampSmooth: after a limit is set on running transfers, every
// one-second window at the receiver from 3 s after the clamp is within
// ±15 % of the limit, upload and download at once (issue #13). The
// targets are tagged, as the helper's socket_tags placement makes them, so
// their open connections are adopted by the buffer clamps before the class
// exists (socktarget.AdoptDrain). Untagged (the cgroup placement) the
// download's clamp transient — the old window's data overflowing the queue,
// a stall, then what was held at once — was seen at 2.06–3.0 × in the
// 3–6 s windows in about one run in four. The bench reports the real spread.
func TestClampSmooth(t *testing.T) {
	e := newEnv(t)
	tagger, err := socktarget.Acquire(e.tag) // the backends' own (shared by tag)
	if err != nil {
		testenv.KernelLacks(t, "socket tagging", err)
	}
	t.Cleanup(func() { tagger.Close() })
	const rate = 1_000_000
	var loads [2][]int
	for _, d := range directions() {
		b := e.newBackend(t, d.dir)
		if err := b.Init(); err != nil {
			t.Fatalf("%s Init: %v", d.name, err)
		}
		t.Cleanup(func() { b.Cleanup() })
		l := e.client(t, d.dir, false, time.Minute)
		time.Sleep(300 * time.Millisecond)
		tg := e.place(t, "smooth-"+d.name, backends.TargetProcess, l.PID)
		if tg.Tag, err = tagger.Set(tg); err != nil {
			t.Fatalf("%s tag: %v", d.name, err)
		}
		if err := b.SetLimit(tg, backends.Limit{Rate: rate}); err != nil {
			t.Fatalf("%s SetLimit: %v", d.name, err)
		}
		loads[d.dir] = []int{l.PID}
	}
	stop := make(chan struct{})
	polls := [2]func() []testenv.Sample{
		e.tcp.Poll(true, 50*time.Millisecond, stop, loads[egress]...),
		e.tcp.Poll(false, 50*time.Millisecond, stop, loads[ingress]...),
	}
	time.Sleep(9 * time.Second)
	close(stop)
	var got [2][]float64
	for d, poll := range polls {
		samples := poll()
		for s := 3.0; s < 9; s++ {
			got[d] = append(got[d], testenv.RateBetween(samples, s, s+1)/rate)
		}
	}
	for _, d := range directions() {
		t.Logf("%s: 1-s windows ÷ limit from 3 s after the clamp: %.3f", d.name, got[d.dir])
		for i, r := range got[d.dir] {
			if math.Abs(r-1) > 0.15 {
				t.Errorf("%s: the %d–%d s window at %.3f × the limit; want every one from 3 s within ±15 %%", d.name, i+3, i+4, r)
			}
		}
	}
}
