//go:build linux && !no_ebpf

package ebpf

import (
	"errors"

	cilium "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
)

// A pacing rate is a socket option: it outlives a helper killed with
// SIGKILL, and the pacer's own memory of what it set goes with the helper.
// So what it set is also kept in a socket storage map (socket → the
// maximum pacing rate the socket had before), pinned in the BPF file
// system while the pacer has set anything (socktarget.Pin; the record goes
// with its socket). The next helper's upload throttler undoes every
// recorded rate at Init and removes the pin; a stopping pacer undoes what
// is still recorded (sockets its targets' processes no longer list) the
// same way. See backends/kernel/socktarget/records_linux.go.

// paceRecordPin names the records' pin.
const paceRecordPin = "pace"

// paceRecords is the pacer's record map, made with the first paced socket.
// Guarded by the pacer's mutex.
type paceRecords struct {
	tag       string // the instance's tag (backends.Options.Tag)
	m         *cilium.Map
	recovered int   // rates of a killed helper undone at Init
	err       error // what went wrong undoing them
}

// recover undoes the rates a killed helper of the same tag recorded.
func (r *paceRecords) recover() {
	r.recovered, r.err = socktarget.Recover(paceRecordPin, r.tag, restorePacing)
}

// open returns the record map, making and pinning it first if need be;
// nil when the kernel cannot make one (the pacer then keeps no record).
func (r *paceRecords) open() *cilium.Map {
	if r.m != nil {
		return r.m
	}
	m, err := cilium.NewMap(&cilium.MapSpec{
		Name: "ct_pace_socks", Type: cilium.SkStorage, KeySize: 4, ValueSize: 8, Flags: unix.BPF_F_NO_PREALLOC,
		Key:   &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed},
		Value: &btf.Int{Name: "__u64", Size: 8},
	})
	if err != nil {
		r.err = err
		return nil
	}
	_ = socktarget.Pin(m, paceRecordPin, r.tag) // unpinned, a killed helper's rates stay
	r.m = m
	return m
}

// close undoes the rates still recorded, unpins and frees the map.
func (r *paceRecords) close() {
	if r.m == nil {
		return
	}
	r.err = errors.Join(socktarget.Release(r.m, restorePacing), r.m.Close())
	r.m = nil
}

// restorePacing gives the socket dup the maximum pacing rate m recorded
// for it, and drops the record.
func restorePacing(m *cilium.Map, dup int) (bool, error) {
	var orig uint64
	if m.Lookup(uint32(dup), &orig) != nil {
		return false, nil
	}
	err := setMaxPacing(dup, orig)
	if derr := m.Delete(uint32(dup)); err == nil {
		err = derr
	}
	return true, err
}
