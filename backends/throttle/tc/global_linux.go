//go:build linux

package tc

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Global is the tc_global shaper (backends.GlobalShaper): the machine's
// global limit with priorities, beside whichever throttlers limit single
// apps.
//
// Upload: an HTB root (c7a3:) on the shaped interface itself, whose
// global_egress classifier puts each packet in its app's priority class.
// Download: global_ingress on the interface's clsact ingress, after the
// per-app filters, redirects every packet (bpf_redirect) to the IFB
// ctglbdN, whose HTB root (c7a4:) has the same classes. The classes: one
// global class (rate = ceil = the limit), under it one per priority with
// rate = the priority's weight share of the limit, ceil = the limit, and a
// quantum in proportion to the weight, so classes that borrow share the
// excess by weight too; critical borrows first (a lower HTB prio). A
// packet of an app with its own limit meets that limit first (ifb_tc's IFB
// or the ebpf throttler), then the global classes. Apps are recognised
// like the throttlers do (socket tag, cookie, cgroup); packets of no
// prioritised app are normal. Nothing is installed while no global limit
// is set; an interface whose root qdisc is the user's is refused.
type Global struct {
	mu       sync.Mutex
	up, down *globalDir
	limit    backends.GlobalLimit
}

var _ backends.GlobalShaper = (*Global)(nil)
var _ backends.SocketFollower = (*Global)(nil)

// NewGlobal returns an uninitialised tc_global shaper.
func NewGlobal(opts backends.Options) (*Global, error) {
	return &Global{up: newGlobalDir(egress, opts), down: newGlobalDir(ingress, opts)}, nil
}

// ProbeGlobal says whether the kernel can shape with HTB and IFB devices.
func ProbeGlobal(o backends.Options) error {
	if err := ProbeUpload(o); err != nil {
		return err
	}
	return ProbeDownload(o)
}

// Name implements backends.Backend.
func (*Global) Name() string { return "tc_global" }

// Priority implements backends.Backend.
func (*Global) Priority() backends.Priority { return backends.Good }

// Capabilities implements backends.Backend.
func (*Global) Capabilities() backends.Capabilities {
	return backends.Capabilities{IPv4: true, IPv6: true, PerProcess: true, PerApp: true, ExistingConnections: true}
}

// Init loads the classifiers of both directions and removes leftovers of
// an earlier run.
func (g *Global) Init() error {
	if err := g.up.Init(); err != nil {
		return err
	}
	if err := g.down.Init(); err != nil {
		_ = g.up.Cleanup()
		return err
	}
	nestGlobal(g.down.opts.Tag, g.down)
	return nil
}

// Cleanup removes the global limit, the priorities and everything they
// installed.
func (g *Global) Cleanup() error {
	nestGlobal(g.down.opts.Tag, nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	errs := []error{g.up.setRate(0, nil), g.down.setRate(0, nil)}
	g.limit = backends.GlobalLimit{}
	return errors.Join(append(errs, g.up.Cleanup(), g.down.Cleanup())...)
}

// SetGlobal implements backends.GlobalShaper. On error the previous limit
// stays.
func (g *Global) SetGlobal(l backends.GlobalLimit) error {
	if err := l.Check(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	links, err := g.up.linksFor(l.Interface)
	if err != nil {
		return err
	}
	if err := g.up.setRate(l.Up, links); err != nil {
		_ = g.up.setRate(g.limit.Up, g.up.current())
		return fmt.Errorf("global upload limit: %w", err)
	}
	if err := g.down.setRate(l.Down, links); err != nil {
		_ = g.down.setRate(g.limit.Down, g.down.current())
		_ = g.up.setRate(g.limit.Up, g.up.current())
		return fmt.Errorf("global download limit: %w", err)
	}
	g.limit = l
	return nil
}

// Global implements backends.GlobalShaper.
func (g *Global) Global() backends.GlobalLimit {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// SetPriority implements backends.GlobalShaper: the target's packets go
// to its priority's class, and a download limit of its own (when ifb_tc
// does not nest it already) to a class of the target's under the global
// class with that ceil (globalnest_linux.go).
func (g *Global) SetPriority(t backends.Target, p backends.AppPriority, down backends.Rate) error {
	if !p.Valid() {
		return fmt.Errorf("unknown priority %d", p)
	}
	if p == backends.PriorityNormal && down == 0 {
		return g.RemovePriority(t.ID)
	}
	prio := backends.Limit{Rate: 1} // unused: the class is the priority's
	if p == backends.PriorityNormal {
		if err := g.up.RemoveLimit(t.ID); err != nil {
			return err
		}
	} else if err := g.up.setTarget(t, prio, globalMinor(p)); err != nil {
		return err
	}
	l, minor := prio, globalMinor(p)
	if down > 0 && nestedMaps(g.down.opts.Tag) == nil {
		var err error
		if minor, err = g.down.ownMinor(t.ID); err != nil {
			return err
		}
		l.Rate = down
	}
	if err := g.down.setTarget(t, l, minor); err != nil {
		_ = g.up.RemoveLimit(t.ID)
		return err
	}
	return nil
}

// RemovePriority implements backends.GlobalShaper.
func (g *Global) RemovePriority(id string) error {
	return errors.Join(g.up.RemoveLimit(id), g.down.RemoveLimit(id))
}

// FollowSockets implements backends.SocketFollower.
func (g *Global) FollowSockets(t backends.Target) error {
	return errors.Join(g.up.FollowSockets(t), g.down.FollowSockets(t))
}

// The priority classes' minors: classify.c's GLOBAL_NORMAL and up.
const (
	globalRootMinor   = 1
	globalNormalMinor = 0xfff1
)

func globalMinor(p backends.AppPriority) uint16 { return globalNormalMinor + uint16(p) }

// globalDir is one direction of the global limit: a base whose targets are
// the prioritised apps (their class is their priority's) and the HTB
// installed while the direction has a limit.
type globalDir struct {
	*base
	rate backends.Rate
	devs []*globalDev
}

// globalDev is one interface's global shaping state.
type globalDev struct {
	real          netlink.Link
	ifb           netlink.Link // download: where the HTB root sits
	rooted        bool         // the HTB root is in place
	clsactCreated bool
	filtered      bool // download: global_ingress is on real's clsact
}

func newGlobalDir(dir direction, opts backends.Options) *globalDir {
	d := &globalDir{base: newBase("tc_global", dir, opts)}
	d.global = true
	d.lim = d
	return d
}

// install implements limiter: a prioritised target is map entries, a
// target with its own download limit a class of its own too. The class is
// made before the map points at it and removed after the map stops: HTB
// sends a packet classified to a class it does not have unshaped (its
// direct queue), past the global limit.
func (d *globalDir) install(nt, prev *target) error {
	fresh := ownMinor(nt.minor) && (prev == nil || prev.minor != nt.minor) // a class nt alone uses
	if ownMinor(nt.minor) {
		if err := d.ownClasses(nt.minor, nt.limit.Rate); err != nil {
			if fresh {
				_ = d.ownClasses(nt.minor, 0)
			}
			return err
		}
	}
	if err := d.mapTarget(nt, prev); err != nil {
		if fresh {
			_ = d.ownClasses(nt.minor, 0)
		}
		return err
	}
	if prev != nil && ownMinor(prev.minor) && prev.minor != nt.minor {
		_ = d.ownClasses(prev.minor, 0)
	}
	return nil
}

// uninstall implements limiter.
func (d *globalDir) uninstall(t *target) error {
	d.unmapTarget(t)
	if ownMinor(t.minor) {
		_ = d.ownClasses(t.minor, 0)
	}
	return nil
}

// release implements limiter: the HTB stays while a limit is set.
func (d *globalDir) release() error {
	if d.rate != 0 {
		return nil
	}
	return d.teardownLocked()
}

// current returns the interfaces shaped now.
func (d *globalDir) current() []netlink.Link {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []netlink.Link
	for _, dev := range d.devs {
		out = append(out, dev.real)
	}
	return out
}

// linksFor resolves the interface a global limit names, or the ones the
// helper shapes.
func (d *globalDir) linksFor(name string) ([]netlink.Link, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.inited {
		return nil, errors.New("tc_global: not initialised")
	}
	if name == "" {
		return d.ifaces, nil
	}
	l, err := d.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find interface %q: %w", name, err)
	}
	return []netlink.Link{l}, nil
}

// setRate installs, changes or (0) removes this direction's limit on links.
func (d *globalDir) setRate(rate backends.Rate, links []netlink.Link) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.inited {
		return nil
	}
	d.keepShared() // what stays is decided here, from the rate
	if rate == 0 || !sameLinks(d.devs, links) {
		if err := d.teardownLocked(); err != nil {
			return err
		}
	}
	d.rate = rate
	if rate == 0 {
		return nil
	}
	if len(d.devs) == 0 {
		if err := d.setupLocked(links); err != nil {
			d.rate = 0
			_ = d.teardownLocked()
			return err
		}
	}
	for _, dev := range d.devs {
		if err := d.setClasses(dev, rate); err != nil {
			return err
		}
		if err := d.syncApps(dev); err != nil { // globalnest_linux.go
			return err
		}
	}
	if d.dir == ingress {
		deferMarks(d.opts.Tag, true)
	}
	return nil
}

func sameLinks(devs []*globalDev, links []netlink.Link) bool {
	if len(devs) != len(links) {
		return false
	}
	for i, dev := range devs {
		if dev.real.Attrs().Index != links[i].Attrs().Index {
			return false
		}
	}
	return true
}
