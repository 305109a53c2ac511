//go:build linux

package socktarget

import (
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestClampReceive: while a target has a download clamp, the TCP
// connections its processes open get the receive buffer and window clamp
// ReceiveClamp gives; a new limit re-clamps the open ones; after Unclamp
// the open ones are unclamped (largest window clamp, autotuning unlocked),
// new connections are not clamped and the program is detached.
func TestClampReceive(t *testing.T) {
	tg := testTagger(t, "rwnd")
	num, err := tg.Set(backends.Target{ID: "self", Kind: backends.TargetProcess, PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	const rate = 500_000 // a window below the 64 KiB a new connection starts with
	self := []int{os.Getpid()}
	if err := tg.ClampReceive(num, rate, self, true); err != nil {
		testenv.KernelLacks(t, "receive window clamp (sockops bpf_setsockopt)", err)
	}
	win := int(ReceiveClamp(rate, time.Millisecond)) // loopback: a round trip well below 1 ms
	if base := int(ReceiveClamp(rate, 0)); base != rate/20 || win != base+rate/1000 {
		t.Fatalf("ReceiveClamp(%d): %d with no round trip, %d at 1 ms", rate, base, win)
	}
	ln := loopbackListener(t)
	open := dial(t, ln.Addr().String())
	clamp, rcvbuf, _ := sockOpts(t, open)
	if clamp < rate/20 || clamp > win || rcvbuf < 2*clamp || rcvbuf > 2*win { // the kernel doubles SO_RCVBUF
		t.Errorf("clamped connection: window clamp %d, SO_RCVBUF %d, want %d–%d and twice that", clamp, rcvbuf, rate/20, win)
	}
	if n, failed := tg.ClampCounts(); n == 0 || failed != 0 {
		t.Errorf("clamp counts: %d set, %d failed", n, failed)
	}
	// A higher limit re-clamps the open connection: at 5 MB/s the window is above
	// RwndBufMax, so only a clamp, autotuning unlocked.
	const rate2 = 5_000_000
	if err := tg.ClampReceive(num, rate2, self, true); err != nil {
		t.Fatal(err)
	}
	win2 := int(ReceiveClamp(rate2, time.Millisecond))
	if clamp, _, locks := sockOpts(t, open); clamp < rate2/20 || clamp > win2 || locks&unix.SOCK_RCVBUF_LOCK != 0 {
		t.Errorf("open connection at %d B/s: window clamp %d (want %d–%d), buffer locks %#x", rate2, clamp, rate2/20, win2, locks)
	}
	if err := tg.ClampReceive(num, rate, self, true); err != nil {
		t.Fatal(err)
	}
	if clamp, rcvbuf, locks := sockOpts(t, open); clamp < rate/20 || clamp > win || rcvbuf < 2*clamp || locks&unix.SOCK_RCVBUF_LOCK == 0 {
		t.Errorf("open connection back at %d B/s: window clamp %d, SO_RCVBUF %d, buffer locks %#x", rate, clamp, rcvbuf, locks)
	}
	if err := tg.Unclamp(num, self); err != nil {
		t.Fatal(err)
	}
	if clamp, _, locks := sockOpts(t, open); clamp != unclampedWindow || locks&unix.SOCK_RCVBUF_LOCK != 0 {
		t.Errorf("open connection after Unclamp: window clamp %d, buffer locks %#x", clamp, locks)
	}
	if tg.rw.link != nil {
		t.Error("clamp program still attached with no clamp")
	}
	if clamp, rcvbuf, _ := sockOpts(t, dial(t, ln.Addr().String())); clamp <= win || rcvbuf <= 2*win {
		t.Errorf("connection after Unclamp: window clamp %d, SO_RCVBUF %d", clamp, rcvbuf)
	}
	// A policer's clamp: a connection with a round trip under RwndNear
	// (loopback) gets RwndTimePolicer at the limit, here the floor.
	if err := tg.ClampReceive(num, rate, self, false); err != nil {
		t.Fatal(err)
	}
	near := int(ReceiveWindow(rate, 0, false))
	if near != int(RwndFloor) {
		t.Fatalf("ReceiveWindow(%d, 0, policer) = %d, want the floor %d", rate, near, RwndFloor)
	}
	if clamp, rcvbuf, _ := sockOpts(t, dial(t, ln.Addr().String())); clamp < near || clamp > near+rate/1000 || rcvbuf < 2*clamp {
		t.Errorf("connection under a policer's clamp: window clamp %d (want %d–%d), SO_RCVBUF %d", clamp, near, near+rate/1000, rcvbuf)
	}
	if err := tg.Unclamp(num, self); err != nil {
		t.Fatal(err)
	}
}

// TestReceiveWindowRule: a shaper's window is RwndTime at the limit plus the
// round trip's worth; a policer's is the same from RwndNear up and
// RwndTimePolicer at the limit below it; both at least RwndFloor.
func TestReceiveWindowRule(t *testing.T) {
	const rate = 2_000_000
	for _, c := range []struct {
		rtt    time.Duration
		shaper bool
		want   uint32
	}{
		{0, true, 100_000},
		{500 * time.Microsecond, true, 101_000},
		{20 * time.Millisecond, true, 140_000},
		{0, false, 20_000},
		{500 * time.Microsecond, false, 21_000},
		{RwndNear, false, 102_000},
		{20 * time.Millisecond, false, 140_000},
	} {
		if got := ReceiveWindow(rate, c.rtt, c.shaper); got != c.want {
			t.Errorf("ReceiveWindow(%d, %v, shaper %v) = %d, want %d", rate, c.rtt, c.shaper, got, c.want)
		}
	}
	if got := ReceiveWindow(100_000, 0, false); got != RwndFloor {
		t.Errorf("ReceiveWindow at 100 kB/s, policer: %d, want the floor %d", got, RwndFloor)
	}
	if got := ReceiveClamp(rate, 0); got != ReceiveWindow(rate, 0, true) {
		t.Errorf("ReceiveClamp is not the shaper's window: %d", got)
	}
}

// loopbackListener accepts TCP connections on loopback and holds them
// until the test ends.
func loopbackListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // loopback only
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln
}

// dial connects to addr; the connection is closed when the test ends.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// sockOpts returns the connection's TCP_WINDOW_CLAMP, SO_RCVBUF and
// SO_BUF_LOCK.
func sockOpts(t *testing.T, c *net.TCPConn) (clamp, rcvbuf, locks int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var err1, err2, err3 error
	raw.Control(func(fd uintptr) {
		clamp, err1 = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP)
		rcvbuf, err2 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		locks, err3 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BUF_LOCK)
	})
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	return clamp, rcvbuf, locks
}

// TestClampSend: while a target has a send clamp, the TCP connections its
// processes open get the send buffer SendBuffer gives (autotuning locked);
// a new limit sets the open ones to it; UnclampSend unlocks them and drops
// their records, and new connections are not clamped.
func TestClampSend(t *testing.T) {
	tg := testTagger(t, "snd")
	num, err := tg.Set(backends.Target{ID: "self", Kind: backends.TargetProcess, PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	const rate = 1_000_000
	self := []int{os.Getpid()}
	if err := tg.ClampSend(num, rate, self); err != nil {
		testenv.KernelLacks(t, "send buffer clamp (sockops bpf_setsockopt)", err)
	}
	ln := loopbackListener(t)
	sndState := func(c *net.TCPConn) (sndbuf, locks int) {
		t.Helper()
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var err1, err2 error
		raw.Control(func(fd uintptr) {
			sndbuf, err1 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
			locks, err2 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BUF_LOCK)
		})
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		return sndbuf, locks
	}
	lo, hi := 2*int(SendBuffer(rate, 0)), 2*int(SendBuffer(rate, time.Millisecond)) // the kernel doubles SO_SNDBUF
	open := dial(t, ln.Addr().String())
	if buf, locks := sndState(open); buf < lo || buf > hi || locks&unix.SOCK_SNDBUF_LOCK == 0 {
		t.Errorf("clamped connection: SO_SNDBUF %d (want %d–%d), buffer locks %#x", buf, lo, hi, locks)
	}
	if n, failed := tg.ClampCounts(); n == 0 || failed != 0 {
		t.Errorf("clamp counts: %d set, %d failed", n, failed)
	}
	const rate2 = 4_000_000
	if err := tg.ClampSend(num, rate2, self); err != nil {
		t.Fatal(err)
	}
	lo2, hi2 := 2*int(SendBuffer(rate2, 0)), 2*int(SendBuffer(rate2, time.Millisecond))
	if buf, locks := sndState(open); buf < lo2 || buf > hi2 || locks&unix.SOCK_SNDBUF_LOCK == 0 {
		t.Errorf("open connection at %d B/s: SO_SNDBUF %d (want %d–%d), buffer locks %#x", rate2, buf, lo2, hi2, locks)
	}
	if err := tg.UnclampSend(num, self); err != nil {
		t.Fatal(err)
	}
	if _, locks := sndState(open); locks&unix.SOCK_SNDBUF_LOCK != 0 {
		t.Errorf("open connection after UnclampSend: buffer locks %#x", locks)
	}
	if tg.rw.link != nil {
		t.Error("clamp program still attached with no clamp")
	}
	if n := recordsOf(t, tg); n != 0 {
		t.Errorf("%d clamp records left after UnclampSend", n)
	}
	if _, locks := sndState(dial(t, ln.Addr().String())); locks&unix.SOCK_SNDBUF_LOCK != 0 {
		t.Errorf("connection after UnclampSend: buffer locks %#x", locks)
	}
}

// recordsOf counts the clamp records of the sockets this process holds.
func recordsOf(t *testing.T, tg *Tagger) int {
	t.Helper()
	n, err := eachSocket([]int{os.Getpid()}, maxOpenSockets, time.Time{}, func(dup int) (bool, error) {
		var s rwndRwndSock
		return tg.rw.objs.RwndSocks.Lookup(uint32(dup), &s) == nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
