//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	cilium "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/backendtest"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// uploadBed is a bed with ctload senders in the local namespace, each
// writing to its own counting sink in the peer namespace.
type uploadBed struct {
	bed   *testenv.Bed
	mu    sync.Mutex
	sinks map[string]*sink
}

func newUploadBed(t *testing.T) *uploadBed {
	return &uploadBed{bed: testenv.NewBed(t), sinks: map[string]*sink{}}
}

// sender starts a sender to peer (v4 or v6 address) and returns its target.
func (u *uploadBed) sender(t *testing.T, peer string) (backends.Target, *sink) {
	s := newSink(t, u.bed)
	l := u.bed.StartClient(u.bed.Local, "send", hostPort(peer, s.Port), 60*time.Second, 250*time.Millisecond)
	// Wait until the flow runs (a busy machine can delay an IPv6 connect).
	for deadline := time.Now().Add(5 * time.Second); s.Total() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("sender %d moved nothing in 5 s: %s", l.PID, l.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	id := fmt.Sprintf("pid-%d", l.PID)
	u.mu.Lock()
	u.sinks[id] = s
	u.mu.Unlock()
	return backends.Target{ID: id, Kind: backends.TargetProcess, PIDs: []int{l.PID}}, s
}

func hostPort(addr string, port int) string {
	if len(addr) > 0 && addr[0] >= '0' && addr[0] <= '9' && !contains(addr, ':') {
		return fmt.Sprintf("%s:%d", addr, port)
	}
	return fmt.Sprintf("[%s]:%d", addr, port)
}

func contains(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// downloadBed is a bed with a ctload source in the peer namespace and
// receiving ctload clients in the local namespace.
type downloadBed struct {
	bed   *testenv.Bed
	mu    sync.Mutex
	loads map[string]*testenv.Load
}

func newDownloadBed(t *testing.T) *downloadBed {
	d := &downloadBed{bed: testenv.NewBed(t), loads: map[string]*testenv.Load{}}
	d.bed.StartServer(d.bed.Peer, "source", "[::]:5203", false)
	return d
}

func (d *downloadBed) receiver(t *testing.T, peer string) (backends.Target, *testenv.Load) {
	l := d.bed.StartClient(d.bed.Local, "recv", hostPort(peer, 5203), 60*time.Second, 100*time.Millisecond)
	id := fmt.Sprintf("pid-%d", l.PID)
	d.mu.Lock()
	d.loads[id] = l
	d.mu.Unlock()
	return backends.Target{ID: id, Kind: backends.TargetProcess, PIDs: []int{l.PID}}, l
}

func TestUploadConformance(t *testing.T) {
	requireEBPF(t)
	u := newUploadBed(t)
	runConformance(t, func() backends.Throttler {
		return NewUpload(backends.Options{NetNS: testenv.Path(u.bed.Local)})
	}, func(t *testing.T) (backends.Target, func() uint64) {
		tg, s := u.sender(t, u.bed.PeerIP)
		return tg, s.Total
	})
}

func TestDownloadConformance(t *testing.T) {
	requireEBPF(t)
	d := newDownloadBed(t)
	runConformance(t, func() backends.Throttler {
		return NewDownload(backends.Options{NetNS: testenv.Path(d.bed.Local)})
	}, func(t *testing.T) (backends.Target, func() uint64) {
		tg, l := d.receiver(t, d.bed.PeerIP)
		return tg, loadTotal(l)
	})
}

// runConformance runs the shared throttler suite; target starts a
// transfer and returns its target and the byte counter that measures it.
func runConformance(t *testing.T, newT func() backends.Throttler, target func(t *testing.T) (backends.Target, func() uint64)) {
	var mu sync.Mutex
	totals := map[string]func() uint64{}
	backendtest.RunThrottler(t, backendtest.ThrottlerHarness{
		New: func(*testing.T) backends.Throttler { return newT() },
		Target: func(t *testing.T) backends.Target {
			tg, total := target(t)
			mu.Lock()
			totals[tg.ID] = total
			mu.Unlock()
			return tg
		},
		Placer: newPlacer(t),
		Measure: func(t *testing.T, tg backends.Target, dur time.Duration) float64 {
			mu.Lock()
			total := totals[tg.ID]
			mu.Unlock()
			// Data sent at full speed before the limit waits in the
			// receiver's socket queue; let it drain before measuring.
			time.Sleep(time.Second)
			return rateOf(total, dur)
		},
	})
}

func initThrottler(t *testing.T, b backends.Throttler) {
	t.Helper()
	backendtest.InitBackend(t, b)
}

func place(t *testing.T, p backends.Placer, tg backends.Target) backends.Target {
	t.Helper()
	cg, err := p.Place(tg.ID, tg.PIDs)
	if err != nil {
		t.Fatalf("place %s: %v", tg.ID, err)
	}
	tg.Cgroup = cg
	return tg
}

// restored polls a byte counter in half-second windows for up to 3 s and
// returns the first rate at or above want (or the last one). A sender that
// was held back may sit in TCP's RTO or probe backoff for a while after a
// limit is removed.
func restored(total func() uint64, want float64) float64 {
	var r float64
	for i := 0; i < 6; i++ {
		if r = rateOf(total, 500*time.Millisecond); r >= want {
			break
		}
	}
	return r
}

func within(got, want, tol float64) bool { return math.Abs(got-want) <= tol*want }

// TestUploadMidTransfer: a limit set on a process in the middle of a
// transfer (its socket predates the limit and its cgroup) bites within a
// second, while an unlimited neighbour on the same interface keeps going;
// IPv4 and IPv6. Removing the limit restores full speed.
func TestUploadMidTransfer(t *testing.T) {
	testMidTransfer(t, "sender", func(t *testing.T, fam string) (backends.Throttler, func() (backends.Target, func() uint64)) {
		u := newUploadBed(t)
		b := NewUpload(backends.Options{NetNS: testenv.Path(u.bed.Local)})
		return b, func() (backends.Target, func() uint64) {
			tg, s := u.sender(t, familyPeer(u.bed, fam))
			return tg, s.Total
		}
	})
}

// TestDownloadMidTransfer is TestUploadMidTransfer for downloads.
func TestDownloadMidTransfer(t *testing.T) {
	testMidTransfer(t, "receiver", func(t *testing.T, fam string) (backends.Throttler, func() (backends.Target, func() uint64)) {
		d := newDownloadBed(t)
		b := NewDownload(backends.Options{NetNS: testenv.Path(d.bed.Local)})
		return b, func() (backends.Target, func() uint64) {
			tg, l := d.receiver(t, familyPeer(d.bed, fam))
			return tg, loadTotal(l)
		}
	})
}

// familyPeer is the bed's peer address of the family fam ("ipv4", "ipv6").
func familyPeer(bed *testenv.Bed, fam string) string {
	if fam == "ipv6" {
		return bed.PeerIP6
	}
	return bed.PeerIP
}

// testMidTransfer is the mid-transfer test for one direction, per address
// family: setup makes the throttler and a flow starter (a flow's target
// and its byte count); who names the limited flow in failures.
func testMidTransfer(t *testing.T, who string, setup func(t *testing.T, fam string) (backends.Throttler, func() (backends.Target, func() uint64))) {
	requireEBPF(t)
	for _, fam := range []string{"ipv4", "ipv6"} {
		t.Run(fam, func(t *testing.T) {
			b, flow := setup(t, fam)
			initThrottler(t, b)
			p := newPlacer(t)
			tg, total := flow()
			_, neighbour := flow()
			time.Sleep(500 * time.Millisecond)
			solo := rateOf(neighbour, time.Second)
			tg = place(t, p, tg)
			const rate = 1_000_000
			if err := b.SetLimit(tg, backends.Limit{Rate: rate}); err != nil {
				t.Fatal(err)
			}
			// The mean is counted from half a second in, when what the flow had
			// queued at full speed is read and the load has reported
			// since (its count is a sample: at GB/s a stale one misses
			// tens of MB).
			time.Sleep(500 * time.Millisecond)
			since := testenv.MeanSince(total)
			time.Sleep(500 * time.Millisecond)
			got := rateOf(total, 3*time.Second)
			neigh := rateOf(neighbour, time.Second)
			t.Logf("limited %.0f B/s (limit %d); neighbour %.0f B/s (alone before: %.0f)", got, rate, neigh, solo)
			if !within(got, rate, 0.15) {
				// The count is what the application got in order: data
				// the policer passed behind a dropped segment is counted
				// when the hole fills, so a stall in the first second can
				// put its bytes into seconds 1-4 (1.18 × seen in CI).
				// From 0.5 s on the holes cancel out.
				time.Sleep(3 * time.Second)
				mean := since()
				t.Logf("seconds 1-4 at %.2f × the limit; %.2f × from 0.5 s after it was set", got/rate, mean/rate)
				if !within(mean, rate, 0.15) {
					t.Errorf("limited %s at %.0f B/s in seconds 1-4, %.0f B/s from 0.5 s after the limit, under a %d B/s limit",
						who, got, mean, rate)
				}
			}
			if neigh < rate*20 {
				t.Errorf("unlimited neighbour slowed to %.0f B/s", neigh)
			}
			if err := b.RemoveLimit(tg.ID); err != nil {
				t.Fatal(err)
			}
			if free := restored(total, rate*10); free < rate*10 {
				t.Errorf("3 s after removal the %s still runs at %.0f B/s", who, free)
			}
		})
	}
}

// TestChildrenInherit: a child the limited process starts after the limit
// is set (a new socket, created in the target's cgroup) is limited too, in
// both directions.
func TestChildrenInherit(t *testing.T) {
	requireEBPF(t)
	for _, dir := range []string{"upload", "download"} {
		t.Run(dir, func(t *testing.T) {
			bed := testenv.NewBed(t)
			var b backends.Throttler
			var d *deferredLoad
			var total func() uint64
			if dir == "upload" {
				b = NewUpload(backends.Options{NetNS: testenv.Path(bed.Local)})
				s := newSink(t, bed)
				d = newDeferredLoad(t, bed, "send", hostPort(bed.PeerIP, s.Port), 30*time.Second)
				total = s.Total // what arrived, not what was queued
			} else {
				b = NewDownload(backends.Options{NetNS: testenv.Path(bed.Local)})
				bed.StartServer(bed.Peer, "source", "[::]:5203", false)
				d = newDeferredLoad(t, bed, "recv", hostPort(bed.PeerIP, 5203), 30*time.Second)
				total = d.Total
			}
			initThrottler(t, b)
			p := newPlacer(t)
			tg := place(t, p, backends.Target{ID: "app-children", Kind: backends.TargetApp, PIDs: []int{d.PID}})
			const rate = 500_000
			if err := b.SetLimit(tg, backends.Limit{Rate: rate}); err != nil {
				t.Fatal(err)
			}
			d.Start()
			time.Sleep(1500 * time.Millisecond)
			got := rateOf(total, 4*time.Second)
			t.Logf("child of limited shell: %.0f B/s under %d", got, rate)
			if !within(got, rate, 0.2) {
				t.Errorf("child moves %.0f B/s under a %d B/s limit on its parent", got, rate)
			}
		})
	}
}

// TestAppSharesOneBucket: two processes of one app target share its bucket;
// a second target has its own bucket.
func TestAppSharesOneBucket(t *testing.T) {
	requireEBPF(t)
	u := newUploadBed(t)
	b := NewUpload(backends.Options{NetNS: testenv.Path(u.bed.Local)})
	initThrottler(t, b)
	p := newPlacer(t)
	a1, s1 := u.sender(t, u.bed.PeerIP)
	a2, s2 := u.sender(t, u.bed.PeerIP)
	o, so := u.sender(t, u.bed.PeerIP)
	app := place(t, p, backends.Target{ID: "app-x", Kind: backends.TargetApp, PIDs: []int{a1.PIDs[0], a2.PIDs[0]}})
	other := place(t, p, o)
	const rate = 1_000_000
	for _, tg := range []backends.Target{app, other} {
		if err := b.SetLimit(tg, backends.Limit{Rate: rate}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	both := func() uint64 { return s1.Total() + s2.Total() }
	var gotApp, gotOther float64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); gotApp = rateOf(both, 3*time.Second) }()
	go func() { defer wg.Done(); gotOther = rateOf(so.Total, 3*time.Second) }()
	wg.Wait()
	t.Logf("app (2 processes) %.0f B/s, other target %.0f B/s, limit %d each", gotApp, gotOther, rate)
	if !within(gotApp, rate, 0.15) || !within(gotOther, rate, 0.15) {
		t.Errorf("app %.0f B/s and other %.0f B/s; want each ≈ %d", gotApp, gotOther, rate)
	}
}

// TestTrafficTypes: a Local-only limit bites on the bed's ULA/RFC 1918
// peer; an Internet-only limit leaves it alone.
func TestTrafficTypes(t *testing.T) {
	requireEBPF(t)
	u := newUploadBed(t)
	b := NewUpload(backends.Options{NetNS: testenv.Path(u.bed.Local)})
	initThrottler(t, b)
	p := newPlacer(t)
	for _, tc := range []struct {
		tt      backends.TrafficType
		peer    string
		limited bool
	}{
		{backends.TrafficLocal, u.bed.PeerIP, true},
		{backends.TrafficLocal, u.bed.PeerIP6, true},
		{backends.TrafficInternet, u.bed.PeerIP, false},
		{backends.TrafficInternet, u.bed.PeerIP6, false},
	} {
		t.Run(tc.tt.String()+"-"+tc.peer, func(t *testing.T) {
			tg, s := u.sender(t, tc.peer)
			tg = place(t, p, tg)
			const rate = 1_000_000
			if err := b.SetLimit(tg, backends.Limit{Rate: rate, Traffic: tc.tt}); err != nil {
				t.Fatal(err)
			}
			defer b.RemoveLimit(tg.ID)
			time.Sleep(700 * time.Millisecond)
			got := rateOf(s.Total, 2*time.Second)
			if tc.limited && !within(got, rate, 0.2) {
				t.Errorf("%s limit on local peer: %.0f B/s; want ≈ %d", tc.tt, got, rate)
			}
			if !tc.limited && got < rate*10 {
				t.Errorf("%s limit slowed local traffic to %.0f B/s", tc.tt, got)
			}
		})
	}
}

// TestAttachedOnlyWhileLimited: the program sits in the cgroup2 root's
// hook only while some limit is set.
func TestAttachedOnlyWhileLimited(t *testing.T) {
	requireEBPF(t)
	b := NewUpload(backends.Options{}).(uploadThrottler)
	initThrottler(t, b)
	info, err := b.objs.CtThrottleEgress.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	root, err := cgroupv2.Mount()
	if err != nil {
		t.Fatal(err)
	}
	attached := func() bool {
		f, err := os.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: cilium.AttachCGroupInetEgress})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Programs {
			if p.ID == id {
				return true
			}
		}
		return false
	}
	if attached() {
		t.Fatal("program attached with no limit set")
	}
	tg := backends.Target{ID: "pid-self", PIDs: []int{os.Getpid()}}
	if err := b.SetLimit(tg, backends.Limit{Rate: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if !attached() {
		t.Fatal("program not attached while a limit is set")
	}
	if err := b.RemoveLimit(tg.ID); err != nil {
		t.Fatal(err)
	}
	if attached() {
		t.Fatal("program still attached after the last limit was removed")
	}
}
