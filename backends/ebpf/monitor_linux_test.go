//go:build linux && !no_ebpf

package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/backendtest"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// requireEBPF skips (fails under CI) without root and reports a kernel that
// lacks what the backends need, which the probe proves.
func requireEBPF(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	if err := probeKernel(); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			testenv.KernelLacks(t, "cgroup BPF", err)
		}
		t.Fatal(err)
	}
}

func newBedMonitor(t *testing.T, bed *testenv.Bed) backends.MonitorBackend {
	t.Helper()
	m := NewMonitor(backends.Options{NetNS: testenv.Path(bed.Local), Tag: bed.Local})
	if err := m.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return m
}

// sendBytes makes one ctload process in the bed's local namespace upload n
// payload bytes to addr and returns its pid and its last report (Total: the
// bytes it wrote; Retrans: what TCP sent again, final with -drain).
func sendBytes(t *testing.T, bed *testenv.Bed, addr string, n uint64, extra ...string) (int, testenv.Sample) {
	t.Helper()
	args := append([]string{"-bytes", strconv.FormatUint(n, 10)}, extra...)
	l := bed.StartClient(bed.Local, "send", addr, 20*time.Second, time.Second, args...)
	s := l.Wait()
	if len(s) == 0 {
		t.Fatalf("ctload reported nothing: %s", l.Stderr())
	}
	return l.PID, s[len(s)-1]
}

func TestMonitorConformance(t *testing.T) {
	requireEBPF(t)
	bed := testenv.NewBed(t)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	backendtest.RunMonitor(t, backendtest.MonitorHarness{
		New: func(t *testing.T) backends.MonitorBackend {
			return NewMonitor(backends.Options{NetNS: testenv.Path(bed.Local)})
		},
		Traffic: func(t *testing.T, n uint64) int {
			pid, _ := sendBytes(t, bed, bed.PeerIP+":5201", n)
			return pid
		},
		MinShare: 0.995,
	})
}

// waitBytes polls the monitor until pid has at least want bytes in the
// direction dir ("tx" or "rx") or the deadline passes; it returns the
// process's last stats.
func waitBytes(t *testing.T, m backends.MonitorBackend, pid int, dir string, want uint64) backends.ProcessStats {
	t.Helper()
	var last backends.ProcessStats
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s, err := m.Update()
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		for _, p := range s.Processes {
			if p.PID == pid {
				last = p
			}
		}
		got := last.TxBytes
		if dir == "rx" {
			got = last.RxBytes
		}
		if got >= want {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// TestMonitorFlows checks exact attribution of TCP and UDP over IPv4 and
// IPv6, a dual-stack socket carrying IPv4, and download bytes.
func TestMonitorFlows(t *testing.T) {
	requireEBPF(t)
	bed := testenv.NewBed(t)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	bed.StartServer(bed.Peer, "sink", "[::]:5202", true)
	bed.StartServer(bed.Peer, "source", "[::]:5203", false)
	m := newBedMonitor(t, bed)
	const n = 2 << 20
	for _, tc := range []struct {
		name, addr string
		extra      []string
		proto      backends.Proto
		remote     string
	}{
		{"tcp4", bed.PeerIP + ":5201", nil, backends.TCP, bed.PeerIP},
		{"tcp6", "[" + bed.PeerIP6 + "]:5201", nil, backends.TCP, bed.PeerIP6},
		{"dualstack-v4mapped", "[::ffff:" + bed.PeerIP + "]:5201", nil, backends.TCP, bed.PeerIP},
		{"udp4", bed.PeerIP + ":5202", []string{"-udp", "-size", "1200"}, backends.UDP, bed.PeerIP},
		{"udp6", "[" + bed.PeerIP6 + "]:5202", []string{"-udp", "-size", "1200"}, backends.UDP, bed.PeerIP6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := tc.extra
			if tc.proto == backends.TCP {
				extra = append([]string{"-drain"}, extra...)
			}
			pid, last := sendBytes(t, bed, tc.addr, n, extra...)
			sent := last.Total
			p := waitBytes(t, m, pid, "tx", sent)
			// Exact, except that a segment TCP sent again (CI: 1.6 % on a
			// busy machine) passes the egress program twice.
			if tc.proto == backends.TCP && (p.TxBytes < sent || p.TxBytes > sent+last.Retrans+sent/1000) {
				t.Errorf("pid %d: counted %d tx bytes; ctload wrote %d, TCP retransmitted %d", pid, p.TxBytes, sent, last.Retrans)
			}
			if tc.proto == backends.UDP && p.TxBytes < sent*995/1000 {
				t.Errorf("pid %d: counted %d tx bytes; ctload wrote %d", pid, p.TxBytes, sent)
			}
			found := false
			for _, c := range p.Conns {
				if c.Proto == tc.proto && c.Remote.Addr() == netip.MustParseAddr(tc.remote) && c.TxBytes > 0 {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s connection to %s among %+v", tc.proto, tc.remote, p.Conns)
			}
			// The kernel gives comm; exe and cmdline come from /proc, which a
			// process that exits within milliseconds may not leave time for.
			if p.Comm != "ctload" || (p.Exe != "" && p.Exe != testenv.Ctload(t)) {
				t.Errorf("identity %+v; want comm ctload (and exe %s when known)", p.ProcessInfo, testenv.Ctload(t))
			}
		})
	}
	t.Run("download", func(t *testing.T) {
		l := bed.StartClient(bed.Local, "recv", bed.PeerIP+":5203", 20*time.Second, time.Second, "-bytes", strconv.Itoa(n))
		s := l.Wait()
		got := s[len(s)-1].Total
		p := waitBytes(t, m, l.PID, "rx", got)
		if p.RxBytes < got {
			t.Errorf("counted %d rx bytes; ctload read %d", p.RxBytes, got)
		}
	})
}

// TestMonitorShortProcesses runs 40 processes that each send 1 MB and exit
// at once: every one must be seen, with at least 99.5 % of all their bytes
// together (issue #13's attribution target) and at least 95 % of each
// one's. Upload counts what the peer acknowledged; the last ACKs of a
// process that exits at once may race its socket's teardown (once in CI at
// load ≈ 5: one process 1 020 568 of 1 048 576 bytes, 99.93 % in all).
func TestMonitorShortProcesses(t *testing.T) {
	requireEBPF(t)
	bed := testenv.NewBed(t)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	m := newBedMonitor(t, bed)
	sent := map[int]uint64{}
	var total uint64
	for i := 0; i < 40; i++ {
		pid, last := sendBytes(t, bed, bed.PeerIP+":5201", 1_000_000)
		n := last.Total
		sent[pid] = n
		total += n
	}
	got := map[int]uint64{}
	exited := map[int]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(exited) < len(sent) {
		s, err := m.Update()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range s.Processes {
			if _, ok := sent[p.PID]; ok {
				got[p.PID] = p.TxBytes
				if p.Exited {
					exited[p.PID] = true
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	var attributed uint64
	for pid, n := range sent {
		attributed += min(got[pid], n)
		if got[pid] < n {
			t.Logf("pid %d: %d of %d bytes", pid, got[pid], n)
		}
		if float64(got[pid]) < 0.95*float64(n) {
			t.Errorf("pid %d: %d of %d bytes, want at least 95 %%", pid, got[pid], n)
		}
	}
	share := float64(attributed) / float64(total)
	t.Logf("seen %d/40 processes, %.2f%% of %d bytes, %d reported exited", len(got), 100*share, total, len(exited))
	if share < 0.995 {
		t.Errorf("attributed %.2f%% of the bytes, want at least 99.5 %%", 100*share)
	}
	if len(got) != 40 {
		t.Errorf("saw %d of 40 processes", len(got))
	}
	if len(exited) != 40 {
		t.Errorf("%d of 40 processes reported as exited", len(exited))
	}
}

// TestMonitorExistingSocket attributes a connection that was open before
// the monitor started (resolved once through sock_diag and /proc).
func TestMonitorExistingSocket(t *testing.T) {
	requireEBPF(t)
	bed := testenv.NewBed(t)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	l := bed.StartClient(bed.Local, "send", bed.PeerIP+":5201", 6*time.Second, 200*time.Millisecond)
	t0 := time.Now()
	time.Sleep(500 * time.Millisecond)
	m := newBedMonitor(t, bed)
	tInit := time.Since(t0).Seconds()
	// The helper's engine calls Update every second; so does the test
	// while the connection runs.
	for i := 0; i < 4; i++ {
		if _, err := m.Update(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	all := l.Wait()
	after := all[len(all)-1].Total
	// The first report ctload made after Init (its clock starts after
	// ours): the monitor counted at least what the client wrote from then
	// on.
	var before uint64
	for _, s := range all {
		if s.T >= tInit {
			before = s.Total
			break
		}
	}
	p := waitBytes(t, m, l.PID, "tx", (after-before)*99/100)
	if p.TxBytes < (after-before)*99/100 {
		t.Fatalf("attributed %d bytes to the pre-existing connection; it moved at least %d after Init", p.TxBytes, after-before)
	}
	if p.Comm != "ctload" {
		t.Errorf("identity %+v", p.ProcessInfo)
	}
}

// TestMonitorNamespaceIsolation: traffic of another namespace is not
// counted (the programs see every namespace from the cgroup2 root).
func TestMonitorNamespaceIsolation(t *testing.T) {
	requireEBPF(t)
	mine := testenv.NewBed(t)
	other := testenv.NewBed(t)
	other.StartServer(other.Peer, "sink", "[::]:5201", false)
	m := newBedMonitor(t, mine)
	_, last := sendBytes(t, other, other.PeerIP+":5201", 4<<20)
	n := last.Total
	time.Sleep(200 * time.Millisecond)
	s, err := m.Update()
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.TxBytes+s.Total.RxBytes > n/100 {
		t.Fatalf("monitor of %s counted %+v while only %s carried %d bytes", mine.Local, s.Total, other.Local, n)
	}
}

func Example_monitor() {
	m := NewMonitor(backends.Options{})
	fmt.Println(m.Name(), m.Priority())
	// Output: ebpf best
}

// TestMonitorAcceptedSockets: connections a server accepts (sockets
// cgroup/sock_create never sees) are attributed to the server even when
// they are closed before the next Update (through the listener that
// accepted them).
func TestMonitorAcceptedSockets(t *testing.T) {
	requireEBPF(t)
	bed := testenv.NewBed(t)
	srv := bed.StartServer(bed.Local, "sink", "[::]:5201", false)
	m := newBedMonitor(t, bed)
	var sent uint64
	for i := 0; i < 10; i++ {
		l := bed.StartClient(bed.Peer, "send", bed.LocalIP+":5201", 10*time.Second, time.Second, "-bytes", "1000000")
		s := l.Wait()
		sent += s[len(s)-1].Total
	}
	p := waitBytes(t, m, srv.Process.Pid, "rx", sent)
	t.Logf("server pid %d: %d of %d bytes", srv.Process.Pid, p.RxBytes, sent)
	if p.RxBytes < sent {
		t.Errorf("server %d credited with %d of the %d bytes its accepted connections received", srv.Process.Pid, p.RxBytes, sent)
	}
}
