//go:build linux

package backendtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// Shown is what a monitor showed for one limited flow beside what the
// receiving side got (issue #13: what the window shows is what the app
// gets).
type Shown struct {
	Monitor    string
	Flow       string // "up-1MB/s", "down-10MB/s"
	Limit      backends.Rate
	Delivered  float64 // B/s the receiving side got over the window
	RateRatio  float64 // the monitor's rate over the window ÷ Delivered
	TotalRatio float64 // the monitor's total ÷ the receiving side's total
}

// ShownPairs runs, in a fresh bed, one upload and one download per rate
// at once, each limited by the throttlers up and down, and reads every
// monitor in monitors (all watching the same traffic) over window after
// settle. The receiving side's count: for uploads the payload the peer's
// TCP received in order (tcp_info of the sink's sockets in the peer's
// namespace), for downloads what the receiving ctload read.
func ShownPairs(t *testing.T, up *backends.Descriptor[backends.UploadThrottleBackend], down *backends.Descriptor[backends.DownloadThrottleBackend],
	monitors []*backends.Descriptor[backends.MonitorBackend], rates []backends.Rate, settle, window time.Duration) []Shown {
	t.Helper()
	bed := testenv.NewBed(t)
	tag := testenv.UniqueName("sh")
	opts := backends.Options{NetNS: testenv.Path(bed.Local), Tag: tag}
	mons := map[string]backends.MonitorBackend{}
	for _, d := range monitors {
		if err := d.Probe(opts); err != nil {
			testenv.KernelLacks(t, d.Name, err)
		}
		m, err := d.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		InitBackend(t, m)
		mons[d.Name] = m
	}
	ths := map[bool]backends.Throttler{}
	for upload, mk := range map[bool]func() (backends.Throttler, error){
		true:  func() (backends.Throttler, error) { return up.New(opts) },
		false: func() (backends.Throttler, error) { return down.New(opts) },
	} {
		th, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		InitBackend(t, th)
		ths[upload] = th
	}
	placer, err := cgroupv2.NewLeaf(backends.Options{Tag: tag})
	if err != nil {
		t.Fatal(err)
	}
	InitBackend(t, placer)

	flows := startFlows(t, bed, rates)
	for _, f := range flows {
		cg, err := placer.Place(f.name, []int{f.pid})
		if err != nil {
			t.Fatal(err)
		}
		tg := backends.Target{ID: f.name, Kind: backends.TargetProcess, PIDs: []int{f.pid}, Cgroup: cg}
		if err := ths[f.upload].SetLimit(tg, backends.Limit{Rate: f.rate}); err != nil {
			t.Fatalf("limit %s: %v", f.name, err)
		}
	}
	time.Sleep(settle)
	shown0, got0, t0 := readShown(t, mons, flows)
	time.Sleep(window)
	shown1, got1, t1 := readShown(t, mons, flows)
	var out []Shown
	for _, d := range monitors {
		secs := t1[d.Name].Sub(t0[d.Name]).Seconds()
		for i, f := range flows {
			delivered := (got1[d.Name][i] - got0[d.Name][i]) / secs
			rate := float64(shown1[d.Name][i]-shown0[d.Name][i]) / secs
			out = append(out, Shown{Monitor: d.Name, Flow: f.name, Limit: f.rate, Delivered: delivered,
				RateRatio: rate / delivered, TotalRatio: float64(shown1[d.Name][i]) / got1[d.Name][i]})
		}
	}
	return out
}

// InitBackend initialises b (a backend or placer) for a test and cleans
// it up when the test ends.
func InitBackend(t *testing.T, b interface {
	Init() error
	Cleanup() error
}) {
	t.Helper()
	if err := b.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
}

// limitedFlow is one limited process and how its receiver counts.
type limitedFlow struct {
	name     string
	pid      int
	upload   bool
	rate     backends.Rate
	received func() uint64
}

// startFlows starts, per rate, an upload (to its own sink) and a download
// (from one source) in the bed's local namespace.
func startFlows(t *testing.T, bed *testenv.Bed, rates []backends.Rate) []limitedFlow {
	peer := testenv.NewTCPCounter(t, bed.Peer)
	bed.StartServer(bed.Peer, "source", "[::]:5301", false)
	var flows []limitedFlow
	for i, rate := range rates {
		port := 5302 + i
		sink := bed.StartServer(bed.Peer, "sink", fmt.Sprintf("[::]:%d", port), false)
		time.Sleep(100 * time.Millisecond) // the servers listen
		l := bed.StartClient(bed.Local, "send", fmt.Sprintf("%s:%d", testenv.PeerIP, port), time.Minute, 500*time.Millisecond)
		sinkPID := sink.Process.Pid
		flows = append(flows, limitedFlow{name: "up-" + rateName(rate), pid: l.PID, upload: true, rate: rate,
			received: func() uint64 { n, _ := peer.Read(false, sinkPID); return n }})
		d := bed.StartClient(bed.Local, "recv", fmt.Sprintf("%s:5301", testenv.PeerIP), time.Minute, 20*time.Millisecond)
		flows = append(flows, limitedFlow{name: "down-" + rateName(rate), pid: d.PID, rate: rate,
			received: func() uint64 {
				s := d.Samples()
				if len(s) == 0 {
					return 0
				}
				return s[len(s)-1].Total
			}})
	}
	return flows
}

func rateName(r backends.Rate) string {
	if r >= 1_000_000 {
		return fmt.Sprintf("%gMB/s", float64(r)/1e6)
	}
	return fmt.Sprintf("%gkB/s", float64(r)/1e3)
}

// readShown returns, per monitor, each flow's total in its direction, what
// the receiving side had counted at that moment (the mean of its counts
// just before and just after the Update: a busy machine can make an Update
// take a quarter of a second) and when.
func readShown(t *testing.T, mons map[string]backends.MonitorBackend, flows []limitedFlow) (shown map[string][]uint64, received map[string][]float64, at map[string]time.Time) {
	shown, received, at = map[string][]uint64{}, map[string][]float64{}, map[string]time.Time{}
	for name, m := range mons {
		before, t0 := readReceived(flows), time.Now()
		s, err := m.Update()
		if err != nil {
			t.Fatalf("%s Update: %v", name, err)
		}
		after, t1 := readReceived(flows), time.Now()
		at[name] = t0.Add(t1.Sub(t0) / 2)
		totals := make([]uint64, len(flows))
		got := make([]float64, len(flows))
		for i, f := range flows {
			got[i] = float64(before[i]+after[i]) / 2
			for _, p := range s.Processes {
				if p.PID == f.pid {
					totals[i] = p.RxBytes
					if f.upload {
						totals[i] = p.TxBytes
					}
				}
			}
		}
		shown[name], received[name] = totals, got
	}
	return shown, received, at
}

func readReceived(flows []limitedFlow) []uint64 {
	out := make([]uint64, len(flows))
	for i, f := range flows {
		out[i] = f.received()
	}
	return out
}
