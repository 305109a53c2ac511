//go:build linux

package socktarget

import (
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestClampReceive: while a target has a download clamp, the TCP
// connections its processes open get the receive buffer and window clamp
// ReceiveClamp gives; after Unclamp new connections are not clamped and the
// program is detached.
func TestClampReceive(t *testing.T) {
	tg := testTagger(t, "rwnd")
	num, err := tg.Set(backends.Target{ID: "self", Kind: backends.TargetProcess, PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	const rate = 500_000 // a window below the 64 KiB a new connection starts with
	if err := tg.ClampReceive(num, rate); err != nil {
		testenv.KernelLacks(t, "receive window clamp (sockops bpf_setsockopt)", err)
	}
	win := int(ReceiveClamp(rate, time.Millisecond)) // loopback: a round trip well below 1 ms
	if base := int(ReceiveClamp(rate, 0)); base != rate/20 || win != base+rate/1000 {
		t.Fatalf("ReceiveClamp(%d): %d with no round trip, %d at 1 ms", rate, base, win)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // loopback only
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	clamp, rcvbuf := dialOpts(t, ln.Addr().String())
	if clamp < rate/20 || clamp > win || rcvbuf < 2*clamp || rcvbuf > 2*win { // the kernel doubles SO_RCVBUF
		t.Errorf("clamped connection: window clamp %d, SO_RCVBUF %d, want %d–%d and twice that", clamp, rcvbuf, rate/20, win)
	}
	if n, failed := tg.ClampCounts(); n == 0 || failed != 0 {
		t.Errorf("clamp counts: %d set, %d failed", n, failed)
	}
	if err := tg.Unclamp(num); err != nil {
		t.Fatal(err)
	}
	if tg.rw.link != nil {
		t.Error("clamp program still attached with no clamp")
	}
	if clamp, rcvbuf := dialOpts(t, ln.Addr().String()); clamp <= win || rcvbuf <= 2*win {
		t.Errorf("connection after Unclamp: window clamp %d, SO_RCVBUF %d", clamp, rcvbuf)
	}
}

// dialOpts connects to addr and returns the connection's TCP_WINDOW_CLAMP
// and SO_RCVBUF.
func dialOpts(t *testing.T, addr string) (clamp, rcvbuf int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var err1, err2 error
	raw.Control(func(fd uintptr) {
		clamp, err1 = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP)
		rcvbuf, err2 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return clamp, rcvbuf
}
