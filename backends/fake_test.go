package backends_test

import (
	"net/netip"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/backendtest"
)

// The fakes run the same conformance suite as the real backends, so tests
// that rely on them rely on conforming behaviour.
func TestFakeThrottlersConform(t *testing.T) {
	target := func(t *testing.T) backends.Target { return backends.Target{ID: "pid-42", PIDs: []int{42}} }
	t.Run("upload", func(t *testing.T) {
		backendtest.RunThrottler(t, backendtest.ThrottlerHarness{
			New:    func(t *testing.T) backends.Throttler { return backends.NewFakeUpload() },
			Target: target, Placer: backends.NewFakePlacer(),
		})
	})
	t.Run("download", func(t *testing.T) {
		backendtest.RunThrottler(t, backendtest.ThrottlerHarness{
			New:    func(t *testing.T) backends.Throttler { return backends.NewFakeDownload() },
			Target: target,
		})
	})
}

func TestFakeMonitorConforms(t *testing.T) {
	var m *backends.FakeMonitor
	backendtest.RunMonitor(t, backendtest.MonitorHarness{
		New: func(t *testing.T) backends.MonitorBackend { m = backends.NewFakeMonitor(); return m },
		Traffic: func(t *testing.T, n uint64) int {
			m.Add(backends.ProcessInfo{PID: 77, Comm: "curl"}, backends.Counters{RxBytes: n})
			return 77
		},
	})
}

func TestFakeMonitorReportsExitedOnce(t *testing.T) {
	m := backends.NewFakeMonitor()
	m.Init()
	m.Add(backends.ProcessInfo{PID: 5}, backends.Counters{TxBytes: 10}, backends.Conn{Proto: backends.TCP, Remote: netip.MustParseAddrPort("1.1.1.1:443")})
	m.Exit(5)
	s, _ := m.Update()
	if len(s.Processes) != 1 || !s.Processes[0].Exited || s.Total.TxBytes != 10 {
		t.Fatalf("first update: %+v", s)
	}
	s, _ = m.Update()
	if len(s.Processes) != 0 {
		t.Fatalf("exited process reported twice: %+v", s)
	}
}

func TestIsLocal(t *testing.T) {
	for addr, local := range map[string]bool{
		"127.0.0.1": true, "10.1.2.3": true, "192.168.1.1": true, "172.16.0.1": true, "169.254.1.1": true,
		"::1": true, "fe80::1": true, "fd77::2": true, "::ffff:10.0.0.1": true,
		"8.8.8.8": false, "2001:4860::8888": false, "::ffff:1.1.1.1": false, "100.64.0.1": false,
	} {
		if got := backends.IsLocal(netip.MustParseAddr(addr)); got != local {
			t.Errorf("IsLocal(%s) = %v; want %v", addr, got, local)
		}
	}
}
