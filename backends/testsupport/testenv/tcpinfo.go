//go:build linux

package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TCPCounter reads tcp_info of the TCP sockets in one namespace (sock_diag):
// what the kernel says a socket moved, unlike a sender's write count, which
// runs ahead of the wire by a whole send buffer.
type TCPCounter struct {
	h *netlink.Handle
}

// NewTCPCounter opens sock_diag in the named namespace (closed at cleanup).
func NewTCPCounter(t testing.TB, ns string) *TCPCounter {
	t.Helper()
	h, err := netns.GetFromPath(Path(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	d, err := netlink.NewHandleAt(h, unix.NETLINK_INET_DIAG)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return &TCPCounter{h: d}
}

// Bytes sums, over the TCP sockets pids hold, the payload the peer
// acknowledged (sent) or the payload received (!sent).
func (c *TCPCounter) Bytes(t testing.TB, sent bool, pids ...int) uint64 {
	t.Helper()
	n, err := c.Read(sent, pids...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Read is Bytes for goroutines other than the test's: it returns the error.
func (c *TCPCounter) Read(sent bool, pids ...int) (uint64, error) {
	each, err := c.ReadEach(sent, pids...)
	var sum uint64
	for _, n := range each {
		sum += n
	}
	return sum, err
}

// ReadEach is Read for each pid apart, from one sock_diag dump per address
// family, so the pids' figures are of the same moment.
func (c *TCPCounter) ReadEach(sent bool, pids ...int) ([]uint64, error) {
	owner := map[uint64]int{}
	for i, p := range pids {
		for ino := range SocketInodes([]int{p}) {
			owner[ino] = i
		}
	}
	out := make([]uint64, len(pids))
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := c.h.SocketDiagTCPInfo(fam)
		if err != nil {
			return nil, fmt.Errorf("sock_diag: %w", err)
		}
		for _, s := range socks {
			if s.InetDiagMsg == nil || s.TCPInfo == nil {
				continue
			}
			i, ok := owner[uint64(s.InetDiagMsg.INode)]
			if !ok {
				continue
			}
			if sent {
				out[i] += s.TCPInfo.Bytes_acked
			} else {
				out[i] += s.TCPInfo.Bytes_received
			}
		}
	}
	return out, nil
}

// Rates waits about d and returns each pid's TCP payload rate (B/s) over
// it, sent or received: both readings take every pid at once and are
// stamped with the middle of the read, so a slow read (a loaded machine)
// neither stretches one pid's window nor shortens the time divided by.
// A pid whose reading went down (a socket closed) gets 0.
func (c *TCPCounter) Rates(t testing.TB, sent bool, d time.Duration, pids ...int) []float64 {
	t.Helper()
	read := func() ([]uint64, time.Time) {
		t0 := time.Now()
		n, err := c.ReadEach(sent, pids...)
		if err != nil {
			t.Fatal(err)
		}
		return n, t0.Add(time.Since(t0) / 2)
	}
	b0, t0 := read()
	time.Sleep(d)
	b1, t1 := read()
	out := make([]float64, len(pids))
	for i := range pids {
		if b1[i] >= b0[i] {
			out[i] = float64(b1[i]-b0[i]) / t1.Sub(t0).Seconds()
		}
	}
	return out
}

// Poll reads the pids' bytes (as Bytes) every interval until stop is
// closed and returns the readings as samples (T since the first reading,
// Total, Bytes since the previous one), like a ctload client's reports but
// as the kernel counts them.
func (c *TCPCounter) Poll(sent bool, interval time.Duration, stop <-chan struct{}, pids ...int) func() []Sample {
	var mu sync.Mutex
	var samples []Sample
	start := time.Now()
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var last uint64
		for {
			// A reading below the last: the socket closed as the
			// process exited; readings stay monotonic.
			// A reading is stamped with the middle of the read (a slow
			// read stamped at its end made the next window look short).
			t0 := time.Since(start)
			if n, err := c.Read(sent, pids...); err == nil && n >= last {
				mu.Lock()
				samples = append(samples, Sample{T: (t0 + time.Since(start)).Seconds() / 2, Bytes: n - min(n, last), Total: n})
				mu.Unlock()
				last = n
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() []Sample {
		mu.Lock()
		defer mu.Unlock()
		return append([]Sample(nil), samples...)
	}
}

// Rate waits d and returns the pids' TCP payload rate (B/s) over it, sent
// or received.
func (c *TCPCounter) Rate(t testing.TB, sent bool, d time.Duration, pids ...int) float64 {
	t.Helper()
	t0 := time.Now()
	b0 := c.Bytes(t, sent, pids...)
	time.Sleep(d)
	b1 := c.Bytes(t, sent, pids...)
	if b1 < b0 {
		return 0 // a socket closed in between
	}
	return float64(b1-b0) / time.Since(t0).Seconds()
}

// SocketInodes reads the socket inodes pids hold from /proc/PID/fd (procnet
// has the product's version; its tests import this package).
func SocketInodes(pids []int) map[uint64]bool {
	out := map[uint64]bool{}
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if n, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
				if i, err := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 64); err == nil {
					out[i] = true
				}
			}
		}
	}
	return out
}

// MeanSince reads count now and returns a function giving its mean rate
// per second since then. Read from the moment a limit is in place, a
// counter of in-order bytes (tcp_info, what an application read) holds the
// limit whatever its windows show: data a limiter passed behind a dropped
// segment is counted when the hole fills, so a stall's bytes land in a
// later window, but no byte counted after this moment passed before it.
func MeanSince(count func() uint64) func() float64 {
	b0, t0 := count(), time.Now()
	return func() float64 { return float64(count()-b0) / time.Since(t0).Seconds() }
}
