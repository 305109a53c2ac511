//go:build linux

package tc

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
)

// shaper is the IFB/HTB path tc_htb and ifb_tc share. While limits exist,
// each shaped interface gets a cls_bpf filter on its clsact hook (egress for
// upload, ingress for download) whose program marks a limited target's
// packets with the target's class and whose act_mirred action redirects
// only those to an IFB device of the product's; the IFB has an HTB root with
// one class per target. Unlimited traffic never meets a qdisc of ours, and
// the user's own qdiscs on the interface are left alone.
type shaper struct {
	*base
	devs []*shapedDev // installed while at least one target exists
}

// shapedDev is one interface's shaping state while limits exist.
type shapedDev struct {
	real          netlink.Link // the interface traffic goes through
	shaped        netlink.Link // the product's IFB, where the HTB root sits
	clsactCreated bool
	marked        bool // the mark filter is on real's clsact hook
}

func newShaper(name string, dir direction, opts backends.Options) *shaper {
	s := &shaper{base: newBase(name, dir, opts)}
	s.lim = s
	return s
}

// install implements limiter: the IFB devices and mark filters go up with
// the first limit, then nt gets its classes and map entries.
func (s *shaper) install(nt, prev *target) error {
	hadDevs := len(s.devs) > 0
	if err := s.setupLocked(); err != nil {
		return err
	}
	// The app's class in the global tree (globalnest_linux.go) goes up
	// before the map points the app's packets at it.
	nested := s.dir == ingress
	if nested {
		if err := nestApp(s.opts.Tag, nt.minor, nt.limit.Rate); err != nil {
			s.undoNest(nt, prev)
			if !hadDevs {
				_ = s.teardownLocked()
			}
			return err
		}
	}
	if err := s.applyLocked(nt, prev); err != nil {
		if nested {
			s.undoNest(nt, prev)
		}
		if prev != nil {
			_ = s.applyLocked(prev, nt)
		} else {
			s.unapplyLocked(nt)
			if !hadDevs {
				_ = s.teardownLocked()
			}
		}
		return err
	}
	return nil
}

// undoNest puts the global tree's class of a target whose install failed
// back as it was (prev) or removes it.
func (s *shaper) undoNest(nt, prev *target) {
	if prev == nil || prev.minor != nt.minor {
		_ = nestApp(s.opts.Tag, nt.minor, 0)
	}
	if prev != nil {
		_ = nestApp(s.opts.Tag, prev.minor, prev.limit.Rate)
	}
}

// uninstall implements limiter.
func (s *shaper) uninstall(t *target) error {
	if s.dir == ingress {
		defer nestApp(s.opts.Tag, t.minor, 0) // after the map stops pointing at it
	}
	if err := s.unapplyLocked(t); err != nil {
		return fmt.Errorf("remove limit of %s: %w", t.t.ID, err)
	}
	return nil
}

// release implements limiter: the mark filters and IFB devices go.
func (s *shaper) release() error { return s.teardownLocked() }

// applyLocked installs nt's classes and map entries, dropping map entries
// prev had and nt has not.
func (s *shaper) applyLocked(nt, prev *target) error {
	for _, d := range s.devs {
		if err := s.h.ClassReplace(s.htbClass(d, nt.minor, nt.limit.Rate)); err != nil {
			return fmt.Errorf("set htb class %x:%x on %s: %w", s.major(), nt.minor, d.shaped.Attrs().Name, err)
		}
		if err := setLeafFifo(s.rtnl, d.shaped.Attrs().Index, s.classID(nt.minor), leafLimit(d, nt.limit.Rate)); err != nil {
			return fmt.Errorf("size the queue of class %x:%x on %s: %w", s.major(), nt.minor, d.shaped.Attrs().Name, err)
		}
	}
	return s.mapTarget(nt, prev)
}

// unapplyLocked removes t's map entries and classes.
func (s *shaper) unapplyLocked(t *target) error {
	s.unmapTarget(t)
	var errs []error
	s.drain(t.minor)
	for _, d := range s.devs {
		c := &netlink.HtbClass{ClassAttrs: netlink.ClassAttrs{LinkIndex: d.shaped.Attrs().Index,
			Parent: s.rootHandle(), Handle: s.classID(t.minor)}}
		if err := s.h.ClassDel(c); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete htb class %x:%x on %s: %w", s.major(), t.minor, d.shaped.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// htbClass builds a target's class on d: the rate HTB must count for the
// payload rate asked, and a burst of about 50 ms (at least a few frames,
// at most 4 MiB) so timer slack and loss recovery do not eat into the
// rate (at 100 MB/s 10 ms gave 0.79–0.93 of the limit, 50 ms 0.99).
func (s *shaper) htbClass(d *shapedDev, minor uint16, rate backends.Rate) *netlink.HtbClass {
	wire := uint64(float64(rate) * wireFactor(d.real))
	frame := uint64(d.real.Attrs().MTU + l2Header(d.real))
	return s.htbSpec(d.shaped.Attrs().Index, s.rootHandle(), minor, wire, wire, frame)
}

// leafLimit sizes a class's queue in bytes: the IFB sits after the socket
// (upload) or before it (download), so the shaper works by dropping. About
// 100 ms at the limit keeps queueing delay and the senders' timeouts
// short; at least two 64 KiB GSO/GRO packets so a low limit still passes
// the big packets veth and TSO hand over; at most 16 MiB.
func leafLimit(d *shapedDev, rate backends.Rate) uint32 {
	wire := float64(rate) * wireFactor(d.real)
	return uint32(min(max(wire*0.1, 32<<10), 16<<20))
}

// setLeafFifo sets the class's leaf qdisc to a bfifo of limit bytes.
//
// Equivalent to: tc qdisc replace dev IFB parent CLASS bfifo limit N
func setLeafFifo(sock *nl.SocketHandle, idx int, class uint32, limit uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(idx), Parent: class})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("bfifo")))
	req.AddData(nl.NewRtAttr(nl.TCA_OPTIONS, nl.Uint32Attr(limit)))
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sock}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// drain lets what is queued in a class that is going away out at full
// speed (at most 200 ms), so removing a limit loses no packets and the
// senders see no timeout.
func (s *shaper) drain(minor uint16) {
	for _, d := range s.devs {
		_ = s.h.ClassChange(s.htbClass(d, minor, backends.MaxRate))
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	for _, d := range s.devs {
		for time.Now().Before(deadline) {
			cs, err := s.h.ClassList(d.shaped, s.rootHandle())
			if err != nil {
				break
			}
			busy := false
			for _, c := range cs {
				st := c.Attrs().Statistics
				if c.Attrs().Handle == s.classID(minor) && st != nil && st.Queue != nil && st.Queue.Qlen > 0 {
					busy = true
				}
			}
			if !busy {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// setupLocked creates the IFB devices with their HTB roots and puts the
// mark filters on the interfaces, once, when the first limit arrives.
func (s *shaper) setupLocked() (err error) {
	if len(s.devs) > 0 {
		return nil
	}
	defer func() {
		if err != nil {
			_ = s.teardownLocked()
		}
	}()
	for _, l := range s.ifaces {
		d := &shapedDev{real: l}
		s.devs = append(s.devs, d)
		var err error
		if d.shaped, err = s.createIFB(d.real); err != nil {
			return err
		}
		if err := s.installRoot(d.shaped, s.toClassProg()); err != nil {
			return err
		}
		if err := s.installMark(d); err != nil {
			return err
		}
	}
	return nil
}

// installRoot puts the HTB root and a classifier running prog on l.
//
// Equivalent to: tc qdisc add dev ctifbX root handle c7a1: htb;
// tc filter add dev ctifbX parent c7a1: prio 3194 bpf da obj … sec to_class
// classid c7a1:
func (b *base) installRoot(l netlink.Link, prog *ebpf.Program) error {
	name := l.Attrs().Name
	idx := l.Attrs().Index
	htb := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Parent: netlink.HANDLE_ROOT, Handle: b.rootHandle()})
	htb.Defcls = 0 // unclassified packets pass unshaped
	ql := uint32(1000)
	htb.DirectQlen = &ql
	if err := b.h.QdiscReplace(htb); err != nil {
		return fmt.Errorf("add htb root qdisc to %s: %w", name, err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: b.rootHandle(), Priority: FilterPrio,
			Protocol: unix.ETH_P_ALL},
		ClassId: b.rootHandle(), Fd: prog.FD(), Name: FilterName, DirectAction: true,
	}
	if err := b.h.FilterReplace(f); err != nil {
		return fmt.Errorf("attach classifier to %s: %w", name, err)
	}
	return nil
}

// installMark adds clsact to the interface if it has none and the mark
// filter with its redirect to the IFB.
//
// Equivalent to: tc qdisc add dev IF clsact; tc filter add dev IF
// egress|ingress prio 3194 handle 1 bpf obj … sec mark_egress|mark_ingress
// action mirred egress redirect dev ctifbX
func (s *shaper) installMark(d *shapedDev) error {
	idx := d.real.Attrs().Index
	name := d.real.Attrs().Name
	if err := s.setL3Offset(d.real); err != nil {
		return err
	}
	added, err := s.addClsact(d.real)
	if err != nil {
		return err
	}
	if added {
		d.clsactCreated = true
	} else if ours, err := s.onlyOurFilters(d.real); err != nil {
		return err
	} else if ours {
		// The other direction's backend made it: whichever of us goes
		// last removes it.
		d.clsactCreated = true
	}
	if err := addMarkFilter(s.rtnl, s.hook(), idx, s.markProg().FD(), d.shaped.Attrs().Index); err != nil {
		return fmt.Errorf("add mark filter to %s: %w", name, err)
	}
	d.marked = true
	return nil
}

// teardownLocked removes the mark filters, the clsact qdiscs this run added
// (if nothing else was attached to them meanwhile) and the IFB devices.
func (s *shaper) teardownLocked() error {
	var errs []error
	for _, d := range s.devs {
		if d.marked {
			if err := s.delFilter(d.real, FilterPrio, 0); err != nil {
				errs = append(errs, fmt.Errorf("remove mark filter of %s: %w", d.real.Attrs().Name, err))
			}
		}
		if d.clsactCreated {
			if err := s.removeClsactIfEmpty(d.real); err != nil {
				errs = append(errs, err)
			}
		}
		if d.shaped != nil {
			if err := s.h.LinkDel(d.shaped); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("remove %s: %w", d.shaped.Attrs().Name, err))
			}
		}
		s.clearL3Offset(d.real)
	}
	s.devs = nil
	return errors.Join(errs...)
}

// ifbName is the name of the product's IFB device for interface index idx.
func (b *base) ifbName(idx int) string {
	n := b.ifbPrefix() + strconv.Itoa(idx)
	if b.opts.Tag != "" {
		n += "-" + b.opts.Tag
	}
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// createIFB creates and brings up the product's IFB device for real.
func (b *base) createIFB(real netlink.Link) (netlink.Link, error) {
	name := b.ifbName(real.Attrs().Index)
	if old, err := b.h.LinkByName(name); err == nil {
		if err := b.h.LinkDel(old); err != nil {
			return nil, fmt.Errorf("remove stale %s: %w", name, err)
		}
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.TxQLen = 1000
	la.MTU = real.Attrs().MTU
	if err := b.h.LinkAdd(&netlink.Ifb{LinkAttrs: la}); err != nil {
		return nil, fmt.Errorf("create ifb device %s: %w", name, err)
	}
	l, err := b.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find ifb device %s: %w", name, err)
	}
	// No IPv6 link-local address: the device would send its own router
	// solicitations and MLD reports, which its HTB, classifying only the
	// packets redirected to it, passes unshaped. Fails without IPv6.
	_ = b.h.LinkSetIP6AddrGenMode(l, 1) // IN6_ADDR_GEN_MODE_NONE
	if err := b.h.LinkSetUp(l); err != nil {
		return l, fmt.Errorf("bring up %s: %w", name, err)
	}
	return l, nil
}
