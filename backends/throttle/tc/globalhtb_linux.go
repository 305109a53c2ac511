//go:build linux

package tc

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
)

// The global limit's kernel objects: HTB roots, classes, classifiers.

// setupLocked installs the HTB roots and classifiers on links.
func (d *globalDir) setupLocked(links []netlink.Link) error {
	for _, l := range links {
		dev := &globalDev{real: l}
		d.devs = append(d.devs, dev)
		if err := d.setL3Offset(l); err != nil {
			return err
		}
		if d.dir == egress {
			if err := d.checkRoot(l); err != nil {
				return err
			}
			dev.rooted = true
			if err := d.installRoot(l, d.objs.GlobalEgress); err != nil {
				return err
			}
			continue
		}
		var err error
		if dev.ifb, err = d.createIFB(l); err != nil {
			return err
		}
		dev.rooted = true
		if err := d.installRoot(dev.ifb, d.toClassProg()); err != nil {
			return err
		}
		if err := d.installRedirect(dev); err != nil {
			return err
		}
	}
	return nil
}

// checkRoot refuses an interface whose root qdisc is the user's: the
// global upload limit replaces the root qdisc, which is only done to the
// kernel's default (handle 0:) or a leftover of ours.
func (d *globalDir) checkRoot(l netlink.Link) error {
	qs, err := d.h.QdiscList(l)
	if err != nil {
		return fmt.Errorf("list qdiscs of %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent != netlink.HANDLE_ROOT || a.Handle == d.rootHandle() || a.Handle>>16 == 0 {
			continue
		}
		return fmt.Errorf("interface %s has a root qdisc of its own (%s, handle %x:); the global upload limit would replace it: remove it or name another interface",
			l.Attrs().Name, q.Type(), a.Handle>>16)
	}
	return nil
}

// installRedirect puts global_ingress on the interface's clsact ingress,
// after the per-app filters, and tells it the IFB.
//
// Equivalent to: tc qdisc add dev IF clsact; tc filter add dev IF ingress
// prio 3196 handle 1 bpf da obj … sec global_ingress
func (d *globalDir) installRedirect(dev *globalDev) error {
	real := dev.real
	if err := d.objs.GlobalIfb.Put(uint32(real.Attrs().Index), uint32(dev.ifb.Attrs().Index)); err != nil {
		return fmt.Errorf("map %s to its ifb: %w", real.Attrs().Name, err)
	}
	added, err := d.addClsact(real)
	if err != nil {
		return err
	}
	if added {
		dev.clsactCreated = true
	} else if ours, err := d.onlyOurFilters(real); err != nil {
		return err
	} else if ours {
		dev.clsactCreated = true // whichever of us goes last removes it
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: real.Attrs().Index, Parent: d.hook(), Handle: 1,
			Priority: GlobalPrio, Protocol: unix.ETH_P_ALL},
		Fd: d.objs.GlobalIngress.FD(), Name: FilterName, DirectAction: true,
	}
	if err := d.h.FilterReplace(f); err != nil {
		return fmt.Errorf("add global filter to %s: %w", real.Attrs().Name, err)
	}
	dev.filtered = true
	return nil
}

// teardownLocked removes what setupLocked installed.
func (d *globalDir) teardownLocked() error {
	if d.dir == ingress && len(d.devs) > 0 {
		deferMarks(d.opts.Tag, false) // ifb_tc redirects its apps again
	}
	var errs []error
	for _, dev := range d.devs {
		name := dev.real.Attrs().Name
		if dev.filtered {
			if err := d.delFilter(dev.real, GlobalPrio, 0); err != nil {
				errs = append(errs, fmt.Errorf("remove global filter of %s: %w", name, err))
			}
		}
		if dev.clsactCreated {
			if err := d.removeClsactIfEmpty(dev.real); err != nil {
				errs = append(errs, err)
			}
		}
		if dev.ifb != nil {
			_ = d.objs.GlobalIfb.Delete(uint32(dev.real.Attrs().Index))
			if err := d.h.LinkDel(dev.ifb); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("remove %s: %w", dev.ifb.Attrs().Name, err))
			}
		} else if dev.rooted {
			htb := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: dev.real.Attrs().Index,
				Parent: netlink.HANDLE_ROOT, Handle: d.rootHandle()})
			if err := d.h.QdiscDel(htb); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("remove global htb root of %s: %w", name, err))
			}
		}
		d.clearL3Offset(dev.real)
	}
	d.devs = nil
	return errors.Join(errs...)
}

// shapedLink is where dev's HTB root sits.
func (dev *globalDev) shapedLink() netlink.Link {
	if dev.ifb != nil {
		return dev.ifb
	}
	return dev.real
}

// setClasses sets the global class and the priority classes for a limit
// of rate on dev, with a bfifo of about 100 ms of the limit under each
// priority class.
//
// Equivalent to: tc class replace dev D parent c7a3: classid c7a3:1 htb
// rate R ceil R; tc class replace dev D parent c7a3:1 classid c7a3:fff1+P
// htb rate R×w/15 ceil R quantum … prio 0|1
func (d *globalDir) setClasses(dev *globalDev, rate backends.Rate) error {
	wire := uint64(float64(rate) * wireFactor(dev.real))
	frame := uint64(dev.real.Attrs().MTU + l2Header(dev.real))
	shaped := dev.shapedLink()
	idx := shaped.Attrs().Index
	root := d.htbSpec(idx, d.rootHandle(), globalRootMinor, wire, wire, frame)
	if err := d.h.ClassReplace(root); err != nil {
		return fmt.Errorf("set global htb class on %s: %w", shaped.Attrs().Name, err)
	}
	total := 0
	for _, p := range backends.Priorities {
		total += p.Weight()
	}
	for _, p := range backends.Priorities {
		c := d.htbSpec(idx, root.Handle, globalMinor(p), wire*uint64(p.Weight())/uint64(total), wire, frame)
		// DRR turns of at least one 64 KiB GRO/GSO packet per weight, so
		// borrowed rate divides by weight, not by packet.
		c.Quantum = uint32(p.Weight()) * 64 << 10
		c.Prio = 1
		if p == backends.PriorityCritical {
			c.Prio = 0 // borrows first
		}
		if err := d.h.ClassReplace(c); err != nil {
			return fmt.Errorf("set %s class on %s: %w", p, shaped.Attrs().Name, err)
		}
		limit := uint32(min(max(float64(wire)*0.1, 64<<10), 16<<20))
		if err := setLeafFifo(d.rtnl, idx, c.Handle, limit); err != nil {
			return fmt.Errorf("size the queue of the %s class on %s: %w", p, shaped.Attrs().Name, err)
		}
	}
	return nil
}

// htbSpec is an HTB class with a burst of about 50 ms at ceil (at least
// four frames, at most 4 MiB).
func (b *base) htbSpec(idx int, parent uint32, minor uint16, rate, ceil, frame uint64) *netlink.HtbClass {
	burst := min(max(ceil/20, 4*frame), 4<<20)
	quantum := min(max(rate/10, frame), 200000)
	return &netlink.HtbClass{
		ClassAttrs: netlink.ClassAttrs{LinkIndex: idx, Parent: parent, Handle: b.classID(minor)},
		Rate:       rate,
		Ceil:       ceil,
		Buffer:     netlink.Xmittime(rate, uint32(burst)),
		Cbuffer:    netlink.Xmittime(ceil, uint32(burst)),
		Quantum:    uint32(quantum),
	}
}
