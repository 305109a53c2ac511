//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"time"

	cilium "github.com/cilium/ebpf"

	"github.com/chadthrottle/chadthrottle/backends"
)

// The read step of Update: the kernel's per-connection counters against
// the mirror of the last read, and the housekeeping of the kernel maps.

// ownerCache looks up socket owners in the kernel map, each at most once
// per Update and only for the sockets that moved bytes (or went idle),
// rather than reading the whole map every second.
type ownerCache struct {
	m     *cilium.Map
	found map[uint64]*monitorOwner // nil: not in the map
}

func newOwnerCache(m *cilium.Map) *ownerCache {
	return &ownerCache{m: m, found: map[uint64]*monitorOwner{}}
}

// get returns the owner of the socket with cookie, if the programs saw it
// created.
func (c *ownerCache) get(cookie uint64) (monitorOwner, bool) {
	o, ok := c.found[cookie]
	if !ok {
		var v monitorOwner
		if c.m.Lookup(cookie, &v) == nil {
			o = &v
		}
		c.found[cookie] = o
	}
	if o == nil {
		return monitorOwner{}, false
	}
	return *o, true
}

// delta is what one connection moved since the last Update.
type delta struct {
	key  monitorConnKey // identity: the cookie alone for TCP
	addr monitorConnKey // addresses, for Conns and lookups
	c    backends.Counters
}

// counterRead is what one pass over the kernel's counters found.
type counterRead struct {
	deltas []delta                 // connections whose counters moved
	stale  []monitorConnKey        // idle connections whose socket is closed or unknown
	seen   map[monitorConnKey]bool // every connection the kernel still has
}

// readCounters reads the TCP and UDP counters, records what moved since the
// last read in the mirror and drops from the mirror the connections the
// kernel no longer has.
func (m *monitorBackend) readCounters(owners *ownerCache, now time.Time) (counterRead, error) {
	r := counterRead{seen: make(map[monitorConnKey]bool, len(m.mirror))}
	var ck uint64
	var tv monitorTcpVal
	it := m.objs.TcpConns.Iterate()
	for it.Next(&ck, &tv) {
		k := monitorConnKey{Cookie: ck, Proto: 6}
		m.visit(&r, k, tv.K, tcpCounters(tv, m.mirror[k].val), owners, now)
	}
	if err := it.Err(); err != nil {
		return counterRead{}, fmt.Errorf("read connection counters: %w", err)
	}
	var perCPU []monitorConnVal
	var k monitorConnKey
	it = m.objs.UdpConns.Iterate()
	for it.Next(&k, &perCPU) {
		m.visit(&r, k, k, sumCPUs(perCPU), owners, now)
	}
	if err := it.Err(); err != nil {
		return counterRead{}, fmt.Errorf("read connection counters: %w", err)
	}
	for key := range m.mirror {
		if !r.seen[key] {
			delete(m.mirror, key)
		}
	}
	return r, nil
}

// tcpCounters turns a TCP entry into counters since the entry was made. The
// kernel's counters only grow, but two CPUs may store them out of order: a
// value below the one read last time (prev) with the same base is such a
// race and reads as prev; a new base is a new entry (made again after the
// LRU evicted it) and reads from zero.
func tcpCounters(tv monitorTcpVal, prev monitorConnVal) monitorConnVal {
	v := monitorConnVal{
		RxBytes: tv.RxBytes - tv.RxBase, TxBytes: tv.TxBytes - tv.TxBase,
		RxPackets: tv.RxPackets, TxPackets: tv.TxPackets,
	}
	if tv.RxBytes < tv.RxBase || tv.TxBytes < tv.TxBase {
		return prev
	}
	if v.RxBytes < prev.RxBytes && v.RxPackets >= prev.RxPackets {
		v.RxBytes = prev.RxBytes
	}
	if v.TxBytes < prev.TxBytes && v.TxPackets >= prev.TxPackets {
		v.TxBytes = prev.TxBytes
	}
	return v
}

// sumCPUs adds up a UDP entry's per-CPU counters.
func sumCPUs(perCPU []monitorConnVal) monitorConnVal {
	var v monitorConnVal
	for _, c := range perCPU {
		v.RxBytes += c.RxBytes
		v.TxBytes += c.TxBytes
		v.RxPackets += c.RxPackets
		v.TxPackets += c.TxPackets
	}
	return v
}

// visit compares one connection's counters with the mirror: what moved
// becomes a delta; a connection idle for connIdle whose socket is closed
// (or has no known owner) becomes stale.
func (m *monitorBackend) visit(r *counterRead, k, addr monitorConnKey, v monitorConnVal, owners *ownerCache, now time.Time) {
	r.seen[k] = true
	prev, known := m.mirror[k]
	if v.RxBytes < prev.val.RxBytes || v.TxBytes < prev.val.TxBytes {
		prev = mirrored{} // recreated after eviction
	}
	d := backends.Counters{
		RxBytes: v.RxBytes - prev.val.RxBytes, TxBytes: v.TxBytes - prev.val.TxBytes,
		RxPackets: v.RxPackets - prev.val.RxPackets, TxPackets: v.TxPackets - prev.val.TxPackets,
	}
	if d != (backends.Counters{}) || !known {
		m.mirror[k] = mirrored{val: v, changed: now}
	}
	if d != (backends.Counters{}) {
		r.deltas = append(r.deltas, delta{k, addr, d})
		return
	}
	if now.Sub(m.mirror[k].changed) <= connIdle {
		return
	}
	if o, ok := owners.get(k.Cookie); !ok || o.ReleasedNs != 0 {
		r.stale = append(r.stale, k)
	}
}

// forget drops kernel and userspace state nobody needs any more: idle
// connections of closed sockets, owners of sockets closed long ago (swept
// every connIdle), and identities of processes that are not reported.
func (m *monitorBackend) forget(stale []monitorConnKey, now time.Time, mono uint64) {
	for _, k := range stale {
		if k.Proto == 6 {
			_ = m.objs.TcpConns.Delete(k.Cookie)
		} else {
			_ = m.objs.UdpConns.Delete(k)
		}
		delete(m.mirror, k)
	}
	live := make(map[uint64]bool, len(m.mirror))
	for k := range m.mirror {
		live[k.Cookie] = true
	}
	for c := range m.resolved {
		if !live[c] {
			delete(m.resolved, c)
		}
	}
	if now.Sub(m.lastSweep) >= connIdle {
		m.lastSweep = now
		var gone []uint64
		var c uint64
		var o monitorOwner
		it := m.objs.Owners.Iterate()
		for it.Next(&c, &o) {
			if o.ReleasedNs != 0 && mono-o.ReleasedNs > uint64(connIdle) && !live[c] {
				gone = append(gone, c)
			}
		}
		for _, c := range gone {
			_ = m.objs.Owners.Delete(c)
		}
	}
	m.infoMu.Lock()
	for pid, e := range m.infos {
		if _, ok := m.procs[pid]; !ok && time.Since(e.at) > connIdle {
			delete(m.infos, pid)
		}
	}
	m.infoMu.Unlock()
}
