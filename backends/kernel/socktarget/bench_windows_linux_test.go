//go:build linux && bench

package socktarget_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBenchLaterWindows prints, for a 10 MB wget (3 runs) and curl (2 runs)
// download under a 2 MB/s rule set before it starts, on the plain bed
// (a sub-millisecond round trip) and across a delay line of 5 and 20 ms
// (testenv.NewBedRTT; CT_BENCH_RTTS="0 20" to choose), the 1-s windows of what the throttler let
// through (ebpf_cgroup: the bucket's passed bytes; ifb_tc: the HTB class's
// bytes on the IFB) beside what the receiving socket got in order
// (tcp_info), and the receiver's out-of-order queueing and the sender's
// retransmissions (nstat): where a later window over the limit comes from.
func TestBenchLaterWindows(t *testing.T) {
	requireTagger(t)
	testenv.RequireTool(t, "wget", "curl", "nstat", "tc")
	fmt.Println("\nlater 1-s windows of a 10 MB wget / curl download under a 2 MB/s rule (× limit)")
	for _, rtt := range benchRTTs() {
		for _, p := range pairs {
			for run := 0; run < 5; run++ {
				client := "wget"
				if run >= 3 {
					client = "curl"
				}
				t.Run(fmt.Sprintf("%v/%s/%d", rtt, p.name, run), func(t *testing.T) { laterWindows(t, p, client, rtt) })
			}
		}
	}
}

func laterWindows(t *testing.T, p pair, client string, rtt time.Duration) {
	const limit = 2_000_000
	bed := bedAt(t, rtt)
	m, pl := newManager(t, bed, p)
	bed.StartServer(bed.Peer, "http", "[::]:8080", false)
	appRule(t, m, "/usr/bin/"+client, backends.Limits{Down: backends.Limit{Rate: limit}})
	counter := testenv.NewTCPCounter(t, bed.Local)
	passed := passedReader(t, bed, p.name)
	before, sBefore := nstat(bed, bed.Local), nstat(bed, bed.Peer)
	stop := make(chan struct{})
	var mu sync.Mutex
	var shaper []testenv.Sample
	start := time.Now()
	go func() {
		for {
			n := passed()
			mu.Lock()
			shaper = append(shaper, testenv.Sample{T: time.Since(start).Seconds(), Total: n})
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	s, took, err := download(bed, counter, client, 10_000_000)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	after, sAfter := nstat(bed, bed.Local), nstat(bed, bed.Peer)
	mu.Lock()
	defer mu.Unlock()
	base := shaper[0].Total
	for i := range shaper {
		shaper[i].Total -= base
	}
	w := windows(s)
	fmt.Printf("rtt %-5v %-5s %-4s took %.2f s; windows min %.2f max %.2f CV %.1f %%; receiver in order %v; throttler passed %v; worst sliding 1 s: receiver %.2f, throttler %.2f; receiver OFO-queued %v segs, sender retransmitted %v segs (%v RTOs, %v loss probes)\n",
		rtt, p.name, client, took.Seconds(), slices.Min(w)/limit, slices.Max(w)/limit, 100*cv(w), ratios(w, limit), ratios(windows(shaper), limit),
		worstWindow(s, time.Second)/limit, worstWindow(shaper, time.Second)/limit,
		after["TcpExtTCPOFOQueue"]-before["TcpExtTCPOFOQueue"], sAfter["TcpRetransSegs"]-sBefore["TcpRetransSegs"],
		sAfter["TcpExtTCPTimeouts"]-sBefore["TcpExtTCPTimeouts"], sAfter["TcpExtTCPLossProbes"]-sBefore["TcpExtTCPLossProbes"])
	shaping := p.name == "tc"
	win, near := socktarget.ReceiveWindow(limit, rtt, shaping), ""
	if !shaping && rtt < socktarget.RwndNear {
		near = fmt.Sprintf(", %v on a path under %v", socktarget.RwndTimePolicer, socktarget.RwndNear)
	}
	if bed.Line != nil {
		fmt.Printf("      delay line: %d packets passed, %d dropped (queue full), a packet left at most %v late\n",
			bed.Line.Passed(), bed.Line.Dropped(), bed.Line.MaxLate().Round(time.Microsecond))
	}
	clamped, failed := pl.Tagger().ClampCounts()
	fmt.Printf("      receive window clamp %d B at %v (%v at the limit%s, + the limit over the round trip): %d sockets clamped, %d failed\n", win, rtt, socktarget.RwndTime, near, clamped, failed)
}

// passedReader returns a function reading the payload bytes the pair's
// download throttler passed for its one target.
func passedReader(t *testing.T, bed *testenv.Bed, pair string) func() uint64 {
	if pair == "tc" {
		return func() uint64 { return ifbClassBytes(bed) }
	}
	return func() uint64 { return bucketPassed() }
}

// ifbClassBytes returns the bytes of the busiest class on the download IFB
// (wire bytes: Ethernet frames; scaled to payload by 1448/1514).
func ifbClassBytes(bed *testenv.Bed) uint64 {
	out, _ := bed.Command(bed.Local, "ip", "-o", "link", "show").Output()
	var n uint64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "ctifbd") {
			continue
		}
		dev := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		// This tc has no JSON for classes: " Sent N bytes" under each.
		txt, _ := bed.Command(bed.Local, "tc", "-s", "class", "show", "dev", dev).Output()
		for _, l := range strings.Split(string(txt), "\n") {
			var sent uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(l), "Sent %d bytes", &sent); err == nil {
				n = max(n, sent) // one target: its class (a parent holds the same)
			}
		}
	}
	return n * 1448 / 1514
}

// bucketPassed reads the passed counter (payload bytes) of the busiest
// ebpf_cgroup bucket this process holds.
func bucketPassed() uint64 {
	var best uint64
	testenv.EachMap(0, func(name string, m *ebpf.Map) {
		if name != "buckets" {
			return
		}
		var k uint32
		var v []byte
		for it := m.Iterate(); it.Next(&k, &v); {
			if len(v) >= 64 {
				best = max(best, binary.LittleEndian.Uint64(v[56:64]))
			}
		}
	})
	return best
}
