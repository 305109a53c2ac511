//go:build linux

package tc

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Nesting app download limits in the global download limit.
//
// A packet an IFB returns to an interface's ingress is not classified
// there again (the kernel skips ingress classification for it), so a
// download packet can pass one IFB only: after ifb_tc's it could not reach
// the global limit's. While both run in one process (one Options.Tag), the
// global limit therefore takes the apps' download limits into its own tree:
// its classifier reads ifb_tc's maps (app_cookies, app_tags, app_cgroups),
// each limited app gets a class under the global class (ceil = its limit),
// and ifb_tc's own redirect is switched off (defer_marks) while the global
// download limit is set.

type nest struct {
	maps   map[string]*ebpf.Map     // ifb_tc's maps as the global classifier's app_* maps
	deferM *ebpf.Map                // ifb_tc's defer_marks
	apps   map[uint16]backends.Rate // ifb_tc's targets: class minor → download limit
	global *globalDir               // tc_global's download half
}

var (
	nestMu sync.Mutex
	nests  = map[string]*nest{}
)

func nestFor(tag string) *nest {
	n := nests[tag]
	if n == nil {
		n = &nest{apps: map[uint16]backends.Rate{}}
		nests[tag] = n
	}
	return n
}

// nestShaper registers ifb_tc's loaded maps (nil objs: it closed).
func nestShaper(tag string, objs *classifyObjects) {
	nestMu.Lock()
	defer nestMu.Unlock()
	n := nestFor(tag)
	if objs == nil {
		n.maps, n.deferM, n.apps = nil, nil, map[uint16]backends.Rate{}
		return
	}
	n.maps = map[string]*ebpf.Map{"app_cookies": objs.Cookies, "app_tags": objs.Tags, "app_cgroups": objs.Cgroups}
	n.deferM = objs.DeferMarks
}

// nestedMaps returns ifb_tc's maps for the global classifier, when ifb_tc
// runs.
func nestedMaps(tag string) map[string]*ebpf.Map {
	nestMu.Lock()
	defer nestMu.Unlock()
	return nestFor(tag).maps
}

// nestGlobal registers the global download half (nil: it closed).
func nestGlobal(tag string, d *globalDir) {
	nestMu.Lock()
	defer nestMu.Unlock()
	nestFor(tag).global = d
}

// nestApp records an ifb_tc target's download limit (0: removed) and
// updates its class in the global tree. Called by ifb_tc with its lock
// held; takes the global's lock after releasing nestMu. The error is the
// class's, when the global download limit is set and it could not be made.
func nestApp(tag string, minor uint16, rate backends.Rate) error {
	nestMu.Lock()
	n := nestFor(tag)
	if rate == 0 {
		delete(n.apps, minor)
	} else {
		n.apps[minor] = rate
	}
	g := n.global
	nestMu.Unlock()
	if g != nil {
		return g.syncApp(minor, rate)
	}
	return nil
}

// nestedApps returns ifb_tc's targets' download limits.
func nestedApps(tag string) map[uint16]backends.Rate {
	nestMu.Lock()
	defer nestMu.Unlock()
	out := map[uint16]backends.Rate{}
	for m, r := range nestFor(tag).apps {
		out[m] = r
	}
	return out
}

// deferMarks switches ifb_tc's own redirect off (on) or back on.
func deferMarks(tag string, on bool) {
	nestMu.Lock()
	m := nestFor(tag).deferM
	nestMu.Unlock()
	if m == nil {
		return
	}
	v := uint32(0)
	if on {
		v = 1
	}
	_ = m.Put(uint32(0), v)
}

// syncApp sets (rate > 0) or removes an app's class in the global
// download tree, when the global download limit is set.
func (d *globalDir) syncApp(minor uint16, rate backends.Rate) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ownClasses(minor, rate)
}

// appClass sets or removes one app's class on dev. Needs d.mu. A class
// that could not be made is an error: a packet classified to a class HTB
// lacks passes unshaped.
func (d *globalDir) appClass(dev *globalDev, minor uint16, rate backends.Rate) error {
	if dev.ifb == nil || d.rate == 0 {
		return nil
	}
	idx := dev.ifb.Attrs().Index
	if rate == 0 {
		_ = d.h.ClassDel(&netlink.HtbClass{ClassAttrs: netlink.ClassAttrs{LinkIndex: idx,
			Parent: d.classID(globalRootMinor), Handle: d.classID(minor)}})
		return nil
	}
	global := uint64(float64(d.rate) * wireFactor(dev.real))
	wire := min(uint64(float64(rate)*wireFactor(dev.real)), global)
	frame := uint64(dev.real.Attrs().MTU + l2Header(dev.real))
	c := d.htbSpec(idx, d.classID(globalRootMinor), minor, min(wire, global*2/15), wire, frame)
	c.Prio = 1
	if err := d.h.ClassReplace(c); err != nil {
		return fmt.Errorf("class of a download limit in the global limit on %s: %w", dev.real.Attrs().Name, err)
	}
	_ = setLeafFifo(d.rtnl, idx, c.Handle, uint32(min(max(float64(wire)*0.1, 64<<10), 16<<20)))
	return nil
}

// syncApps puts every ifb_tc target's class and every target's own class
// in place on dev. Needs d.mu.
func (d *globalDir) syncApps(dev *globalDev) error {
	var errs []error
	for minor, rate := range nestedApps(d.opts.Tag) {
		errs = append(errs, d.appClass(dev, minor, rate))
	}
	for _, t := range d.targets {
		if ownMinor(t.minor) {
			errs = append(errs, d.appClass(dev, t.minor, t.limit.Rate))
		}
	}
	return errors.Join(errs...)
}

// Targets with their own download limit get class minors from
// ownMinorBase up, apart from ifb_tc's (from 2) and the priorities'.
const ownMinorBase = 0x8000

func ownMinor(m uint16) bool { return m >= ownMinorBase && m < globalNormalMinor-1 }

// ownMinor returns the class minor of target id's own class: the one it
// has, or a free one.
func (d *globalDir) ownMinor(id string) (uint16, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.targets[id]; t != nil && ownMinor(t.minor) {
		return t.minor, nil
	}
	used := map[uint16]bool{}
	for _, t := range d.targets {
		used[t.minor] = true
	}
	for m := uint16(ownMinorBase); ownMinor(m); m++ {
		if !used[m] {
			return m, nil
		}
	}
	return 0, fmt.Errorf("too many targets with a download limit in the global limit")
}

// ownClasses sets (rate > 0) or removes a target's own class on every
// shaped device. Needs d.mu.
func (d *globalDir) ownClasses(minor uint16, rate backends.Rate) error {
	var errs []error
	for _, dev := range d.devs {
		errs = append(errs, d.appClass(dev, minor, rate))
	}
	return errors.Join(errs...)
}
