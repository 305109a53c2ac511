//go:build linux

package tc

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Police is the tc_police download backend, the fallback: no IFB and no
// queue; each target gets a cls_bpf filter on clsact ingress (a copy of
// police_ingress loaded for that target) with an act_police action that
// drops what exceeds the target's rate. Policing is rougher than shaping
// (TCP sees drops at once) but needs no device. It needs act_police, which
// some kernels (this project's CI VM among them) lack; ProbePolice says so.
//
// The namespace, netlink, classifier maps, socket lookup and target table
// are base's; Police is its limiter and touches that state only through
// base's methods, from install, uninstall and release, which base calls
// under its lock.
type Police struct {
	backends.DownloadOnly
	opts   backends.Options
	b      *base
	progs  map[string]*ebpf.Program // by target id
	clsact map[int]bool             // interfaces whose clsact this backend added
}

var _ backends.DownloadThrottleBackend = (*Police)(nil)

// NewPolice returns an uninitialised tc_police backend.
func NewPolice(opts backends.Options) (*Police, error) {
	p := &Police{opts: opts, b: newBase("tc_police", ingress, opts), progs: map[string]*ebpf.Program{}, clsact: map[int]bool{}}
	p.b.lim = p
	return p, nil
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
	if err := ProbePolice(p.opts); err != nil {
		return err
	}
	return p.b.Init()
}

// Cleanup implements backends.Backend.
func (p *Police) Cleanup() error { return p.b.Cleanup() }

var _ backends.GlobalBypasser = (*Police)(nil)

// GlobalBypass implements backends.GlobalBypasser: a policed app's
// conforming download packets leave the interface's ingress at the police
// action, so the global limit's IFB redirect never sees them.
func (p *Police) GlobalBypass() string {
	return "its policed apps' downloads would skip the global pool (use ebpf_cgroup or ifb_tc for download limits)"
}

// Limit implements backends.Throttler.
func (p *Police) Limit(id string) (backends.Limit, bool) { return p.b.Limit(id) }

// SetLimit implements backends.Throttler.
func (p *Police) SetLimit(t backends.Target, l backends.Limit) error { return p.b.SetLimit(t, l) }

// RemoveLimit implements backends.Throttler.
func (p *Police) RemoveLimit(id string) error { return p.b.RemoveLimit(id) }

// install implements limiter: a policer program of nt's own replaces
// prev's.
func (p *Police) install(nt, prev *target) error {
	id := nt.t.ID
	prog, err := p.loadFor(nt.minor)
	if err != nil {
		return err
	}
	if err := p.apply(nt, prog); err != nil {
		prog.Close()
		if prev != nil {
			_ = p.apply(prev, p.progs[id])
		} else {
			p.unapply(nt)
			_ = p.release()
		}
		return err
	}
	if old := p.progs[id]; old != nil {
		old.Close()
	}
	p.progs[id] = prog
	if prev != nil {
		p.b.unmapStale(nt, prev)
	}
	return nil
}

// uninstall implements limiter.
func (p *Police) uninstall(t *target) error {
	err := p.unapply(t)
	if prog := p.progs[t.t.ID]; prog != nil {
		prog.Close()
		delete(p.progs, t.t.ID)
	}
	return err
}

// release implements limiter: the clsact qdiscs this backend added go, if
// nothing else is attached to them.
func (p *Police) release() error {
	var errs []error
	for _, l := range p.b.links() {
		if p.clsact[l.Attrs().Index] {
			errs = append(errs, p.b.removeClsactIfEmpty(l))
			delete(p.clsact, l.Attrs().Index)
		}
	}
	return errors.Join(errs...)
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
	var objs struct {
		Prog *ebpf.Program `ebpf:"police_ingress"`
	}
	opts := &ebpf.CollectionOptions{MapReplacements: p.b.sharedMaps()}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return nil, fmt.Errorf("load police classifier: %w", err)
	}
	return objs.Prog, nil
}

// apply puts nt's policer, running prog, on every interface and maps nt's
// cgroup and sockets to it.
func (p *Police) apply(nt *target, prog *ebpf.Program) error {
	for _, l := range p.b.links() {
		if err := p.b.setL3Offset(l); err != nil {
			return err
		}
		added, err := p.b.addClsact(l)
		if err != nil {
			return err
		}
		if added {
			p.clsact[l.Attrs().Index] = true
		}
		pol, err := policer(l, nt.limit.Rate)
		if err != nil {
			return err
		}
		if err := p.b.addFilter(l, PolicePrio, uint32(nt.minor), prog, pol); err != nil {
			return fmt.Errorf("add police filter to %s: %w", l.Attrs().Name, err)
		}
	}
	return p.b.mapTarget(nt, nil)
}

// policer is the act_police action holding l's traffic to rate: whole
// frames counted, a burst of 50 ms (at least one GRO packet).
func policer(l netlink.Link, rate backends.Rate) (*netlink.PoliceAction, error) {
	wire := float64(rate) * wireFactor(l)
	if wire > 4e9 {
		return nil, fmt.Errorf("tc_police cannot police above 4 GB/s (asked %d B/s)", rate)
	}
	frame := uint32(l.Attrs().MTU + l2Header(l))
	pol := netlink.NewPoliceAction()
	pol.Rate = uint32(wire)
	pol.Burst = max(uint32(wire/20), 64<<10+frame) // 50 ms, at least one GRO packet
	pol.Mtu = 64<<10 + frame
	pol.ExceedAction = netlink.TC_POLICE_SHOT
	pol.NotExceedAction = netlink.TC_POLICE_OK
	return pol, nil
}

// unapply removes t's map entries and policers.
func (p *Police) unapply(t *target) error {
	p.b.unmapTarget(t)
	var errs []error
	for _, l := range p.b.links() {
		if err := p.b.delFilter(l, PolicePrio, uint32(t.minor)); err != nil {
			errs = append(errs, fmt.Errorf("remove police filter of %s: %w", l.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}
