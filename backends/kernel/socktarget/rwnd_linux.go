//go:build linux

package socktarget

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/chadthrottle/chadthrottle/backends"
)

// rwndState is the receive window clamp (rwnd.c): loaded with the first
// clamp, attached (a BPF link the helper owns) while at least one exists.
type rwndState struct {
	objs  *rwndObjects
	link  link.Link
	rates map[uint32]backends.Rate // target number → its download limit
}

// Receive window rule (ReceiveClamp). A download shaper queues what the
// sender has in flight beyond what the path holds; with the window
// autotuning gives (megabytes) the shaper's queue overflows and the
// receiver gets the dropped data late, out of order, in bursts over the
// limit. A connection gets RwndTime at the limit (at least RwndFloor) on
// top of what the limit brings in over its own round trip (measured at the
// handshake, in the kernel), so the queue holds at most RwndTime and a
// distant server still fills the limit. Windows up to RwndBufMax are also
// set as the receive buffer, which stops autotuning from raising the clamp
// again (the kernel caps SO_RCVBUF at net.core.rmem_max); larger ones only
// as the clamp. A RwndTime of 0 turns clamping off.
//
// Measured (TestBenchLaterWindows, TestBenchReceiveClamp): 25 and 50 ms at
// the limit left ifb_tc with no retransmission at 1 and 2 MB/s, 80 ms with
// 220–245 per 10 MB (its queue is 100 ms at the limit).
var (
	RwndTime   = 50 * time.Millisecond
	RwndFloor  = uint32(16 << 10)
	RwndBufMax = uint32(200 << 10)
)

// ReceiveClamp returns the receive window (bytes) of a connection with a
// round trip of rtt under a download limit of rate.
func ReceiveClamp(rate backends.Rate, rtt time.Duration) uint32 {
	return uint32(min(float64(baseWindow(rate))+float64(rate)*rtt.Seconds(), 1<<30))
}

// baseWindow is the window of a connection with no round trip.
func baseWindow(rate backends.Rate) uint32 {
	return uint32(max(min(float64(rate)*RwndTime.Seconds(), 1<<30), float64(RwndFloor)))
}

// ClampReceive makes the TCP connections the target numbered num opens from
// now on (sockets tagged at creation, see socktarget.h) get, once
// established, the receive window ReceiveClamp gives for a download limit
// of rate and their round trip. Its open connections (held by pids) that
// got a clamp are re-clamped when the rate changed, and with adopt the ones
// open before the limit get one too, before it returns
// (rwnd_open_linux.go). A rate of 0 is Unclamp.
//
// adopt suits a shaper with a queue (ifb_tc: a running download's
// autotuned window overflowed the queue — a stall, then a burst; clamping
// it at once made the 2–4 s windows 0.975–1.013 ×). A policer
// (ebpf_cgroup) got worse from it: in CI a mid-transfer limit then ran at
// 1.18–1.53 × for 1–3 s (TestDownloadMidTransfer, TestClampSmooth), so it
// leaves open connections as they are.
func (t *Tagger) ClampReceive(num uint32, rate backends.Rate, pids []int, adopt bool) error {
	if rate == 0 || RwndTime <= 0 {
		return t.Unclamp(num, pids)
	}
	if num == 0 {
		return errors.New("clamp receive window: target has no tag number")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.loadRwndLocked(); err != nil {
		return err
	}
	c := rwndRwndClamp{Rate: uint64(rate), Window: baseWindow(rate), RcvbufMax: RwndBufMax}
	if err := t.rw.objs.RwndClamps.Put(num, c); err != nil {
		return fmt.Errorf("clamp receive window of target %d: %w", num, err)
	}
	prev, had := t.rw.rates[num]
	t.rw.rates[num] = rate
	if t.rw.link == nil {
		l, err := t.attach(t.rw.objs.CtClampRwnd, ebpf.AttachCGroupSockOps)
		if err != nil {
			t.unclampLocked(num, nil)
			return err
		}
		t.rw.link = l
	}
	// Open connections too: the ones clamped to another rate, and the
	// ones that were open before the limit came.
	if (!had && adopt) || (had && prev != rate) {
		_, err := t.adjustOpenLocked(num, rate, pids, adopt)
		return err
	}
	return nil
}

// Unclamp stops clamping the target's new connections and undoes the clamp
// of its open ones held by pids (their window and receive buffer grow
// again as on a connection never clamped); when no clamp is left the
// program is detached.
func (t *Tagger) Unclamp(num uint32, pids []int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unclampLocked(num, pids)
}

func (t *Tagger) unclampLocked(num uint32, pids []int) error {
	if t.rw.objs == nil {
		return nil
	}
	if _, ok := t.rw.rates[num]; !ok {
		return nil
	}
	delete(t.rw.rates, num)
	_ = t.rw.objs.RwndClamps.Delete(num)
	_, err := t.adjustOpenLocked(num, 0, pids, false)
	if len(t.rw.rates) > 0 || t.rw.link == nil {
		return err
	}
	if cerr := t.rw.link.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("detach receive window clamp: %w", cerr))
	}
	t.rw.link = nil
	return err
}

func (t *Tagger) loadRwndLocked() error {
	if t.rw.objs != nil {
		return nil
	}
	objs := &rwndObjects{}
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"socket_targets": t.objs.SocketTargets}}
	if err := loadRwndObjects(objs, opts); err != nil {
		return backends.Unavailable("load receive window clamp (sockops with bpf_setsockopt): %v", err)
	}
	t.rw = rwndState{objs: objs, rates: map[uint32]backends.Rate{}}
	_ = Pin(objs.RwndSocks, rwndPin, t.tag) // records_linux.go; unpinned, a killed helper's clamps stay
	return nil
}

// rwndPin names the clamp records' pin (records_linux.go).
const rwndPin = "rwnd"

// RecoveredClamps returns how many receive window clamps of a killed
// helper were undone when this tagger was loaded, and what went wrong.
func (t *Tagger) RecoveredClamps() (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.recovered, t.recoverErr
}

// closeRwndLocked detaches and frees the clamp; a clamp still recorded (on
// a socket no target's process listed) is undone first, and the record
// map unpinned.
func (t *Tagger) closeRwndLocked() error {
	var errs []error
	if t.rw.link != nil {
		errs = append(errs, t.rw.link.Close())
	}
	if t.rw.objs != nil {
		if err := Release(t.rw.objs.RwndSocks, unclampRecorded); err != nil {
			errs = append(errs, fmt.Errorf("undo receive window clamps: %w", err))
		}
		errs = append(errs, t.rw.objs.Close())
	}
	t.rw = rwndState{}
	return errors.Join(errs...)
}

// ClampCounts returns how many sockets got a clamp and how many a clamp
// failed on, since the first clamp.
func (t *Tagger) ClampCounts() (clamped, failed uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rw.objs == nil {
		return 0, 0
	}
	out := sumPerCPU(t.rw.objs.RwndCounts, 2)
	return out[0], out[1]
}
