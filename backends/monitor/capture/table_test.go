//go:build !no_capture

package capture

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Unit tests of the flow table's bookkeeping with a scripted lookup; the
// kernel paths are tested in monitor_test.go.

var (
	local  = netip.MustParseAddrPort("10.0.0.1:40000")
	remote = netip.MustParseAddrPort("192.0.2.1:443")
)

// seqs numbers the tests' TCP segments like a real connection's: each
// direction's sequence numbers follow its payload (and SYN), and a segment
// acknowledges everything the other direction sent before it.
var seqs = map[[2]netip.AddrPort]uint32{}

func tcpPkt(src, dst netip.AddrPort, payload uint64, flags uint8) *packet {
	k := [2]netip.AddrPort{src, dst}
	p := &packet{proto: protoTCP, src: src, dst: dst, payload: payload, flags: flags, seq: seqs[k], ack: seqs[[2]netip.AddrPort{dst, src}]}
	if flags&flagSYN != 0 {
		seqs[k]++
	}
	seqs[k] += uint32(payload)
	return p
}

// peerAck is the pure ACK with which the peer acknowledges everything the
// local side of a flow sent: the capture counts sent bytes then.
func peerAck(src, dst netip.AddrPort) *packet { return tcpPkt(dst, src, 0, flagACK) }

func info(pid int) backends.ProcessInfo {
	return backends.ProcessInfo{PID: pid, StartTime: uint64(pid) * 10, Comm: "p"}
}

func TestTableHeldBytesCreditedOnResolution(t *testing.T) {
	tab := newTable()
	now := time.Now()
	f := tab.account(tcpPkt(local, remote, 0, flagSYN), true, now)
	if f == nil {
		t.Fatal("new flow not handed out for immediate resolution")
	}
	tab.account(tcpPkt(local, remote, 1000, flagACK), true, now)
	tab.account(tcpPkt(remote, local, 500, flagACK), false, now)
	s := tab.snapshot(now)
	if len(s.Processes) != 0 || s.Total.TxBytes != 1000 || s.Unknown.TxBytes != 0 {
		t.Fatalf("before resolution: %+v", s)
	}
	tab.resolveNow(f, func(flowKey, bool) resolution { return resolution{info: info(7)} })
	tab.account(tcpPkt(local, remote, 24, flagACK), true, now)
	tab.account(peerAck(local, remote), false, now)
	s = tab.snapshot(now)
	if len(s.Processes) != 1 {
		t.Fatalf("processes %+v", s.Processes)
	}
	p := s.Processes[0]
	if p.PID != 7 || p.TxBytes != 1024 || p.RxBytes != 500 || p.TxPackets != 3 || p.RxPackets != 2 {
		t.Errorf("process counters %+v", p.Counters)
	}
	if len(p.Conns) != 1 || p.Conns[0].Local != local || p.Conns[0].Remote != remote || p.Conns[0].TxBytes != 1024 || p.Conns[0].Proto != backends.TCP {
		t.Errorf("conns %+v", p.Conns)
	}
	if s.Unknown != (backends.Counters{}) {
		t.Errorf("unknown %+v", s.Unknown)
	}
}

func TestTableUnresolvedGoesToUnknown(t *testing.T) {
	tab := newTable()
	now := time.Now()
	f := tab.account(&packet{proto: protoUDP, src: remote, dst: local, payload: 300}, false, now)
	tab.resolveNow(f, func(flowKey, bool) resolution { return resolution{} })
	tab.account(&packet{proto: protoUDP, src: remote, dst: local, payload: 200}, false, now)
	tab.account(&packet{proto: 1, src: remote, dst: local, payload: 64}, false, now) // ICMP
	s := tab.snapshot(now)
	if len(s.Processes) != 0 || s.Unknown.RxBytes != 564 || s.Total.RxBytes != 564 || s.Unknown.RxPackets != 3 {
		t.Errorf("snapshot %+v", s)
	}
}

// A lookup that keeps asking for retries gives up after its patience; the
// held bytes become unknown.
func TestResolverGivesUp(t *testing.T) {
	tab := newTable()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var mu sync.Mutex
	calls := 0
	go func() {
		defer wg.Done()
		tab.runResolver(stop, func(flowKey, bool) resolution {
			mu.Lock()
			calls++
			mu.Unlock()
			return resolution{retry: 5 * time.Millisecond, patience: 100 * time.Millisecond}
		}, true)
	}()
	defer func() { close(stop); wg.Wait() }()
	now := time.Now()
	f := tab.account(tcpPkt(local, remote, 100, flagSYN), true, now)
	tab.account(peerAck(local, remote), false, now)
	tab.resolveNow(f, func(flowKey, bool) resolution { return resolution{retry: time.Millisecond} })
	deadline := time.Now().Add(2 * time.Second)
	for {
		s := tab.snapshot(time.Now())
		if s.Unknown.TxBytes == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("held bytes never became unknown: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls < 2 {
		t.Errorf("lookup retried %d times; want several", calls)
	}
}

// An exited process is reported once more with Exited, after its traffic
// has drained, then dropped; late packets of its flows are unknown.
func TestTableExitedReportedOnce(t *testing.T) {
	tab := newTable()
	t0 := time.Now()
	f := tab.account(tcpPkt(local, remote, 10, flagSYN), true, t0)
	tab.account(peerAck(local, remote), false, t0)
	tab.resolveNow(f, func(flowKey, bool) resolution { return resolution{info: info(9)} })
	tab.exit(9, t0)
	// Bytes sent after the exit (the orphaned socket drains) still count.
	tab.account(tcpPkt(local, remote, 90, flagACK), true, t0.Add(time.Second))
	tab.account(peerAck(local, remote), false, t0.Add(time.Second))
	s := tab.snapshot(t0.Add(time.Second + drainIdle/2))
	if len(s.Processes) != 1 || s.Processes[0].Exited || s.Processes[0].TxBytes != 100 {
		t.Fatalf("while draining: %+v", s.Processes)
	}
	s = tab.snapshot(t0.Add(time.Second + drainIdle))
	if len(s.Processes) != 1 || !s.Processes[0].Exited || s.Processes[0].TxBytes != 100 {
		t.Fatalf("exit report: %+v", s.Processes)
	}
	// Its flows left with it: a late packet makes a new flow, which finds
	// the socket orphaned.
	if g := tab.account(tcpPkt(local, remote, 5, flagACK|flagFIN), true, t0.Add(4*time.Second)); g != nil {
		tab.resolveNow(g, func(flowKey, bool) resolution { return resolution{} })
	}
	tab.account(peerAck(local, remote), false, t0.Add(4*time.Second))
	s = tab.snapshot(t0.Add(5 * time.Second))
	if len(s.Processes) != 0 {
		t.Fatalf("reported again after exit: %+v", s.Processes)
	}
	if s.Total.TxBytes != 105 || s.Unknown.TxBytes != 5 {
		t.Errorf("total %+v unknown %+v", s.Total, s.Unknown)
	}
}

// A SYN on the 5-tuple of a closed flow starts a new flow, resolved anew.
func TestTableFiveTupleReuse(t *testing.T) {
	tab := newTable()
	now := time.Now()
	f := tab.account(tcpPkt(local, remote, 0, flagSYN), true, now)
	tab.resolveNow(f, func(flowKey, bool) resolution { return resolution{info: info(11)} })
	tab.account(tcpPkt(local, remote, 50, flagACK|flagFIN), true, now)
	tab.account(peerAck(local, remote), false, now)
	g := tab.account(tcpPkt(local, remote, 0, flagSYN), true, now)
	if g == nil || g == f {
		t.Fatal("SYN on a closed flow did not start a new flow")
	}
	tab.resolveNow(g, func(flowKey, bool) resolution { return resolution{info: info(12)} })
	tab.account(tcpPkt(local, remote, 70, flagACK), true, now)
	tab.account(peerAck(local, remote), false, now)
	s := tab.snapshot(now)
	got := map[int]uint64{}
	for _, p := range s.Processes {
		got[p.PID] = p.TxBytes
	}
	if got[11] != 50 || got[12] != 70 {
		t.Errorf("bytes per pid %v; want 11:50 12:70", got)
	}
}

// A hint (SYN from the low-latency socket) creates the flow without
// counting; the ring's copy of the packet is then counted once.
func TestTableHint(t *testing.T) {
	tab := newTable()
	now := time.Now()
	syn := tcpPkt(local, remote, 0, flagSYN)
	f := tab.hint(syn, true, now)
	if f == nil {
		t.Fatal("hint did not create the flow")
	}
	tab.resolveNow(f, func(flowKey, bool) resolution { return resolution{info: info(5)} })
	if g := tab.hint(syn, true, now); g != nil {
		t.Error("second hint for a live flow created another")
	}
	if g := tab.account(syn, true, now); g != nil {
		t.Error("ring copy of the hinted SYN created another flow")
	}
	s := tab.snapshot(now)
	if len(s.Processes) != 1 || s.Processes[0].TxPackets != 1 || s.Total.TxPackets != 1 {
		t.Errorf("snapshot %+v", s)
	}
	if tab.hint(&packet{proto: protoUDP, src: local, dst: remote}, true, now) != nil {
		t.Error("hint accepted a UDP packet")
	}
}

// A pid reused by a new process is a new process; the old one is exited.
func TestTablePIDReuse(t *testing.T) {
	tab := newTable()
	now := time.Now()
	f := tab.account(tcpPkt(local, remote, 10, flagSYN), true, now)
	tab.account(peerAck(local, remote), false, now)
	tab.resolveNow(f, func(flowKey, bool) resolution { return resolution{info: info(3)} })
	other := netip.MustParseAddrPort("10.0.0.1:40001")
	g := tab.account(tcpPkt(other, remote, 20, flagSYN), true, now)
	tab.account(peerAck(other, remote), false, now)
	reused := info(3)
	reused.StartTime++
	tab.resolveNow(g, func(flowKey, bool) resolution { return resolution{info: reused} })
	s := tab.snapshot(now.Add(drainMax))
	var old, cur *backends.ProcessStats
	for i, p := range s.Processes {
		if p.StartTime == info(3).StartTime {
			old = &s.Processes[i]
		} else {
			cur = &s.Processes[i]
		}
	}
	if old == nil || cur == nil || !old.Exited || cur.Exited || old.TxBytes != 10 || cur.TxBytes != 20 {
		t.Errorf("processes %+v", s.Processes)
	}
}
