//go:build linux

package tc

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/procnet"
)

// The product's marks on kernel objects. Init removes objects carrying them
// (leftovers of a run that died) and nothing else.
const (
	// UploadMajor is the handle major of tc_htb's HTB root qdisc on its
	// IFB device (c7a1:).
	UploadMajor = 0xc7a1
	// DownloadMajor is the handle major of ifb_tc's HTB root qdisc on its
	// IFB device (c7a2:).
	DownloadMajor = 0xc7a2
	// FilterPrio is the priority of the product's tc filters (the mark
	// filters on clsact, the to_class classifier on its HTB roots).
	FilterPrio = 0xc7a
	// PolicePrio is the priority of tc_police's filters on clsact ingress.
	PolicePrio = FilterPrio + 1
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

// shaper is the machinery tc_htb and ifb_tc share. While limits exist, each
// shaped interface gets a cls_bpf filter on its clsact hook (egress for
// upload, ingress for download) whose program marks a limited target's
// packets with the target's class and whose act_mirred action redirects
// only those to an IFB device of the product's; the IFB has an HTB root with
// one class per target. Unlimited traffic never meets a qdisc of ours, and
// the user's own qdiscs on the interface are left alone. BPF maps tell the
// program which sockets (cookie) and cgroups belong to which target.
type shaper struct {
	name string
	dir  direction
	opts backends.Options

	mu      sync.Mutex
	h       *netlink.Handle
	diag    *procnet.Diag // sock_diag in the namespace
	ns      netns.NsHandle
	rtnl    *nl.SocketHandle // for the filter netlink.Handle cannot express
	objs    *classifyObjects
	prog    *ebpf.Program // mark_egress or mark_ingress
	ifaces  []netlink.Link
	devs    []*shapedDev // installed while at least one target exists
	targets map[string]*target
	inited  bool
}

// shapedDev is one interface's shaping state while limits exist.
type shapedDev struct {
	real          netlink.Link // the interface traffic goes through
	shaped        netlink.Link // the product's IFB, where the HTB root sits
	clsactCreated bool
	marked        bool // the mark filter is on real's clsact hook
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

// hook is the clsact filter parent the mark filter sits on.
func (s *shaper) hook() uint32 {
	if s.dir == ingress {
		return netlink.HANDLE_MIN_INGRESS
	}
	return netlink.HANDLE_MIN_EGRESS
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
	s.h, err = netlink.NewHandleAt(s.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink in namespace %q: %w", s.opts.NetNS, err)
	}
	s.diag, err = procnet.OpenDiag(s.opts.NetNS)
	if err != nil {
		return fmt.Errorf("open netlink in namespace %q: %w", s.opts.NetNS, err)
	}
	sock, err := nl.GetNetlinkSocketAt(s.ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink in namespace %q: %w", s.opts.NetNS, err)
	}
	s.rtnl = &nl.SocketHandle{Socket: sock}
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
	s.prog = objs.MarkEgress
	if s.dir == ingress {
		s.prog = objs.MarkIngress
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
	if s.rtnl != nil {
		s.rtnl.Socket.Close()
		s.rtnl = nil
	}
	if s.diag != nil {
		s.diag.Close()
		s.diag = nil
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
		if err := s.h.ClassReplace(s.htbClass(d, nt.minor, nt.limit.Rate)); err != nil {
			return fmt.Errorf("set htb class %x:%x on %s: %w", s.major(), nt.minor, d.shaped.Attrs().Name, err)
		}
		if err := setLeafFifo(s.rtnl, d.shaped.Attrs().Index, s.classID(nt.minor), leafLimit(d, nt.limit.Rate)); err != nil {
			return fmt.Errorf("size the queue of class %x:%x on %s: %w", s.major(), nt.minor, d.shaped.Attrs().Name, err)
		}
	}
	val := classifyTarget{Classid: s.classID(nt.minor), Traffic: uint32(nt.limit.Traffic)}
	m := s.objs.classifyMaps
	if nt.cgroup != 0 {
		if err := m.Cgroups.Put(nt.cgroup, val); err != nil {
			return fmt.Errorf("map cgroup %d: %w", nt.cgroup, err)
		}
	}
	if err := s.mapCookiesLocked(nt, prev); err != nil {
		return err
	}
	if prev != nil && prev.cgroup != 0 && prev.cgroup != nt.cgroup {
		_ = m.Cgroups.Delete(prev.cgroup)
	}
	return nil
}

// mapCookiesLocked points nt's socket cookies at its class and drops the
// cookies prev had and nt has not.
func (s *shaper) mapCookiesLocked(nt, prev *target) error {
	val := classifyTarget{Classid: s.classID(nt.minor), Traffic: uint32(nt.limit.Traffic)}
	m := s.objs.classifyMaps
	for _, c := range nt.keys.cookies {
		if err := m.Cookies.Put(c, val); err != nil {
			return fmt.Errorf("map socket cookie %d: %w", c, err)
		}
	}
	if prev == nil {
		return nil
	}
	keep := make(map[uint64]bool, len(nt.keys.cookies))
	for _, c := range nt.keys.cookies {
		keep[c] = true
	}
	for _, c := range prev.keys.cookies {
		if !keep[c] {
			_ = m.Cookies.Delete(c)
		}
	}
	return nil
}

// FollowSockets matches the sockets t's processes hold now and forgets the
// ones they closed (backends.SocketFollower): connections a listener opened
// before the limit accepts later carry its old cgroup, so only their cookie
// places them in the target's class. Without new or closed sockets it only
// reads /proc/PID/fd.
func (s *shaper) FollowSockets(t backends.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.targets[t.ID]
	if !ok || !s.inited {
		return nil
	}
	if maps.Equal(procnet.SocketInodesOf(t.PIDs), cur.keys.inodes) {
		return nil
	}
	keys, err := socketsOf(s.diag, t.PIDs)
	if err != nil {
		return fmt.Errorf("find sockets of target %s: %w", t.ID, err)
	}
	nt := *cur
	nt.keys = keys
	if err := s.mapCookiesLocked(&nt, cur); err != nil {
		_ = s.mapCookiesLocked(cur, &nt)
		return err
	}
	s.targets[t.ID] = &nt
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
	burst := wire / 20
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
		ClassAttrs: netlink.ClassAttrs{LinkIndex: d.shaped.Attrs().Index, Parent: s.rootHandle(), Handle: s.classID(minor)},
		Rate:       wire,
		Ceil:       wire,
		Buffer:     netlink.Xmittime(wire, uint32(burst)),
		Cbuffer:    netlink.Xmittime(wire, uint32(burst)),
		Quantum:    uint32(quantum),
	}
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
		if err := s.createIFB(d); err != nil {
			return err
		}
		if err := s.installRoot(d); err != nil {
			return err
		}
		if err := s.installMark(d); err != nil {
			return err
		}
	}
	return nil
}

// installRoot puts the HTB root and the to_class classifier on the IFB.
//
// Equivalent to: tc qdisc add dev ctifbX root handle c7a1: htb;
// tc filter add dev ctifbX parent c7a1: prio 3194 bpf da obj … sec to_class
// classid c7a1:
func (s *shaper) installRoot(d *shapedDev) error {
	name := d.shaped.Attrs().Name
	idx := d.shaped.Attrs().Index
	htb := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Parent: netlink.HANDLE_ROOT, Handle: s.rootHandle()})
	htb.Defcls = 0 // unclassified packets (none are expected) pass unshaped
	ql := uint32(1000)
	htb.DirectQlen = &ql
	if err := s.h.QdiscReplace(htb); err != nil {
		return fmt.Errorf("add htb root qdisc to %s: %w", name, err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: s.rootHandle(), Priority: FilterPrio,
			Protocol: unix.ETH_P_ALL},
		ClassId: s.rootHandle(), Fd: s.objs.ToClass.FD(), Name: FilterName, DirectAction: true,
	}
	if err := s.h.FilterReplace(f); err != nil {
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
	off := uint32(l2Header(d.real))
	if err := s.objs.classifyMaps.L3off.Put(uint32(idx), off); err != nil {
		return fmt.Errorf("set header offset of %s: %w", name, err)
	}
	has, err := s.hasClsact(d.real)
	if err != nil {
		return err
	}
	if !has {
		if err := s.h.QdiscAdd(clsact(idx)); err != nil {
			return fmt.Errorf("add clsact qdisc to %s: %w", name, err)
		}
		d.clsactCreated = true
	} else if ours, err := s.onlyOurFilters(d.real); err != nil {
		return err
	} else if ours {
		// The other direction's backend made it: whichever of us goes
		// last removes it.
		d.clsactCreated = true
	}
	if err := addMarkFilter(s.rtnl, s.hook(), idx, s.prog.FD(), d.shaped.Attrs().Index); err != nil {
		return fmt.Errorf("add mark filter to %s: %w", name, err)
	}
	d.marked = true
	return nil
}

func (s *shaper) hasClsact(l netlink.Link) (bool, error) {
	qs, err := s.h.QdiscList(l)
	if err != nil {
		return false, fmt.Errorf("list qdiscs of %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Type() == "clsact" || q.Type() == "ingress" && s.dir == ingress {
			return true, nil
		}
	}
	return false, nil
}

// addMarkFilter sends, over sock, the cls_bpf filter running prog on hook
// of interface idx with an act_mirred redirect to ifb.
func addMarkFilter(sock *nl.SocketHandle, hook uint32, idx, prog, ifb int) error {
	return addBPFFilter(sock, hook, idx, FilterPrio, 1, prog, false, netlink.NewMirredAction(ifb))
}

// addBPFFilter sends a cls_bpf filter (not direct action) with tc actions,
// which netlink.BpfFilter cannot carry. replace allows changing an existing
// filter with the same priority and handle.
func addBPFFilter(sock *nl.SocketHandle, hook uint32, idx int, prio uint16, handle uint32, prog int, replace bool, actions ...netlink.Action) error {
	flags := unix.NLM_F_CREATE | unix.NLM_F_EXCL | unix.NLM_F_ACK
	if replace {
		flags = unix.NLM_F_CREATE | unix.NLM_F_ACK
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWTFILTER, flags)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(idx), Handle: handle, Parent: hook,
		Info: netlink.MakeHandle(prio, nl.Swap16(unix.ETH_P_ALL))})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("bpf")))
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	opts.AddRtAttr(nl.TCA_BPF_FD, nl.Uint32Attr(uint32(prog)))
	opts.AddRtAttr(nl.TCA_BPF_NAME, nl.ZeroTerminated(FilterName))
	opts.AddRtAttr(nl.TCA_BPF_FLAGS, nl.Uint32Attr(0))
	act := opts.AddRtAttr(nl.TCA_BPF_ACT, nil)
	if err := netlink.EncodeActions(act, actions); err != nil {
		return err
	}
	req.AddData(opts)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sock}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// markFilter identifies the mark filter on interface idx for deletion.
func (s *shaper) markFilter(idx int) *netlink.BpfFilter {
	return &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: s.hook(),
		Priority: FilterPrio, Protocol: unix.ETH_P_ALL}}
}

// teardownLocked removes the mark filters, the clsact qdiscs this run added
// (if nothing else was attached to them meanwhile) and the IFB devices.
func (s *shaper) teardownLocked() error {
	var errs []error
	for _, d := range s.devs {
		if d.marked {
			if err := s.h.FilterDel(s.markFilter(d.real.Attrs().Index)); err != nil && !errors.Is(err, unix.ENOENT) {
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
		if s.objs != nil {
			_ = s.objs.classifyMaps.L3off.Delete(uint32(d.real.Attrs().Index))
		}
	}
	s.devs = nil
	return errors.Join(errs...)
}

// onlyOurFilters reports whether l's clsact carries filters and all of
// them are the product's.
func (s *shaper) onlyOurFilters(l netlink.Link) (bool, error) {
	n := 0
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := s.h.FilterList(l, parent)
		if err != nil {
			return false, fmt.Errorf("list filters of %s: %w", l.Attrs().Name, err)
		}
		for _, f := range fs {
			if p := f.Attrs().Priority; p != FilterPrio && p != PolicePrio {
				return false, nil
			}
			n++
		}
	}
	return n > 0, nil
}

// removeClsactIfEmpty deletes l's clsact qdisc when no filter is attached
// to either of its hooks.
func (s *shaper) removeClsactIfEmpty(l netlink.Link) error {
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := s.h.FilterList(l, parent)
		if err != nil {
			return fmt.Errorf("list filters of %s: %w", l.Attrs().Name, err)
		}
		if len(fs) > 0 {
			return nil
		}
	}
	if err := s.h.QdiscDel(clsact(l.Attrs().Index)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("remove clsact qdisc of %s: %w", l.Attrs().Name, err)
	}
	return nil
}

func clsact(idx int) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
}

// ifbPrefix starts the names of this direction's IFB devices.
func (s *shaper) ifbPrefix() string {
	if s.dir == ingress {
		return IFBPrefix + "d"
	}
	return IFBPrefix + "u"
}

// ifbName is the name of the product's IFB device for interface index idx.
func (s *shaper) ifbName(idx int) string {
	n := s.ifbPrefix() + strconv.Itoa(idx)
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

// tcU32Terminal is TC_U32_TERMINAL from linux/pkt_cls.h.
const tcU32Terminal = 1

// reconcile removes what a dead run of this backend left in the namespace:
// its IFB devices, its mark filters (and a clsact qdisc left empty by
// that), and HTB roots with its handle. Nothing else is touched.
func (s *shaper) reconcile() error {
	links, err := s.h.LinkList()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() == "ifb" && strings.HasPrefix(name, s.ifbPrefix()) {
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
			if a.Parent == netlink.HANDLE_ROOT && a.Handle == s.rootHandle() {
				if err := s.h.QdiscDel(q); err != nil {
					errs = append(errs, fmt.Errorf("remove leftover htb root of %s: %w", name, err))
				}
			}
			if q.Type() == "clsact" || q.Type() == "ingress" {
				if err := s.removeStaleMarks(l); err != nil {
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
func (s *shaper) removeStaleMarks(l netlink.Link) error {
	fs, err := s.h.FilterList(l, s.hook())
	if err != nil {
		return fmt.Errorf("list filters of %s: %w", l.Attrs().Name, err)
	}
	removed := map[uint16]bool{}
	for _, f := range fs {
		prio := f.Attrs().Priority
		if prio != FilterPrio && prio != PolicePrio || removed[prio] {
			continue
		}
		del := s.markFilter(l.Attrs().Index)
		del.Priority = prio
		if err := s.h.FilterDel(del); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove leftover filter of %s: %w", l.Attrs().Name, err)
		}
		removed[prio] = true
	}
	if len(removed) == 0 {
		return nil
	}
	return s.removeClsactIfEmpty(l)
}
