//go:build linux

package socktarget_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestClampFollowsLimit: a download under an app rule set before it starts
// gets a receive window clamped to the limit; a new limit re-clamps the
// open connection before the call returns (1 → 10 → 1 MB/s); removing the
// limit undoes the clamp before Remove returns (window clamp back to the
// largest, SO_RCVBUF's lock on autotuning gone), and the download is back
// above 5 × the old limit within 2 s. Receiver-side figures, both pairs.
func TestClampFollowsLimit(t *testing.T) {
	requireTagger(t)
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			bed, m, ct := sourceBed(t, p)
			const low, high = 1_000_000, 10_000_000
			id := appRule(t, m, ct, backends.Limits{Down: backends.Limit{Rate: low}})
			load := testenv.StartLoad(t, bed.Command(bed.Local, ct, "client", "-mode", "recv",
				"-connect", bed.PeerIP+":5201", "-duration", "12s", "-interval", "250ms"))
			counter := testenv.NewTCPCounter(t, bed.Local)
			// The engine applies an app's rule again with its processes.
			app := backends.Target{ID: id, Kind: backends.TargetApp, Exe: ct, PIDs: []int{load.PID}}
			limit := func(rate backends.Rate) {
				t.Helper()
				if err := m.Apply(app, backends.Limits{Down: backends.Limit{Rate: rate}}); err != nil {
					t.Fatal(err)
				}
			}
			limit(low)
			time.Sleep(500 * time.Millisecond)
			checkClamp(t, "at 1 MB/s", load.PID, low, p.name == "tc")
			_, _, clampedBuf := sockState(t, load.PID)

			limit(high)
			checkClamp(t, "raised to 10 MB/s", load.PID, high, p.name == "tc")
			time.Sleep(500 * time.Millisecond)
			if got := counter.Rate(t, false, time.Second, load.PID); got < 0.5*high || got > 1.45*high {
				t.Errorf("raised to %s: the download runs at %s", mb(high), mb(got))
			}
			limit(low)
			checkClamp(t, "back at 1 MB/s", load.PID, low, p.name == "tc")
			time.Sleep(time.Second)
			lowRate := counter.Rate(t, false, time.Second, load.PID)

			t0 := time.Now()
			if err := m.Remove(id); err != nil {
				t.Fatal(err)
			}
			took := time.Since(t0)
			checkUnclamped(t, "after Remove", load.PID, low)
			time.Sleep(time.Second)
			free := counter.Rate(t, false, time.Second, load.PID)
			// Autotuning runs again: the buffer grows past the clamped one.
			_, _, buf := sockState(t, load.PID)
			t.Logf("%s: %s at 1 MB/s, %s 1–2 s after Remove (the call took %v); receive buffer %d B clamped, %d B 2 s after Remove",
				p.name, mb(lowRate), mb(free), took.Round(time.Microsecond), clampedBuf, buf)
			if buf < 4*clampedBuf {
				t.Errorf("receive buffer %d B 2 s after Remove, %d B clamped: autotuning did not resume", buf, clampedBuf)
			}
			if free < 5*low {
				t.Errorf("1–2 s after Remove the download runs at %s, want > %s", mb(free), mb(5*low))
			}
		})
	}
}

// checkClamp checks the window clamp and the receive buffer lock of pid's
// download connection under a limit of rate kept by a shaper or a policer
// (the bed's round trip is under a millisecond). The clamp read back may
// be up to twice what was set: once the kernel has measured the payload's
// share of its buffer (tcp_measure_rcv_mss) it recomputes the clamp from
// SO_RCVBUF, which it keeps doubled (20,823 B read for 16,384 set).
func checkClamp(t *testing.T, what string, pid int, rate backends.Rate, shaper bool) {
	t.Helper()
	clamp, locks := clampOf(t, pid)
	lo := socktarget.ReceiveWindow(rate, 0, shaper)
	hi, locked := 2*lo, lo <= socktarget.RwndBufMax
	if !locked && locks&unix.SOCK_RCVBUF_LOCK == 0 && clamp < int(lo) {
		// A window over RwndBufMax is set as the clamp alone, autotuning
		// unlocked, and autotuning sets the clamp to what the growing
		// buffer holds (tcp_rcv_space_adjust): 174,127 B read right after
		// a raise to 10 MB/s once in CI. Unlocked is what shows the clamp.
		t.Logf("%s: window clamp %d, recomputed by autotuning from the buffer (set %d–%d)", what, clamp, lo, hi)
		return
	}
	if clamp < int(lo) || clamp > int(hi) || (locks&unix.SOCK_RCVBUF_LOCK != 0) != locked {
		t.Errorf("%s: window clamp %d (want %d–%d), buffer locks %#x (autotuning locked: want %v)", what, clamp, lo, hi, locks, locked)
	}
}

// checkUnclamped checks that pid's download connection, clamped under a
// limit of rate before, has its clamp undone: autotuning unlocked and a
// window clamp above any a clamp of rate sets. The undo sets the largest
// window (2^30), but with autotuning back the kernel recomputes the clamp
// from the receive buffer whenever it measures the payload's share anew
// and as the buffer grows (30,015,488 B read right after Remove once), so
// the clamp is read for up to a second until it is clear of the limit's.
func checkUnclamped(t *testing.T, what string, pid int, rate backends.Rate) {
	t.Helper()
	limitMax := 2 * int(socktarget.ReceiveClamp(rate, 0)) // checkClamp's bound
	var clamp, locks int
	for deadline := time.Now().Add(time.Second); ; time.Sleep(50 * time.Millisecond) {
		clamp, locks = clampOf(t, pid)
		if locks&unix.SOCK_RCVBUF_LOCK == 0 && (clamp >= 1<<29 || clamp > limitMax) || time.Now().After(deadline) {
			break
		}
	}
	if locks&unix.SOCK_RCVBUF_LOCK != 0 || clamp < 1<<29 && clamp <= limitMax {
		t.Errorf("%s: window clamp %d, buffer locks %#x; want autotuning unlocked and a clamp above %d (2^30 when set)", what, clamp, locks, limitMax)
	}
}

// clampOf returns TCP_WINDOW_CLAMP and SO_BUF_LOCK of pid's established TCP
// connection, read through a copy of its descriptor.
func clampOf(t *testing.T, pid int) (clamp, locks int) {
	clamp, locks, _ = sockState(t, pid)
	return clamp, locks
}

// sockState returns TCP_WINDOW_CLAMP, SO_BUF_LOCK and SO_RCVBUF of pid's
// established TCP connection, read through a copy of its descriptor.
func sockState(t *testing.T, pid int) (clamp, locks, rcvbuf int) {
	t.Helper()
	if !testenv.EstablishedTCP(t, pid, func(fd int) (err error) {
		clamp, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP)
		if err == nil {
			locks, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK)
		}
		if err == nil {
			rcvbuf, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
		}
		return err
	}) {
		t.Fatalf("process %d has no established TCP connection", pid)
	}
	return clamp, locks, rcvbuf
}
