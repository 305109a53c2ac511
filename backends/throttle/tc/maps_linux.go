//go:build linux

package tc

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// The classifier's maps and programs. Every program of the product's tc
// filters finds a packet's target through the same maps: cookies (socket
// cookie → class and traffic type), tags (socket tag → the same; the tags
// are in the socket tagger's socket_targets, shared when the kernel can tag
// sockets), cgroups (cgroup id → the same) and l3off (interface →
// link-layer header length).

// entry is the value the maps hold for t's sockets and cgroup.
func (b *base) entry(t *target) classifyTarget {
	return classifyTarget{Classid: b.classID(t.minor), Traffic: uint32(t.limit.Traffic)}
}

// mapTarget points nt's cgroup and socket cookies at its class and drops
// the entries prev (nil for a new target) had and nt has not.
func (b *base) mapTarget(nt, prev *target) error {
	m := b.objs.classifyMaps
	for _, cg := range nt.cgroups {
		if err := m.Cgroups.Put(cg, b.entry(nt)); err != nil {
			return fmt.Errorf("map cgroup %d: %w", cg, err)
		}
	}
	if nt.t.Tag != 0 {
		if err := m.Tags.Put(nt.t.Tag, b.entry(nt)); err != nil {
			return fmt.Errorf("map socket tag %d: %w", nt.t.Tag, err)
		}
	}
	if prev != nil && prev.t.Tag != 0 && prev.t.Tag != nt.t.Tag {
		_ = m.Tags.Delete(prev.t.Tag)
	}
	if err := b.mapCookies(nt, prev); err != nil {
		return err
	}
	if prev != nil {
		b.unmapStaleCgroups(nt, prev)
	}
	return nil
}

// mapCookies points nt's socket cookies at its class and drops the cookies
// prev (nil for none) had and nt has not.
func (b *base) mapCookies(nt, prev *target) error {
	val := b.entry(nt)
	for _, c := range nt.keys.cookies {
		if err := b.objs.Cookies.Put(c, val); err != nil {
			return fmt.Errorf("map socket cookie %d: %w", c, err)
		}
	}
	if prev != nil {
		b.unmapStaleCookies(nt, prev)
	}
	return nil
}

// unmapStale drops the map entries prev had and nt has not.
func (b *base) unmapStale(nt, prev *target) {
	b.unmapStaleCgroups(nt, prev)
	if prev.t.Tag != 0 && prev.t.Tag != nt.t.Tag {
		_ = b.objs.Tags.Delete(prev.t.Tag)
	}
	b.unmapStaleCookies(nt, prev)
}

// unmapStaleCgroups drops the cgroups prev had and nt has not.
func (b *base) unmapStaleCgroups(nt, prev *target) {
	for _, cg := range prev.cgroups {
		if !slices.Contains(nt.cgroups, cg) {
			_ = b.objs.Cgroups.Delete(cg)
		}
	}
}

func (b *base) unmapStaleCookies(nt, prev *target) {
	keep := make(map[uint64]bool, len(nt.keys.cookies))
	for _, c := range nt.keys.cookies {
		keep[c] = true
	}
	for _, c := range prev.keys.cookies {
		if !keep[c] {
			_ = b.objs.Cookies.Delete(c)
		}
	}
}

// unmapTarget drops t's cgroup and socket cookies from the maps.
func (b *base) unmapTarget(t *target) {
	for _, cg := range t.cgroups {
		_ = b.objs.Cgroups.Delete(cg)
	}
	if t.t.Tag != 0 {
		_ = b.objs.Tags.Delete(t.t.Tag)
	}
	for _, c := range t.keys.cookies {
		_ = b.objs.Cookies.Delete(c)
	}
}

// setL3Offset tells the programs the length of l's link-layer header.
func (b *base) setL3Offset(l netlink.Link) error {
	if err := b.objs.L3off.Put(uint32(l.Attrs().Index), uint32(l2Header(l))); err != nil {
		return fmt.Errorf("set header offset of %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// clearL3Offset forgets l's header length (nothing to do once the
// classifier is closed).
func (b *base) clearL3Offset(l netlink.Link) {
	if b.objs != nil {
		_ = b.objs.L3off.Delete(uint32(l.Attrs().Index))
	}
}

// sharedMaps are the maps a further copy of the classifier's programs
// must use instead of its own.
func (b *base) sharedMaps() map[string]*ebpf.Map {
	m := b.objs.classifyMaps
	return map[string]*ebpf.Map{"cookies": m.Cookies, "cgroups": m.Cgroups, "l3off": m.L3off,
		"tags": m.Tags, "socket_targets": m.SocketTargets}
}

// markProg is the program that marks and redirects a target's packets on
// this direction's clsact hook: mark_egress or mark_ingress.
func (b *base) markProg() *ebpf.Program {
	if b.dir == ingress {
		return b.objs.MarkIngress
	}
	return b.objs.MarkEgress
}

// toClassProg is the classifier on the HTB roots that sends a marked packet
// to its target's class.
func (b *base) toClassProg() *ebpf.Program { return b.objs.ToClass }
