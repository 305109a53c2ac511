//go:build linux && !no_ebpf

package ebpf

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestIdleSegmentPasses: an upload segment the bucket would stop while
// nothing of its socket is in flight passes into debt instead of waiting
// for TCP's probe timer (no ACK is coming to retry it), as long as the debt
// stays under 200 ms of the rate (throttle.c, take). The test's own socket
// sends a first flight of 14,000 B (the initial window) that takes the
// bucket into debt, waits until it is acknowledged, then sends 1,000 B: at
// 100 kB/s (debt ~120 ms) that passes at once, at 20 kB/s (debt ~680 ms)
// it is stopped. The pacer is off: it would spread the first flight
// so the bucket never goes into debt.
func TestIdleSegmentPasses(t *testing.T) {
	requireEBPF(t)
	for _, c := range []struct {
		name   string
		rate   backends.Rate
		passes bool
	}{
		{"debt under 200 ms", 100_000, true},
		{"debt over 200 ms", 20_000, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := newUploadBed(t)
			s := newSink(t, u.bed)
			b := NewUpload(backends.Options{NetNS: testenv.Path(u.bed.Local)}).(uploadThrottler)
			b.pace = nil
			initThrottler(t, b)
			fd := dialFrom(t, u.bed.Local, u.bed.PeerIP, s.Port)
			tg := backends.Target{ID: "idle-test", Kind: backends.TargetProcess, PIDs: []int{os.Getpid()}}
			if err := b.SetLimit(tg, backends.Limit{Rate: c.rate}); err != nil {
				t.Fatal(err)
			}
			defer b.RemoveLimit(tg.ID)
			time.Sleep(20 * time.Millisecond) // a new bucket starts empty: 20 ms of tokens, so the first flight passes as usual
			send(t, fd, 14_000)
			if !testenv.WaitUntil(3*time.Second, func() bool {
				info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
				return err == nil && info.Unacked == 0 && info.Notsent_bytes == 0 && s.Total() == 14_000
			}) {
				t.Fatalf("the first flight was not acknowledged and received within 3 s (received %d B)", s.Total())
			}
			before, at := bucketIdle(t, b), time.Now()
			send(t, fd, 1_000)
			if !c.passes {
				time.Sleep(100 * time.Millisecond)
				if got, idle := s.Total(), bucketIdle(t, b)-before; got != 14_000 || idle != 0 {
					t.Fatalf("with 700 ms of debt the idle segment passed: received %d B, idle passes %d", got, idle)
				}
				return
			}
			if !testenv.WaitUntil(3*time.Second, func() bool { return s.Total() == 15_000 }) {
				t.Fatalf("the second write was not received within 3 s (received %d B)", s.Total())
			}
			t.Logf("the idle segment arrived within %v of the write", time.Since(at).Round(time.Millisecond))
			if idle := bucketIdle(t, b) - before; idle != 1 {
				t.Fatalf("idle passes %d, want 1", idle)
			}
		})
	}
}

// dialFrom connects a blocking TCP socket made in namespace ns to ip:port.
func dialFrom(t *testing.T, ns, ip string, port int) int {
	t.Helper()
	addr := netip.MustParseAddr(ip)
	if !addr.Is4() {
		t.Fatalf("dialFrom takes an IPv4 address, got %s", ip)
	}
	fd, err := procnet.SocketAt(testenv.Path(ns), unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.As4(), Port: port}); err != nil {
		t.Fatalf("connect to %s:%d: %v", ip, port, err)
	}
	return fd
}

func send(t *testing.T, fd, n int) {
	t.Helper()
	if w, err := unix.Write(fd, make([]byte, n)); err != nil || w != n {
		t.Fatalf("write %d B: wrote %d, %v", n, w, err)
	}
}

// bucketIdle sums the idle passes of b's buckets.
func bucketIdle(t *testing.T, b uploadThrottler) uint64 {
	t.Helper()
	var n uint64
	var k uint32
	var v throttleBucket
	it := b.objs.Buckets.Iterate()
	for it.Next(&k, &v) {
		n += v.Idle
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
