//go:build linux

package socktarget

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
)

// The send clamp (rwnd.c's snd_clamps) is the receive clamp's mirror for
// an upload shaper (tc_htb): a TCP connection of a target with an upload
// limit gets, once established, a send buffer of SndTime at the limit
// plus what the limit sends over its round trip (SendBuffer), which caps
// what TCP has in flight below the shaper's queue. The shaper sits behind
// a redirect to an IFB, which detaches packets from their socket, so
// without it TCP fills the queue in slow start, loses its tail and the
// receiver gets the held data at once a second later: an iperf3 upload
// under a rule set before it started ran 0.88 then 1.19 × the limit once
// in 9 runs, and 0.817–1.077 in 12 more. SO_SNDBUF also locks send buffer
// autotuning; a limit change sets the new buffer on the target's open
// clamped connections, and removing the limit clears the lock
// (SO_BUF_LOCK), as the receive clamp does.

// SndTime is the send buffer's time at the limit (SendBuffer). Measured
// (iperf3 upload under 1 MB/s set before it starts, 3-s runs, 3 each): at
// 50 ms the class's queue still overflowed (~675 retransmitted segments a
// run, seconds 0.98, 1.11, 0.98 ×); at 25 ms 60–510 and 1.05, 1.01–1.05,
// 0.98; at 10 ms 3 and 1.048, 1.049, 0.983 (the first seconds' 5 % is the
// HTB class's initial burst, seen without any clamp too).
var SndTime = 10 * time.Millisecond

// SendBuffer returns the send buffer (bytes, as given to SO_SNDBUF) of a
// connection with a round trip of rtt under an upload limit of rate.
func SendBuffer(rate backends.Rate, rtt time.Duration) uint32 {
	return uint32(min(float64(baseWindow(rate, SndTime))+float64(rate)*rtt.Seconds(), 1<<30))
}

// ClampSend makes the TCP connections the target numbered num opens from
// now on get, once established, the send buffer SendBuffer gives for an
// upload limit of rate; its open connections (held by pids) that got one
// are set to the new rate before it returns. A rate of 0 is UnclampSend.
func (t *Tagger) ClampSend(num uint32, rate backends.Rate, pids []int) error {
	if rate == 0 || RwndTime <= 0 {
		return t.UnclampSend(num, pids)
	}
	if num == 0 {
		return errors.New("clamp send buffer: target has no tag number")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.loadRwndLocked(); err != nil {
		return err
	}
	if err := t.rw.objs.SndClamps.Put(num, rwndSndClamp{Rate: uint64(rate), Window: baseWindow(rate, SndTime)}); err != nil {
		return fmt.Errorf("clamp send buffer of target %d: %w", num, err)
	}
	prev, had := t.rw.snd[num]
	t.rw.snd[num] = rate
	if err := t.attachClampLocked(); err != nil {
		_ = t.unclampSendLocked(num, nil)
		return err
	}
	if !had || prev != rate {
		return t.adjustSendLocked(num, rate, pids, !had)
	}
	return nil
}

// UnclampSend stops clamping the send buffer of the target's new
// connections and lets autotuning size the buffers of its open ones again.
func (t *Tagger) UnclampSend(num uint32, pids []int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unclampSendLocked(num, pids)
}

func (t *Tagger) unclampSendLocked(num uint32, pids []int) error {
	if t.rw.objs == nil {
		return nil
	}
	if _, ok := t.rw.snd[num]; !ok {
		return nil
	}
	delete(t.rw.snd, num)
	_ = t.rw.objs.SndClamps.Delete(num)
	err := t.adjustSendLocked(num, 0, pids, false)
	return errors.Join(err, t.detachIdleLocked())
}

// adjustSendLocked sets the send buffer of the open connections of the
// target numbered num that got a send clamp to rate's, or undoes their
// clamp when rate is 0. With adopt (a new limit) it also gives the ones
// with no send clamp yet (open before the limit) the send buffer of rate,
// and waits (at most AdoptDrain) until what each had queued is down to
// it: a free-running upload holds megabytes in its socket, which the
// shaper's queue, behind the redirect that detaches packets from their
// socket, could not take (the tc backend installs the class after this).
// A send buffer the application set itself stays.
func (t *Tagger) adjustSendLocked(num uint32, rate backends.Rate, pids []int, adopt bool) error {
	m := t.rw.objs.RwndSocks
	var adopted adoption
	_, err := eachSocket(pids, maxOpenSockets, time.Time{}, func(dup int) (bool, error) {
		var s rwndRwndSock
		recorded := m.Lookup(uint32(dup), &s) == nil
		switch {
		case recorded && s.Target != num:
			return false, nil // another target's
		case recorded && s.Rcvbuf&recSndbuf != 0: // clamped before
			if rate == 0 {
				return true, undoSend(m, dup, &s)
			}
			return true, setSndbuf(dup, SendBuffer(rate, time.Duration(s.RttUs)*time.Microsecond))
		case !adopt || rate == 0 || (!recorded && !adoptable(dup, &s, num)):
			return false, nil // not clamped, and not to be
		}
		if locks, err := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_BUF_LOCK); err != nil || locks&unix.SOCK_SNDBUF_LOCK != 0 {
			return false, nil // the application's own send buffer
		}
		buf := SendBuffer(rate, time.Duration(s.RttUs)*time.Microsecond)
		if err := setSndbuf(dup, buf); err != nil {
			return true, err
		}
		s.Rcvbuf |= recSndbuf
		if err := m.Update(uint32(dup), &s, ebpf.UpdateAny); err != nil {
			return true, err
		}
		adopted.keep(dup, buf)
		return true, nil
	})
	adopted.wait(func(info *unix.TCPInfo, c offered) bool {
		// the kernel doubles what SO_SNDBUF sets
		return uint64(info.Notsent_bytes)+uint64(info.Unacked)*uint64(info.Snd_mss) <= 2*uint64(c.win)+2*uint64(info.Snd_mss)
	})
	if err != nil {
		return fmt.Errorf("send buffer of open connections of target %d: %w", num, err)
	}
	return nil
}

// setSndbuf sets fd's send buffer (which locks its autotuning).
// SO_SNDBUFFORCE passes net.core.wmem_max (the helper is root).
func setSndbuf(fd int, val uint32) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, int(val))
	if errors.Is(err, unix.EPERM) {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, int(val))
	}
	if err != nil {
		return fmt.Errorf("SO_SNDBUF: %w", err)
	}
	return nil
}

// undoSend lets autotuning size fd's send buffer again (SO_BUF_LOCK clears
// the lock SO_SNDBUF left, keeping the receive buffer's) and drops the
// send clamp from its record s, or the record when nothing else is in it.
func undoSend(m *ebpf.Map, fd int, s *rwndRwndSock) error {
	locks, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK)
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK, locks&^unix.SOCK_SNDBUF_LOCK)
	}
	if err != nil {
		return fmt.Errorf("clear the send buffer's SO_BUF_LOCK: %w", err)
	}
	s.Rcvbuf &^= recSndbuf
	if s.Window == 0 && s.Rcvbuf&^rcvbufApp == 0 { // nothing of a receive clamp left
		return m.Delete(uint32(fd))
	}
	return m.Update(uint32(fd), s, ebpf.UpdateAny)
}
