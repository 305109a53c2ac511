//go:build linux

package backends_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/ebpf"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/backendtest"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/backends/throttle/tc"
)

// throttlerPair is an upload and a download throttler.
type throttlerPair struct {
	name string
	up   *backends.Descriptor[backends.UploadThrottleBackend]
	down *backends.Descriptor[backends.DownloadThrottleBackend]
}

// globalBed is a bed with a manager (socket tagger placement, a throttler
// pair, tc_global) and a download source in the peer.
type globalBed struct {
	bed *testenv.Bed
	mgr *backends.Manager
	tcp *testenv.TCPCounter
}

// pairs are the throttler pairs the global limit works beside. An app's
// own download limit is taken into the global tree with either (ifb_tc's
// by nesting, ebpf_cgroup's as a class of the target's): a packet an IFB
// returns is not classified at ingress again, and ebpf_cgroup drops after
// the global IFB, which would spend the pool on dropped packets.
var pairs = []throttlerPair{
	{"ebpf_cgroup", ebpf.Upload, ebpf.Download},
	{"tc", tc.HTBUpload, tc.IFBDownload},
}

func newGlobalBed(t *testing.T, up *backends.Descriptor[backends.UploadThrottleBackend], down *backends.Descriptor[backends.DownloadThrottleBackend]) *globalBed {
	t.Helper()
	testenv.RequireRoot(t)
	if up == nil || down == nil {
		testenv.Skip(t, "throttler left out of this build")
	}
	bed := testenv.NewBed(t)
	opts := backends.Options{NetNS: testenv.Path(bed.Local), Tag: testenv.UniqueName("gl")}
	for _, p := range []func(backends.Options) error{up.Probe, down.Probe, tc.ProbeGlobal, func(backends.Options) error { return socktarget.Probe() }} {
		if err := p(opts); err != nil {
			testenv.KernelLacks(t, "global limit beside "+up.Name, err)
		}
	}
	u, err := up.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := down.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := backends.NewManager(u, d, nil, socktarget.NewPlacer(opts))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := tc.NewGlobal(opts)
	mgr.SetGlobalShaper(g, nil)
	t.Cleanup(func() { checkGlobalGone(t, bed) }) // after the manager's Cleanup
	backendtest.InitBackend(t, mgr)
	if _, err := mgr.GlobalShaper(); err != nil {
		t.Fatalf("global shaper: %v", err)
	}
	bed.StartServer(bed.Peer, "source", "[::]:5401", false)
	bed.StartServer(bed.Peer, "sink", "[::]:5402", false)
	return &globalBed{bed: bed, mgr: mgr, tcp: testenv.NewTCPCounter(t, bed.Local)}
}

// download starts a receiving client as a process target with limits l.
func (g *globalBed) download(t *testing.T, name string, l backends.Limits) int {
	t.Helper()
	c := g.bed.StartClient(g.bed.Local, "recv", g.bed.PeerIP+":5401", time.Minute, 100*time.Millisecond)
	g.apply(t, name, c.PID, l)
	return c.PID
}

// upload starts a sending client as a process target with limits l.
func (g *globalBed) upload(t *testing.T, name string, l backends.Limits) int {
	t.Helper()
	c := g.bed.StartClient(g.bed.Local, "send", g.bed.PeerIP+":5402", time.Minute, 100*time.Millisecond)
	g.apply(t, name, c.PID, l)
	return c.PID
}

func (g *globalBed) apply(t *testing.T, name string, pid int, l backends.Limits) {
	t.Helper()
	tg := backends.Target{ID: name, Kind: backends.TargetProcess, PIDs: []int{pid}}
	if err := g.mgr.Apply(tg, l); err != nil {
		t.Fatalf("apply %s: %v", name, err)
	}
}

// stop ends a download client and forgets its target.
func (g *globalBed) stop(t *testing.T, name string, pid int) {
	t.Helper()
	if err := g.mgr.Remove(name); err != nil {
		t.Errorf("remove %s: %v", name, err)
	}
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// rates returns each pid's download rate over d.
func (g *globalBed) rates(t *testing.T, d time.Duration, pids ...int) []float64 {
	return g.ratesDir(t, false, d, pids...)
}

// ratesDir returns each pid's upload (sent: acknowledged) or download rate
// over d.
func (g *globalBed) ratesDir(t *testing.T, sent bool, d time.Duration, pids ...int) []float64 {
	t.Helper()
	return g.tcp.Rates(t, sent, d, pids...)
}

// checkNoDirect fails if the global download limit's HTB root (on its
// IFB) sent a packet unshaped: HTB does so with a packet classified to a
// class it lacks (an app's own class made after its map entry, or not at
// all), or one nobody classified (the IFB's own IPv6 chatter). The upload
// root is not checked: pure TCP ACKs pass it unshaped by design.
func (g *globalBed) checkNoDirect(t *testing.T) {
	t.Helper()
	out := testenv.Run(t, "ip", "netns", "exec", g.bed.Local, "tc", "qdisc", "show")
	n := 0
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[1] != "htb" || f[2] != "c7a4:" {
			continue
		}
		n++
		for i := range f[:len(f)-1] {
			if f[i] == "direct_packets_stat" && f[i+1] != "0" {
				t.Errorf("the global limit's HTB sent %s packets past its classes:\n%s", f[i+1], l)
			}
		}
	}
	if n == 0 {
		t.Errorf("no HTB root of the global download limit:\n%s", out)
	}
}

// checkGlobalGone fails if the global limit left a qdisc or device behind.
func checkGlobalGone(t *testing.T, bed *testenv.Bed) {
	out := testenv.Run(t, "ip", "netns", "exec", bed.Local, "tc", "qdisc", "show")
	links := testenv.Run(t, "ip", "-n", bed.Local, "link", "show")
	if strings.Contains(out, "c7a3:") || strings.Contains(out, "c7a4:") || strings.Contains(links, tc.GlobalIFBPrefix) {
		t.Errorf("the global limit left kernel objects behind:\n%s\n%s", out, links)
	}
}

// TestGlobalShare: two apps under a 10 MB/s global download limit, high
// and low, share it 4:1 within 15 % and together use 0.95–1.03 of it; then
// the high app's own 2 MB/s limit still holds inside the pool while the
// low one takes the rest, the two together still 0.93–1.03 of the global
// limit. With each throttler pair beside the global limit.
func TestGlobalShare(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			g, hi, lo, r := highLow(t, p, false, 4*time.Second)
			ratio, use := r[0]/r[1], (r[0]+r[1])/shareLimit
			t.Logf("%s: high %.0f B/s, low %.0f B/s: %.2f:1, together %.3f of the limit", p.name, r[0], r[1], ratio, use)
			if ratio < 3.4 || ratio > 4.6 || use < 0.95 || use > 1.03 {
				// A second window: on a loaded VM a timer-starved second
				// can tilt one window.
				r = g.rates(t, 4*time.Second, hi, lo)
				ratio, use = r[0]/r[1], (r[0]+r[1])/shareLimit
				t.Logf("%s: again: high %.0f B/s, low %.0f B/s: %.2f:1, together %.3f", p.name, r[0], r[1], ratio, use)
			}
			if ratio < 3.4 || ratio > 4.6 || use < 0.95 || use > 1.03 {
				t.Errorf("high:low %.2f:1 (want 4:1 ± 15 %%), together %.3f of the limit (want 0.95–1.03)", ratio, use)
			}
			r, since := g.ownLimit(t, false, hi, lo, 4*time.Second)
			use = (r[0] + r[1]) / shareLimit
			t.Logf("%s: high with its own 2 MB/s limit %.0f B/s, low %.0f B/s, together %.3f of the limit", p.name, r[0], r[1], use)
			if r[0] < 1_700_000 || r[0] > 2_300_000 || use < 0.93 || use > 1.03 {
				r = g.rates(t, 4*time.Second, hi, lo) // a second window, as above
				use = (r[0] + r[1]) / shareLimit
				t.Logf("%s: again: high %.0f B/s, low %.0f B/s, together %.3f", p.name, r[0], r[1], use)
			}
			g.checkNoDirect(t)
			if r[0] < 1_700_000 || r[0] > 2_300_000 {
				// A stall's bytes landing in a later window (in-order
				// counts, testenv.MeanSince; 2.37 MB/s seen once in CI).
				mean := since()
				t.Logf("%s: high since its own limit was set: %.0f B/s", p.name, mean)
				if mean < 1_700_000 || mean > 2_300_000 {
					t.Errorf("the app's own limit inside the pool: %.0f B/s, %.0f B/s since it was set (want 2 MB/s within 15 %%)", r[0], mean)
				}
			}
			if use < 0.93 || use > 1.03 {
				t.Errorf("together %.3f of the global limit (want 0.93–1.03)", use)
			}
		})
	}
}

// shareLimit is the global limit of the share tests: 10 MB/s.
const shareLimit = 10_000_000

// highLow starts, in a fresh bed beside throttler pair p, a high and a
// low app moving data in one direction under a 10 MB/s global limit of
// that direction, and returns their rates over window after 2 s.
func highLow(t *testing.T, p throttlerPair, upload bool, window time.Duration) (g *globalBed, hi, lo int, r []float64) {
	t.Helper()
	g = newGlobalBed(t, p.up, p.down)
	gl, start := backends.GlobalLimit{Down: shareLimit}, g.download
	if upload {
		gl, start = backends.GlobalLimit{Up: shareLimit}, g.upload
	}
	if err := g.mgr.SetGlobal(gl); err != nil {
		t.Fatal(err)
	}
	hi = start(t, "hi", backends.Limits{Priority: backends.PriorityHigh})
	lo = start(t, "lo", backends.Limits{Priority: backends.PriorityLow})
	time.Sleep(2 * time.Second)
	return g, hi, lo, g.ratesDir(t, upload, window, hi, lo)
}

// ownLimit gives the high app of highLow its own 2 MB/s limit in that
// direction and returns both rates over window after 2 s, and a function
// that returns the high app's mean rate since the limit was set.
func (g *globalBed) ownLimit(t *testing.T, upload bool, hi, lo int, window time.Duration) ([]float64, func() float64) {
	t.Helper()
	l := backends.Limits{Priority: backends.PriorityHigh, Down: backends.Limit{Rate: 2_000_000}}
	if upload {
		l.Down, l.Up = backends.Limit{}, backends.Limit{Rate: 2_000_000}
	}
	g.apply(t, "hi", hi, l)
	since := testenv.MeanSince(func() uint64 { return g.tcp.Bytes(t, upload, hi) })
	time.Sleep(2 * time.Second)
	return g.ratesDir(t, upload, window, hi, lo), since
}
