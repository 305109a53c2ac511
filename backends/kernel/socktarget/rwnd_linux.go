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
	objs *rwndObjects
	link link.Link
	nums map[uint32]bool
}

// Receive window rule (ReceiveClamp). A download shaper queues what the
// sender has in flight beyond its rate; with the window autotuning gives
// (megabytes) the shaper's queue overflows and the receiver gets the
// dropped data late, out of order, in bursts over the limit. A window of
// RwndTime at the limit keeps the queue short; RwndFloor keeps low limits
// from stalling; RwndBufMax is the largest window set with SO_RCVBUF
// (which the kernel caps at net.core.rmem_max), above it only the clamp is
// set. A RwndTime of 0 turns clamping off.
var (
	RwndTime   = 50 * time.Millisecond
	RwndFloor  = uint32(16 << 10)
	RwndBufMax = uint32(200 << 10)
)

// ReceiveClamp returns the receive window (bytes) for sockets under a
// download limit of rate, and the receive buffer to set (0: none).
func ReceiveClamp(rate backends.Rate) (window, rcvbuf uint32) {
	w := float64(rate) * RwndTime.Seconds()
	window = RwndFloor
	if w > float64(window) {
		window = uint32(min(w, 1<<30))
	}
	if window <= RwndBufMax {
		rcvbuf = window
	}
	return window, rcvbuf
}

// ClampReceive makes the TCP connections the target numbered num opens from
// now on (sockets tagged at creation, see socktarget.h) connect with the
// receive window ReceiveClamp gives for a download limit of rate. A rate of
// 0 is Unclamp.
func (t *Tagger) ClampReceive(num uint32, rate backends.Rate) error {
	if rate == 0 || RwndTime <= 0 {
		return t.Unclamp(num)
	}
	if num == 0 {
		return errors.New("clamp receive window: target has no tag number")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.loadRwndLocked(); err != nil {
		return err
	}
	win, buf := ReceiveClamp(rate)
	if err := t.rw.objs.RwndClamps.Put(num, rwndRwndClamp{Window: win, Rcvbuf: buf}); err != nil {
		return fmt.Errorf("clamp receive window of target %d: %w", num, err)
	}
	t.rw.nums[num] = true
	if t.rw.link == nil {
		l, err := t.attach(t.rw.objs.CtClampRwnd, ebpf.AttachCGroupSockOps)
		if err != nil {
			t.unclampLocked(num)
			return err
		}
		t.rw.link = l
	}
	return nil
}

// Unclamp stops clamping the target's new connections; when no clamp is
// left the program is detached. Connections opened under the clamp keep
// it until they close.
func (t *Tagger) Unclamp(num uint32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unclampLocked(num)
}

func (t *Tagger) unclampLocked(num uint32) error {
	if t.rw.objs == nil || !t.rw.nums[num] {
		return nil
	}
	delete(t.rw.nums, num)
	_ = t.rw.objs.RwndClamps.Delete(num)
	if len(t.rw.nums) > 0 || t.rw.link == nil {
		return nil
	}
	err := t.rw.link.Close()
	t.rw.link = nil
	if err != nil {
		return fmt.Errorf("detach receive window clamp: %w", err)
	}
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
	t.rw = rwndState{objs: objs, nums: map[uint32]bool{}}
	return nil
}

// closeRwndLocked detaches and frees the clamp.
func (t *Tagger) closeRwndLocked() error {
	var errs []error
	if t.rw.link != nil {
		errs = append(errs, t.rw.link.Close())
	}
	if t.rw.objs != nil {
		errs = append(errs, t.rw.objs.Close())
	}
	t.rw = rwndState{}
	return errors.Join(errs...)
}

// ClampCounts returns how many times a clamp was set on a socket (on
// connect and again when established) and how many times setting one
// failed, since the first clamp.
func (t *Tagger) ClampCounts() (clamped, failed uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rw.objs == nil {
		return 0, 0
	}
	var out [2]uint64
	for i := range out {
		var per []uint64
		if err := t.rw.objs.RwndCounts.Lookup(uint32(i), &per); err == nil {
			for _, v := range per {
				out[i] += v
			}
		}
	}
	return out[0], out[1]
}
