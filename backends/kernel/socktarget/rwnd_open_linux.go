//go:build linux

package socktarget

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Open connections. The clamp program (rwnd.c) sets SO_RCVBUF and
// TCP_WINDOW_CLAMP when a connection is established, and both would stay
// for the connection's life: SO_RCVBUF also locks receive buffer
// autotuning (SOCK_RCVBUF_LOCK), so a download whose limit was removed kept
// a window sized for the old limit. What a socket got is kept with it
// (rwnd_socks, socket storage); when the limit changes or goes, the
// tagger reaches the target's clamped sockets through copies of their
// descriptors (pidfd_getfd(2), the target's processes' /proc/PID/fd) and
// re-clamps them to the new limit or undoes the clamp: SO_BUF_LOCK clears
// the lock SO_RCVBUF set (bpf_setsockopt cannot), and the window clamp goes
// back to the largest window (TCP_WINDOW_CLAMP 0 is refused on a connected
// socket); autotuning then grows the buffer, and the clamp with it, as it
// does on a connection never clamped.

// rwnd_sock.rcvbuf: 1 when the clamp set SO_RCVBUF (and so locked
// autotuning; undoing the clamp unlocks it), 2 when the application had
// locked the buffer itself before a clamp adopted the open connection; and
// the bit recSndbuf when the send clamp set SO_SNDBUF (snd_linux.go).
const (
	rcvbufClamp = 1
	rcvbufApp   = 2
	recSndbuf   = 4
)

// maxOpenSockets bounds the sockets one walk looks at.
const maxOpenSockets = 4096

// unclampedWindow is the window clamp an undone clamp gets: the largest
// window TCP can advertise (65535 << 14).
const unclampedWindow = 1 << 30

// adjustOpenLocked re-clamps the open connections of the target numbered
// num to c, for a shaper the ones that got no clamp yet (open before the
// limit) included, or undoes the clamp of the ones that got one when c's
// rate is 0, and returns how many it changed. Connections it adopted are
// waited for (drainOffered) before it returns.
func (t *Tagger) adjustOpenLocked(num uint32, c clampOf, pids []int) (int, error) {
	if t.rw.objs == nil {
		return 0, nil
	}
	m := t.rw.objs.RwndSocks
	var adopted adoption
	n, err := eachSocket(pids, maxOpenSockets, time.Time{}, func(dup int) (bool, error) {
		var s rwndRwndSock
		if m.Lookup(uint32(dup), &s) == nil {
			if s.Target != num {
				return false, nil // another target's
			}
			return true, adjustSocket(m, dup, &s, c)
		}
		if c.rate == 0 || !c.shaper || !adoptable(dup, &s, num) {
			return false, nil // not clamped, and not to be
		}
		if err := adjustSocket(m, dup, &s, c); err != nil {
			return true, err
		}
		adopted.keep(dup, s.Window)
		return true, nil
	})
	adopted.wait(func(info *unix.TCPInfo, c offered) bool {
		return info.Rcv_wnd <= c.win+2*max(info.Rcv_mss, 536)
	})
	if err != nil {
		return n, fmt.Errorf("receive window of open connections of target %d: %w", num, err)
	}
	return n, nil
}

// AdoptDrain bounds how long adopting open connections waits for them.
// A clamp cannot take back the window a connection was offered before (TCP
// does not shrink a window): a download running free when its limit comes
// may still send megabytes up to the old window's edge, which, reaching
// the shaper's queue (100 ms at the limit), overflowed it — the receiver
// then got nothing for 0.6–0.9 s (the sender in retransmission timeouts)
// and the held data at once (2 MB/s limit on a free-running download, the
// helper bench: time to within ±5 % 1.0 s median, 2.0 s max, 1 of 5 never).
// Waiting until the offered window is down to the clamp — at full speed a
// few milliseconds — before the shaper is installed (the tc backend clamps
// first) keeps those megabytes out of its queue: 87 ms median, 100 ms max
// (20-ms wait), 109 / 761 ms (5-ms wait).
var AdoptDrain = 30 * time.Millisecond

// maxDrainWait bounds the connections one adoption waits for.
const maxDrainWait = 64

// offered is an adopted connection (a descriptor of it) and its clamp.
type offered struct {
	fd  int
	win uint32
}

// adoption holds copies of the descriptors of the connections an adoption
// waits for (at most maxDrainWait).
type adoption struct{ conns []offered }

// keep has the adoption wait for dup's connection, clamped to win.
func (a *adoption) keep(dup int, win uint32) {
	if len(a.conns) >= maxDrainWait {
		return
	}
	if fd, err := unix.Dup(dup); err == nil {
		a.conns = append(a.conns, offered{fd, win})
	}
}

// wait is drainOffered over the kept connections (at most AdoptDrain),
// whose copies it then closes.
func (a *adoption) wait(drained func(*unix.TCPInfo, offered) bool) {
	drainOffered(a.conns, AdoptDrain, drained)
	for _, c := range a.conns {
		unix.Close(c.fd)
	}
	a.conns = nil
}

// drainOffered waits, at most d, until drained says so of each connection
// still established: for a receive clamp, its advertised window
// (tcpi_rcv_wnd: what is left of the window it offered) is down to the
// clamp and two segments — a kernel without tcpi_rcv_wnd (before 6.2)
// reads 0 there, and nothing is waited for.
func drainOffered(conns []offered, d time.Duration, drained func(*unix.TCPInfo, offered) bool) {
	for deadline := time.Now().Add(d); len(conns) > 0 && time.Now().Before(deadline); {
		var left []offered // not conns[:0]: the caller closes what it passed
		for _, c := range conns {
			info, err := unix.GetsockoptTCPInfo(c.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
			if err == nil && info.State == unix.BPF_TCP_ESTABLISHED && !drained(info, c) {
				left = append(left, c)
			}
		}
		conns = left
		if len(conns) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// unclampRecorded undoes the clamps of dup when m records one.
func unclampRecorded(m *ebpf.Map, dup int) (bool, error) {
	var s rwndRwndSock
	if m.Lookup(uint32(dup), &s) != nil {
		return false, nil
	}
	if s.Rcvbuf&recSndbuf != 0 {
		if err := undoSend(m, dup, &s); err != nil {
			return true, err
		}
		if s.Window == 0 {
			return true, nil // it had no receive clamp
		}
	}
	return true, adjustSocket(m, dup, &s, clampOf{})
}

// adjustSocket re-clamps the connection fd (which got s) to c, or undoes
// its clamp when c's rate is 0, and records what it has now.
func adjustSocket(m *ebpf.Map, fd int, s *rwndRwndSock, c clampOf) error {
	rate := c.rate
	win := uint32(unclampedWindow)
	lock := false
	send := s.Rcvbuf & recSndbuf // the send clamp's, kept as it is
	s.Rcvbuf &^= recSndbuf
	appLocked := s.Rcvbuf == rcvbufApp
	if rate != 0 {
		win = ReceiveWindow(rate, time.Duration(s.RttUs)*time.Microsecond, c.shaper)
		lock = win <= RwndBufMax && !appLocked
	}
	if lock {
		if err := lockRcvbuf(fd, win); err != nil {
			return err
		}
	} else if s.Rcvbuf == rcvbufClamp {
		if err := unlockRcvbuf(fd); err != nil {
			return err
		}
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP, int(win)); err != nil {
		return fmt.Errorf("TCP_WINDOW_CLAMP: %w", err)
	}
	switch {
	case rate == 0 && send == 0:
		return m.Delete(uint32(fd))
	case rate == 0:
		s.Window, s.Rcvbuf = 0, 0 // the send clamp stays recorded
	case appLocked:
		s.Window = win
	case lock:
		s.Window, s.Rcvbuf = win, rcvbufClamp
	default:
		s.Window, s.Rcvbuf = win, 0
	}
	s.Rcvbuf |= send
	return m.Update(uint32(fd), s, ebpf.UpdateAny)
}

// lockRcvbuf stops autotuning from raising the window clamp of fd again:
// SO_RCVBUF locks the buffer size, set to at least twice win (as at the
// handshake) but never below what the buffer has now: a connection lowered
// from a higher limit was already offered its old window, which a clamp
// cannot take back, and what the peer sends into it must still fit (a
// first version that shrank the buffer saw one ebpf_cgroup download stall
// at 0.03 MB/s after 1 → 10 → 1 MB/s, in 1 of 2 runs; not seen in 8 runs
// since). SO_RCVBUFFORCE passes net.core.rmem_max (the helper is root);
// without the privilege SO_RCVBUF caps it there.
func lockRcvbuf(fd int, win uint32) error {
	val := int(win)
	if cur, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		val = max(val, cur/2) // the kernel doubles what is set
	}
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, val)
	if errors.Is(err, unix.EPERM) {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, val)
	}
	if err != nil {
		return fmt.Errorf("SO_RCVBUF: %w", err)
	}
	return nil
}

// unlockRcvbuf lets autotuning size fd's receive buffer again: SO_BUF_LOCK
// (Linux 5.14) clears the lock setting SO_RCVBUF left, keeping the send
// buffer's.
func unlockRcvbuf(fd int) error {
	locks, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK)
	if err != nil {
		return fmt.Errorf("read SO_BUF_LOCK: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK, locks&^unix.SOCK_RCVBUF_LOCK); err != nil {
		return fmt.Errorf("clear SO_BUF_LOCK: %w", err)
	}
	return nil
}

// adoptable says whether fd, a socket of the target numbered num with no
// clamp yet, is a connected TCP socket to clamp, and fills s as the clamp
// program would have at its handshake (the round trip from tcp_info now).
// A connection that was open at full speed when its limit came keeps an
// autotuned window of megabytes: the shaper's queue overflows again and
// again, and the receiver gets stalls, then the dropped data late in
// bursts over the limit. A receive buffer the application locked itself
// stays as it set it (the clamp then sets only the window, and undoing it
// unlocks nothing).
func adoptable(fd int, s *rwndRwndSock, num uint32) bool {
	if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || proto != unix.IPPROTO_TCP {
		return false
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil || info.State != unix.BPF_TCP_ESTABLISHED {
		return false
	}
	*s = rwndRwndSock{Target: num, RttUs: min(info.Rtt, 2_000_000)}
	if locks, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK); err != nil || locks&unix.SOCK_RCVBUF_LOCK != 0 {
		s.Rcvbuf = rcvbufApp // adjustSocket leaves the buffer alone
	}
	return true
}
