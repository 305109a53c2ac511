//go:build linux

package tc

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Police is the tc_police download backend, the fallback: no IFB and no
// queue; each target gets a cls_bpf filter on clsact ingress (a copy of
// police_ingress loaded for that target) with an act_police action that
// drops what exceeds the target's rate. Policing is rougher than shaping
// (TCP sees drops at once) but needs no device. It needs act_police, which
// some kernels (this project's CI VM among them) lack; ProbePolice says so.
type Police struct {
	backends.DownloadOnly
	s      *shaper // namespace, netlink, maps, socket lookup; its IFB path is unused
	progs  map[string]*ebpf.Program
	clsact map[int]bool // interfaces whose clsact this backend added
}

var _ backends.DownloadThrottleBackend = (*Police)(nil)

// NewPolice returns an uninitialised tc_police backend.
func NewPolice(opts backends.Options) (*Police, error) {
	return &Police{s: newShaper("tc_police", ingress, opts), progs: map[string]*ebpf.Program{}, clsact: map[int]bool{}}, nil
}

// Name implements backends.Backend.
func (*Police) Name() string { return "tc_police" }

// Priority implements backends.Backend.
func (*Police) Priority() backends.Priority { return backends.Fallback }

// Capabilities implements backends.Backend.
func (*Police) Capabilities() backends.Capabilities { return capabilities() }

// Init implements backends.Backend: it removes leftovers of the product's
// download backends from a dead run and checks that act_police exists.
func (p *Police) Init() error {
	if err := ProbePolice(p.s.opts); err != nil {
		return err
	}
	return p.s.Init()
}

// Cleanup implements backends.Backend.
func (p *Police) Cleanup() error {
	p.s.mu.Lock()
	var errs []error
	for id := range p.s.targets {
		errs = append(errs, p.removeLocked(id))
	}
	errs = append(errs, p.dropClsactLocked())
	p.s.mu.Unlock()
	errs = append(errs, p.s.Cleanup())
	return errors.Join(errs...)
}

// Limit implements backends.Throttler.
func (p *Police) Limit(id string) (backends.Limit, bool) { return p.s.Limit(id) }

// SetLimit implements backends.Throttler.
func (p *Police) SetLimit(t backends.Target, l backends.Limit) error {
	s := p.s
	if err := s.validate(t, l); err != nil {
		return err
	}
	pids, err := livePIDs(t)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := socketsOf(s.diag, pids)
	if err != nil {
		return fmt.Errorf("find sockets of target %s: %w", t.ID, err)
	}
	prev, existed := s.targets[t.ID]
	nt := &target{t: t, limit: l, cgroup: t.Cgroup.ID, keys: keys}
	if existed {
		nt.minor = prev.minor
	} else if nt.minor, err = s.allocMinor(); err != nil {
		return err
	}
	prog, err := p.loadFor(nt.minor)
	if err != nil {
		return err
	}
	if err := p.applyLocked(nt, prog); err != nil {
		prog.Close()
		if existed {
			_ = p.applyLocked(prev, p.progs[t.ID])
		} else {
			p.unapplyLocked(nt)
			_ = p.dropClsactLocked()
		}
		return err
	}
	if old := p.progs[t.ID]; old != nil {
		old.Close()
	}
	p.progs[t.ID] = prog
	if existed {
		dropStale(s, nt, prev)
	}
	s.targets[t.ID] = nt
	return nil
}

// loadFor loads a copy of police_ingress for one target, sharing the maps.
func (p *Police) loadFor(minor uint16) (*ebpf.Program, error) {
	spec, err := loadClassify()
	if err != nil {
		return nil, fmt.Errorf("load classifier spec: %w", err)
	}
	if err := spec.Variables["police_minor"].Set(uint32(minor)); err != nil {
		return nil, fmt.Errorf("set police_minor: %w", err)
	}
	m := p.s.objs.classifyMaps
	var objs struct {
		Prog *ebpf.Program `ebpf:"police_ingress"`
	}
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		"cookies": m.Cookies, "cgroups": m.Cgroups, "l3off": m.L3off,
	}}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return nil, fmt.Errorf("load police classifier: %w", err)
	}
	return objs.Prog, nil
}

func (p *Police) applyLocked(nt *target, prog *ebpf.Program) error {
	s := p.s
	for _, l := range s.ifaces {
		idx := l.Attrs().Index
		if err := s.objs.classifyMaps.L3off.Put(uint32(idx), uint32(l2Header(l))); err != nil {
			return fmt.Errorf("set header offset of %s: %w", l.Attrs().Name, err)
		}
		has, err := s.hasClsact(l)
		if err != nil {
			return err
		}
		if !has {
			if err := s.h.QdiscAdd(clsact(idx)); err != nil {
				return fmt.Errorf("add clsact qdisc to %s: %w", l.Attrs().Name, err)
			}
			p.clsact[idx] = true
		}
		wire := float64(nt.limit.Rate) * wireFactor(l)
		if wire > 4e9 {
			return fmt.Errorf("tc_police cannot police above 4 GB/s (asked %d B/s)", nt.limit.Rate)
		}
		frame := uint32(l.Attrs().MTU + l2Header(l))
		pol := netlink.NewPoliceAction()
		pol.Rate = uint32(wire)
		pol.Burst = max(uint32(wire/20), 64<<10+frame) // 50 ms, at least one GRO packet
		pol.Mtu = 64<<10 + frame
		pol.ExceedAction = netlink.TC_POLICE_SHOT
		pol.NotExceedAction = netlink.TC_POLICE_OK
		if err := addBPFFilter(s.rtnl, netlink.HANDLE_MIN_INGRESS, idx, PolicePrio, uint32(nt.minor), prog.FD(), true, pol); err != nil {
			return fmt.Errorf("add police filter to %s: %w", l.Attrs().Name, err)
		}
	}
	val := classifyTarget{Classid: s.classID(nt.minor), Traffic: uint32(nt.limit.Traffic)}
	m := s.objs.classifyMaps
	if nt.cgroup != 0 {
		if err := m.Cgroups.Put(nt.cgroup, val); err != nil {
			return fmt.Errorf("map cgroup %d: %w", nt.cgroup, err)
		}
	}
	for _, c := range nt.keys.cookies {
		if err := m.Cookies.Put(c, val); err != nil {
			return fmt.Errorf("map socket cookie %d: %w", c, err)
		}
	}
	return nil
}

// dropStale removes map entries prev had and nt has not.
func dropStale(s *shaper, nt, prev *target) {
	m := s.objs.classifyMaps
	if prev.cgroup != 0 && prev.cgroup != nt.cgroup {
		_ = m.Cgroups.Delete(prev.cgroup)
	}
	keep := map[uint64]bool{}
	for _, c := range nt.keys.cookies {
		keep[c] = true
	}
	for _, c := range prev.keys.cookies {
		if !keep[c] {
			_ = m.Cookies.Delete(c)
		}
	}
}

func (p *Police) unapplyLocked(t *target) error {
	s := p.s
	m := s.objs.classifyMaps
	if t.cgroup != 0 {
		_ = m.Cgroups.Delete(t.cgroup)
	}
	for _, c := range t.keys.cookies {
		_ = m.Cookies.Delete(c)
	}
	var errs []error
	for _, l := range s.ifaces {
		f := s.markFilter(l.Attrs().Index)
		f.Priority = PolicePrio
		f.Handle = uint32(t.minor)
		if err := s.h.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove police filter of %s: %w", l.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveLimit implements backends.Throttler.
func (p *Police) RemoveLimit(id string) error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if !p.s.inited {
		return nil
	}
	err := p.removeLocked(id)
	if len(p.s.targets) == 0 {
		err = errors.Join(err, p.dropClsactLocked())
	}
	return err
}

func (p *Police) removeLocked(id string) error {
	t, ok := p.s.targets[id]
	if !ok {
		return nil
	}
	delete(p.s.targets, id)
	err := p.unapplyLocked(t)
	if prog := p.progs[id]; prog != nil {
		prog.Close()
		delete(p.progs, id)
	}
	return err
}

func (p *Police) dropClsactLocked() error {
	var errs []error
	for _, l := range p.s.ifaces {
		if p.clsact[l.Attrs().Index] {
			errs = append(errs, p.s.removeClsactIfEmpty(l))
			delete(p.clsact, l.Attrs().Index)
		}
	}
	return errors.Join(errs...)
}
