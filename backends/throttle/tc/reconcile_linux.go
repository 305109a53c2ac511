//go:build linux

package tc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
)

// reconcile removes what a dead run of a backend of this direction left in
// the namespace: its IFB devices, its filters (and a clsact qdisc left
// empty by that), and HTB roots with its handle. Nothing else is touched.
func (b *base) reconcile() error {
	links, err := b.h.LinkList()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() == "ifb" && strings.HasPrefix(name, b.ifbPrefix()) {
			if err := b.h.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
			}
			continue
		}
		qs, err := b.h.QdiscList(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("list qdiscs of %s: %w", name, err))
			continue
		}
		for _, q := range qs {
			a := q.Attrs()
			if a.Parent == netlink.HANDLE_ROOT && a.Handle == b.rootHandle() {
				if err := b.h.QdiscDel(q); err != nil {
					errs = append(errs, fmt.Errorf("remove leftover htb root of %s: %w", name, err))
				}
			}
			if q.Type() == "clsact" || q.Type() == "ingress" {
				if err := b.removeStaleMarks(l); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeStaleMarks deletes the product's filters (ifb_tc's marks,
// tc_police's policers) on l's hook for this direction, then the clsact
// qdisc if nothing at all is attached to it.
func (b *base) removeStaleMarks(l netlink.Link) error {
	fs, err := b.h.FilterList(l, b.hook())
	if err != nil {
		return fmt.Errorf("list filters of %s: %w", l.Attrs().Name, err)
	}
	removed := map[uint16]bool{}
	for _, f := range fs {
		prio := f.Attrs().Priority
		if !b.ownPrio(prio) || removed[prio] {
			continue
		}
		if err := b.delFilter(l, prio, 0); err != nil {
			return fmt.Errorf("remove leftover filter of %s: %w", l.Attrs().Name, err)
		}
		removed[prio] = true
	}
	if len(removed) == 0 {
		return nil
	}
	return b.removeClsactIfEmpty(l)
}

// ownPrio reports whether a filter with prio is this backend's kind's: the
// global limit's or the per-app backends'.
func (b *base) ownPrio(prio uint16) bool {
	if b.global {
		return prio == GlobalPrio
	}
	return prio == FilterPrio || prio == PolicePrio
}
