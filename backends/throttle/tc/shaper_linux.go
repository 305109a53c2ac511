//go:build linux

package tc

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/cgroupv2"
)

// The product's marks on kernel objects. Init removes objects carrying them
// (leftovers of a run that died) and nothing else.
const (
	// UploadMajor is the handle major of tc_htb's HTB root qdisc on a
	// shaped interface (c7a1:).
	UploadMajor = 0xc7a1
	// DownloadMajor is the handle major of ifb_tc's HTB root qdisc on its
	// IFB device (c7a2:).
	DownloadMajor = 0xc7a2
	// FilterPrio is the priority of the product's tc filters (the cls_bpf
	// classifier on its HTB roots, the u32 redirect on clsact ingress).
	FilterPrio = 0xc7a
	// FilterName names the product's cls_bpf filters.
	FilterName = "chadthrottle"
	// IFBPrefix starts the names of the product's IFB devices.
	IFBPrefix = "ctifb"
)

type direction int

const (
	egress direction = iota
	ingress
)

// shaper is the machinery tc_htb and ifb_tc share: one HTB class per target
// on every shaped device, a cls_bpf classifier as the HTB filter, and the
// BPF maps that tell the classifier which sockets belong to which target.
type shaper struct {
	name string
	dir  direction
	opts backends.Options

	mu      sync.Mutex
	h       *netlink.Handle
	ns      netns.NsHandle
	objs    *classifyObjects
	prog    *ebpf.Program
	ifaces  []netlink.Link
	devs    []*shapedDev // installed while at least one target exists
	targets map[string]*target
	inited  bool
}

// shapedDev is one interface's shaping state while limits exist.
type shapedDev struct {
	real   netlink.Link // the interface traffic goes through
	shaped netlink.Link // where the HTB root sits: real (upload) or the IFB (download)
	saved  netlink.Qdisc
	// download only
	ifbCreated    bool
	clsactCreated bool
	redirect      *netlink.U32
}

type target struct {
	t      backends.Target
	limit  backends.Limit
	minor  uint16
	cgroup uint64
	keys   sockKeys
}

func newShaper(name string, dir direction, opts backends.Options) *shaper {
	return &shaper{name: name, dir: dir, opts: opts, targets: map[string]*target{}}
}

func (s *shaper) major() uint16 {
	if s.dir == ingress {
		return DownloadMajor
	}
	return UploadMajor
}

func (s *shaper) rootHandle() uint32 { return netlink.MakeHandle(s.major(), 0) }

// Init opens the namespace, finds the interfaces, removes leftovers of an
// earlier run and loads the classifier.
func (s *shaper) Init() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inited {
		return nil
	}
	defer func() {
		if err != nil {
			s.closeLocked()
		}
	}()
	if s.opts.NetNS != "" {
		s.ns, err = netns.GetFromPath(s.opts.NetNS)
	} else {
		s.ns, err = netns.Get()
	}
	if err != nil {
		return fmt.Errorf("open network namespace %q: %w", s.opts.NetNS, err)
	}
	s.h, err = netlink.NewHandleAt(s.ns, unix.NETLINK_ROUTE, unix.NETLINK_INET_DIAG)
	if err != nil {
		return fmt.Errorf("open netlink in namespace %q: %w", s.opts.NetNS, err)
	}
	s.ifaces, err = interfaces(s.h, s.opts.Interfaces)
	if err != nil {
		return err
	}
	if err := s.reconcile(); err != nil {
		return fmt.Errorf("remove leftovers of an earlier run: %w", err)
	}
	var objs classifyObjects
	if err := loadClassifyObjects(&objs, nil); err != nil {
		return fmt.Errorf("load classifier: %w", err)
	}
	s.objs = &objs
	s.prog = objs.ClassifyEgress
	if s.dir == ingress {
		s.prog = objs.ClassifyIngress
	}
	s.inited = true
	return nil
}

func (s *shaper) closeLocked() {
	if s.objs != nil {
		s.objs.Close()
		s.objs = nil
	}
	if s.h != nil {
		s.h.Close()
		s.h = nil
	}
	if s.ns.IsOpen() {
		s.ns.Close()
		s.ns = netns.None()
	}
	s.inited = false
}

// Cleanup removes every limit and the kernel objects that carried them.
func (s *shaper) Cleanup() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inited {
		return nil
	}
	var errs []error
	for id := range s.targets {
		if err := s.removeLocked(id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.teardownLocked(); err != nil {
		errs = append(errs, err)
	}
	s.closeLocked()
	return errors.Join(errs...)
}

// interfaces resolves the configured interfaces, or those carrying the
// default route(s).
func interfaces(h *netlink.Handle, names []string) ([]netlink.Link, error) {
	var out []netlink.Link
	if len(names) > 0 {
		for _, n := range names {
			l, err := h.LinkByName(n)
			if err != nil {
				return nil, fmt.Errorf("find interface %q: %w", n, err)
			}
			out = append(out, l)
		}
		return out, nil
	}
	seen := map[int]bool{}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		routes, err := h.RouteList(nil, fam)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			idx := []int{r.LinkIndex}
			for _, nh := range r.MultiPath {
				idx = append(idx, nh.LinkIndex)
			}
			for _, i := range idx {
				if i == 0 || seen[i] {
					continue
				}
				seen[i] = true
				l, err := h.LinkByIndex(i)
				if err != nil {
					return nil, fmt.Errorf("find interface %d of the default route: %w", i, err)
				}
				out = append(out, l)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no interface carries a default route; name one with --interface")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attrs().Index < out[j].Attrs().Index })
	return out, nil
}

// wireFactor converts a payload rate to the rate HTB must count: HTB counts
// whole frames (link-layer header included), the application sees TCP
// payload, MTU minus IPv4, TCP and timestamp-option headers.
func wireFactor(l netlink.Link) float64 {
	mtu := l.Attrs().MTU
	if mtu < 576 {
		mtu = 1500
	}
	return float64(mtu+l2Header(l)) / float64(mtu-52)
}

func l2Header(l netlink.Link) int {
	switch l.Attrs().EncapType {
	case "none", "ipip", "sit", "ppp", "tunnel", "tunnel6":
		return 0
	}
	if l.Type() == "wireguard" || l.Type() == "tun" && l.Attrs().HardwareAddr == nil {
		return 0
	}
	return 14
}

// validate checks a SetLimit call before anything is touched.
func (s *shaper) validate(t backends.Target, l backends.Limit) error {
	if !s.inited {
		return fmt.Errorf("%s: not initialised", s.name)
	}
	if t.ID == "" {
		return errors.New("target has no id")
	}
	if l.Rate == 0 {
		return errors.New("rate 0 is not a limit (remove the limit instead)")
	}
	if l.Rate > backends.MaxRate {
		return fmt.Errorf("rate %d B/s is above the maximum of %d B/s (100 Gbit/s)", l.Rate, backends.MaxRate)
	}
	if l.Traffic < backends.TrafficAll || l.Traffic > backends.TrafficLocal {
		return fmt.Errorf("unknown traffic type %d", l.Traffic)
	}
	return nil
}

// livePIDs returns the target's processes that exist: its PIDs and whatever
// runs in its cgroup (children that followed).
func livePIDs(t backends.Target) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	var missing []int
	for _, p := range t.PIDs {
		if p <= 0 {
			return nil, fmt.Errorf("invalid pid %d", p)
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(p)); err != nil {
			missing = append(missing, p)
			continue
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if t.Cgroup.Path != "" {
		for _, p := range cgroupv2.Procs(t.Cgroup.Path) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 && t.Cgroup.ID == 0 {
		if len(missing) > 0 {
			return nil, fmt.Errorf("process %d does not exist", missing[0])
		}
		return nil, errors.New("target has no processes and no cgroup")
	}
	if len(out) == 0 && len(missing) > 0 {
		return nil, fmt.Errorf("process %d does not exist", missing[0])
	}
	return out, nil
}

// SetLimit creates or updates a target's limit on every interface. On error
// the kernel is left as it was before the call.
func (s *shaper) SetLimit(t backends.Target, l backends.Limit) error {
	if err := s.validate(t, l); err != nil {
		return err
	}
	pids, err := livePIDs(t)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inited {
		return fmt.Errorf("%s: not initialised", s.name)
	}
	keys, err := socketsOf(s.h, pids)
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
	hadDevs := len(s.devs) > 0
	if err := s.setupLocked(); err != nil {
		return err
	}
	if err := s.applyLocked(nt, prev); err != nil {
		if existed {
			_ = s.applyLocked(prev, nt)
		} else {
			s.unapplyLocked(nt)
			if !hadDevs {
				_ = s.teardownLocked()
			}
		}
		return err
	}
	s.targets[t.ID] = nt
	return nil
}

func (s *shaper) allocMinor() (uint16, error) {
	used := map[uint16]bool{}
	for _, t := range s.targets {
		used[t.minor] = true
	}
	for m := uint16(2); m < 0xfff0; m++ {
		if !used[m] {
			return m, nil
		}
	}
	return 0, errors.New("too many limited targets")
}

func (s *shaper) classID(minor uint16) uint32 { return netlink.MakeHandle(s.major(), minor) }

// applyLocked installs nt's classes and map entries, dropping map entries
// prev had and nt has not.
func (s *shaper) applyLocked(nt, prev *target) error {
	for _, d := range s.devs {
		if err := s.h.ClassReplace(s.htbClass(d, nt)); err != nil {
			return fmt.Errorf("set htb class %x:%x on %s: %w", s.major(), nt.minor, d.shaped.Attrs().Name, err)
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
	if prev != nil {
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
	return nil
}

// unapplyLocked removes t's map entries and classes.
func (s *shaper) unapplyLocked(t *target) error {
	m := s.objs.classifyMaps
	if t.cgroup != 0 {
		_ = m.Cgroups.Delete(t.cgroup)
	}
	for _, c := range t.keys.cookies {
		_ = m.Cookies.Delete(c)
	}
	var errs []error
	for _, d := range s.devs {
		c := &netlink.HtbClass{ClassAttrs: netlink.ClassAttrs{LinkIndex: d.shaped.Attrs().Index,
			Parent: s.rootHandle(), Handle: s.classID(t.minor)}}
		if err := s.h.ClassDel(c); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete htb class %x:%x on %s: %w", s.major(), t.minor, d.shaped.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// htbClass builds the target's class on d: the rate HTB must count for the
// payload rate asked, and a burst of about 10 ms (at least a few frames)
// so timer slack does not eat into the rate.
func (s *shaper) htbClass(d *shapedDev, t *target) *netlink.HtbClass {
	wire := uint64(float64(t.limit.Rate) * wireFactor(d.real))
	frame := uint64(d.real.Attrs().MTU + l2Header(d.real))
	burst := wire / 100
	if burst < 4*frame {
		burst = 4 * frame
	}
	if burst > 4<<20 {
		burst = 4 << 20
	}
	quantum := wire / 10
	if quantum < frame {
		quantum = frame
	}
	if quantum > 200000 {
		quantum = 200000
	}
	return &netlink.HtbClass{
		ClassAttrs: netlink.ClassAttrs{LinkIndex: d.shaped.Attrs().Index, Parent: s.rootHandle(), Handle: s.classID(t.minor)},
		Rate:       wire,
		Ceil:       wire,
		Buffer:     netlink.Xmittime(wire, uint32(burst)),
		Cbuffer:    netlink.Xmittime(wire, uint32(burst)),
		Quantum:    uint32(quantum),
	}
}

// RemoveLimit removes a target's limit; when no limit is left the qdiscs go.
func (s *shaper) RemoveLimit(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inited {
		return nil
	}
	err := s.removeLocked(id)
	if len(s.targets) == 0 {
		err = errors.Join(err, s.teardownLocked())
	}
	return err
}

func (s *shaper) removeLocked(id string) error {
	t, ok := s.targets[id]
	if !ok {
		return nil
	}
	delete(s.targets, id)
	if err := s.unapplyLocked(t); err != nil {
		return fmt.Errorf("remove limit of %s: %w", id, err)
	}
	return nil
}

// Limit returns a target's limit.
func (s *shaper) Limit(id string) (backends.Limit, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[id]
	if !ok {
		return backends.Limit{}, false
	}
	return t.limit, true
}

// setupLocked installs the HTB root (and for download the IFB and the
// redirect) on every interface, once, when the first limit arrives.
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
		d := &shapedDev{real: l, shaped: l}
		s.devs = append(s.devs, d)
		if s.dir == ingress {
			if err := s.createIFB(d); err != nil {
				return err
			}
		}
		if err := s.installRoot(d); err != nil {
			return err
		}
		if s.dir == ingress {
			if err := s.installRedirect(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// installRoot puts the HTB root and the classifier on d.shaped, saving a
// root qdisc the user had there.
func (s *shaper) installRoot(d *shapedDev) error {
	name := d.shaped.Attrs().Name
	idx := d.shaped.Attrs().Index
	qs, err := s.h.QdiscList(d.shaped)
	if err != nil {
		return fmt.Errorf("list qdiscs of %s: %w", name, err)
	}
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent != netlink.HANDLE_ROOT || a.Handle == 0 || a.Handle == s.rootHandle() {
			continue // kernel default qdiscs (handle 0:) come back by themselves
		}
		if _, generic := q.(*netlink.GenericQdisc); generic {
			return fmt.Errorf("%s has a root qdisc %s %x: that cannot be restored afterwards; remove it or choose another interface",
				name, q.Type(), a.Handle>>16)
		}
		d.saved = q
	}
	htb := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Parent: netlink.HANDLE_ROOT, Handle: s.rootHandle()})
	htb.Defcls = 0 // unclassified traffic goes through the direct queue, unshaped
	if s.dir == ingress {
		ql := uint32(1000)
		htb.DirectQlen = &ql
	}
	if err := s.h.QdiscReplace(htb); err != nil {
		return fmt.Errorf("add htb root qdisc to %s: %w", name, err)
	}
	if err := s.setL3Offset(d); err != nil {
		return err
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: s.rootHandle(), Priority: FilterPrio,
			Protocol: unix.ETH_P_ALL},
		ClassId: s.rootHandle(), Fd: s.prog.FD(), Name: FilterName, DirectAction: true,
	}
	if err := s.h.FilterReplace(f); err != nil {
		return fmt.Errorf("attach classifier to %s: %w", name, err)
	}
	return nil
}

func (s *shaper) setL3Offset(d *shapedDev) error {
	off := uint32(l2Header(d.real))
	idx := uint32(d.shaped.Attrs().Index)
	if err := s.objs.classifyMaps.L3off.Put(idx, off); err != nil {
		return fmt.Errorf("set header offset of %s: %w", d.shaped.Attrs().Name, err)
	}
	return nil
}

// teardownLocked removes every installed root, IFB and redirect, restoring
// saved root qdiscs.
func (s *shaper) teardownLocked() error {
	var errs []error
	for _, d := range s.devs {
		if d.redirect != nil {
			if err := s.h.FilterDel(d.redirect); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove ingress redirect of %s: %w", d.real.Attrs().Name, err))
			}
		}
		if d.clsactCreated {
			if err := s.h.QdiscDel(clsact(d.real.Attrs().Index)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("remove clsact qdisc of %s: %w", d.real.Attrs().Name, err))
			}
		}
		if d.ifbCreated {
			if err := s.h.LinkDel(d.shaped); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("remove %s: %w", d.shaped.Attrs().Name, err))
			}
		} else {
			htb := &netlink.Htb{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: d.shaped.Attrs().Index,
				Parent: netlink.HANDLE_ROOT, Handle: s.rootHandle()}}
			if err := s.h.QdiscDel(htb); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("remove htb root qdisc of %s: %w", d.shaped.Attrs().Name, err))
			}
			if d.saved != nil {
				if err := s.h.QdiscAdd(d.saved); err != nil {
					errs = append(errs, fmt.Errorf("restore root qdisc %s of %s: %w", d.saved.Type(), d.shaped.Attrs().Name, err))
				}
			}
		}
		if s.objs != nil {
			idx := uint32(d.shaped.Attrs().Index)
			_ = s.objs.classifyMaps.L3off.Delete(idx)
		}
	}
	s.devs = nil
	return errors.Join(errs...)
}

func clsact(idx int) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
}

// ifbName is the name of the product's IFB device for interface index idx.
func (s *shaper) ifbName(idx int) string {
	n := IFBPrefix + strconv.Itoa(idx)
	if s.opts.Tag != "" {
		n += "-" + s.opts.Tag
	}
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

func (s *shaper) createIFB(d *shapedDev) error {
	name := s.ifbName(d.real.Attrs().Index)
	if old, err := s.h.LinkByName(name); err == nil {
		if err := s.h.LinkDel(old); err != nil {
			return fmt.Errorf("remove stale %s: %w", name, err)
		}
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.TxQLen = 1000
	la.MTU = d.real.Attrs().MTU
	if err := s.h.LinkAdd(&netlink.Ifb{LinkAttrs: la}); err != nil {
		return fmt.Errorf("create ifb device %s: %w", name, err)
	}
	d.ifbCreated = true
	l, err := s.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find ifb device %s: %w", name, err)
	}
	d.shaped = l
	if err := s.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	return nil
}

// installRedirect sends the interface's ingress to the IFB: a match-all u32
// filter with act_mirred on clsact ingress, created if absent.
//
// Equivalent to: tc filter add dev IF ingress prio 3194 protocol all u32
// match u32 0 0 action mirred egress redirect dev ctifbN
func (s *shaper) installRedirect(d *shapedDev) error {
	idx := d.real.Attrs().Index
	name := d.real.Attrs().Name
	qs, err := s.h.QdiscList(d.real)
	if err != nil {
		return fmt.Errorf("list qdiscs of %s: %w", name, err)
	}
	have := false
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_INGRESS || q.Type() == "clsact" || q.Type() == "ingress" {
			have = true
		}
	}
	if !have {
		if err := s.h.QdiscAdd(clsact(idx)); err != nil {
			return fmt.Errorf("add clsact qdisc to %s: %w", name, err)
		}
		d.clsactCreated = true
	}
	f := redirectFilter(idx, d.shaped.Attrs().Index)
	if err := s.h.FilterAdd(f); err != nil {
		return fmt.Errorf("redirect ingress of %s to %s: %w", name, d.shaped.Attrs().Name, err)
	}
	d.redirect = f
	return nil
}

func redirectFilter(idx, ifb int) *netlink.U32 {
	return &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: netlink.HANDLE_MIN_INGRESS,
			Priority: FilterPrio, Protocol: unix.ETH_P_ALL},
		Sel:     &netlink.TcU32Sel{Flags: tcU32Terminal, Nkeys: 1, Keys: []netlink.TcU32Key{{}}},
		Actions: []netlink.Action{netlink.NewMirredAction(ifb)},
	}
}

// tcU32Terminal is TC_U32_TERMINAL from linux/pkt_cls.h.
const tcU32Terminal = 1

// reconcile removes what a dead run of this backend left in the namespace:
// HTB roots with the product's handle, its redirect filters and IFB
// devices. Nothing else is touched.
func (s *shaper) reconcile() error {
	links, err := s.h.LinkList()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if s.dir == ingress && l.Type() == "ifb" && strings.HasPrefix(name, IFBPrefix) {
			if err := s.h.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
			}
			continue
		}
		qs, err := s.h.QdiscList(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("list qdiscs of %s: %w", name, err))
			continue
		}
		for _, q := range qs {
			a := q.Attrs()
			if s.dir == egress && a.Parent == netlink.HANDLE_ROOT && a.Handle == s.rootHandle() {
				if err := s.h.QdiscDel(q); err != nil {
					errs = append(errs, fmt.Errorf("remove leftover htb root of %s: %w", name, err))
				}
			}
			if s.dir == ingress && q.Type() == "clsact" {
				if err := s.removeStaleRedirects(l); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeStaleRedirects deletes the product's u32 redirect filters on l's
// ingress and then the clsact qdisc if nothing else is attached to it.
func (s *shaper) removeStaleRedirects(l netlink.Link) error {
	fs, err := s.h.FilterList(l, netlink.HANDLE_MIN_INGRESS)
	if err != nil {
		return fmt.Errorf("list ingress filters of %s: %w", l.Attrs().Name, err)
	}
	removed := false
	others := 0
	for _, f := range fs {
		if f.Attrs().Priority == FilterPrio && f.Type() == "u32" {
			removed = true
			continue
		}
		others++
	}
	if removed {
		del := redirectFilter(l.Attrs().Index, 0)
		del.Actions = nil
		del.Sel = nil
		if err := s.h.FilterDel(del); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove leftover redirect of %s: %w", l.Attrs().Name, err)
		}
	}
	if !removed || others > 0 {
		return nil
	}
	eg, err := s.h.FilterList(l, netlink.HANDLE_MIN_EGRESS)
	if err == nil && len(eg) == 0 {
		if err := s.h.QdiscDel(clsact(l.Attrs().Index)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove leftover clsact of %s: %w", l.Attrs().Name, err)
		}
	}
	return nil
}
