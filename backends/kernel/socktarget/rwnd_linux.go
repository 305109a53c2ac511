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
	rates map[uint32]clampOf       // target number → its download limit
	snd   map[uint32]backends.Rate // target number → its upload limit (snd_linux.go)
}

// clampOf is a target's clamp: its download limit, and whether a shaper
// (a queue) or a policer enforces it.
type clampOf struct {
	rate   backends.Rate
	shaper bool
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
//
// A policer (ebpf_cgroup's download) has no queue: what the window lets
// the sender burst beyond the bucket is dropped, and on a near path (round
// trip under RwndNear) the sender's loss recovery ends in retransmission
// timeouts whose saved tokens are spent in a later second (1-s windows up
// to 1.24 × with 50 ms). Such a connection gets RwndTimePolicer at the
// limit instead: 10 MB under 2 MB/s from a sub-millisecond peer (wget and
// curl, 20 runs) then ran every 1-s window at ≤ 1.11 ×; paths of 20 ms
// were unchanged (0.97–1.03).
var (
	RwndTime        = 50 * time.Millisecond
	RwndTimePolicer = 10 * time.Millisecond
	RwndNear        = time.Millisecond
	RwndFloor       = uint32(16 << 10)
	RwndBufMax      = uint32(200 << 10)
)

// ReceiveClamp returns the receive window (bytes) of a connection with a
// round trip of rtt under a download limit of rate kept by a shaper.
func ReceiveClamp(rate backends.Rate, rtt time.Duration) uint32 {
	return ReceiveWindow(rate, rtt, true)
}

// ReceiveWindow returns the receive window (bytes) of a connection with a
// round trip of rtt under a download limit of rate kept by a shaper or,
// when shaper is false, a policer.
func ReceiveWindow(rate backends.Rate, rtt time.Duration, shaper bool) uint32 {
	base := baseWindow(rate, RwndTime)
	if !shaper && rtt < RwndNear {
		base = baseWindow(rate, RwndTimePolicer)
	}
	return uint32(min(float64(base)+float64(rate)*rtt.Seconds(), 1<<30))
}

// baseWindow is the window of a connection with no round trip that holds
// d at the limit.
func baseWindow(rate backends.Rate, d time.Duration) uint32 {
	return uint32(max(min(float64(rate)*d.Seconds(), 1<<30), float64(RwndFloor)))
}

// ClampReceive makes the TCP connections the target numbered num opens from
// now on (sockets tagged at creation, see socktarget.h) get, once
// established, the receive window ReceiveWindow gives for a download limit
// of rate, their round trip and the kind of limiter (shaper). Its open
// connections (held by pids) that got a clamp are re-clamped when the rate
// changed, and for a shaper the ones open before the limit get one too,
// before it returns (rwnd_open_linux.go). A rate of 0 is Unclamp.
//
// Adopting open connections suits a shaper with a queue (ifb_tc: a running
// download's autotuned window overflowed the queue — a stall, then a
// burst; clamping it at once made the 2–4 s windows 0.975–1.013 ×). A
// policer (ebpf_cgroup) got worse from it: in CI a mid-transfer limit then
// ran at 1.18–1.53 × for 1–3 s (TestDownloadMidTransfer, TestClampSmooth),
// so it leaves open connections as they are.
func (t *Tagger) ClampReceive(num uint32, rate backends.Rate, pids []int, shaper bool) error {
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
	c := rwndRwndClamp{Rate: uint64(rate), Window: baseWindow(rate, RwndTime), RcvbufMax: RwndBufMax}
	if !shaper {
		c.WindowNear, c.NearUs = baseWindow(rate, RwndTimePolicer), uint32(RwndNear.Microseconds())
	}
	if err := t.rw.objs.RwndClamps.Put(num, c); err != nil {
		return fmt.Errorf("clamp receive window of target %d: %w", num, err)
	}
	prev, had := t.rw.rates[num]
	cur := clampOf{rate, shaper}
	t.rw.rates[num] = cur
	if err := t.attachClampLocked(); err != nil {
		t.unclampLocked(num, nil)
		return err
	}
	// Open connections too: the ones clamped to another rate, and the
	// ones that were open before the limit came.
	if (!had && shaper) || (had && prev != cur) {
		_, err := t.adjustOpenLocked(num, cur, pids)
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
	_, err := t.adjustOpenLocked(num, clampOf{}, pids)
	return errors.Join(err, t.detachIdleLocked())
}

// detachIdleLocked detaches the clamp program when no clamp is left.
func (t *Tagger) detachIdleLocked() error {
	if len(t.rw.rates) > 0 || len(t.rw.snd) > 0 || t.rw.link == nil {
		return nil
	}
	err := t.rw.link.Close()
	t.rw.link = nil
	if err != nil {
		return fmt.Errorf("detach receive window clamp: %w", err)
	}
	return nil
}

// attachClampLocked attaches the clamp program if it is not.
func (t *Tagger) attachClampLocked() error {
	if t.rw.link != nil {
		return nil
	}
	l, err := t.attach(t.rw.objs.CtClampRwnd, ebpf.AttachCGroupSockOps)
	if err != nil {
		return err
	}
	t.rw.link = l
	return nil
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
	t.rw = rwndState{objs: objs, rates: map[uint32]clampOf{}, snd: map[uint32]backends.Rate{}}
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
