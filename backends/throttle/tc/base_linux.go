//go:build linux

package tc

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
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
	// GlobalPrio is the priority of the global limit's filters: after the
	// per-app ones, so a packet meets its app's limit first.
	GlobalPrio = FilterPrio + 2
	// GlobalUpMajor and GlobalDownMajor are the handle majors of the global
	// limit's HTB roots: on the interface itself (upload) and on its IFB
	// device (download).
	GlobalUpMajor   = 0xc7a3
	GlobalDownMajor = 0xc7a4
	// GlobalIFBPrefix starts the names of the global limit's IFB devices.
	GlobalIFBPrefix = "ctglb"

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

// base is what the three tc backends share: the network namespace and its
// netlink sockets, the BPF classifier whose maps tell the programs which
// sockets (cookie) and cgroups belong to which target, the interfaces
// limits apply to, and the table of limited targets. Its limiter puts the
// limits into the kernel: the shaper's IFB devices with HTB classes
// (tc_htb, ifb_tc) or Police's policers (tc_police). One mutex guards it
// all; the limiter runs under it.
type base struct {
	name   string
	dir    direction
	opts   backends.Options
	lim    limiter
	global bool // the global limit's half of this direction (global_linux.go)

	mu      sync.Mutex
	h       *netlink.Handle
	diag    *procnet.Diag // sock_diag in the namespace
	ns      netns.NsHandle
	rtnl    *nl.SocketHandle // for the filters netlink.Handle cannot express
	objs    *classifyObjects
	tagger  *socktarget.Tagger // whose socket_targets the programs read; nil when the kernel cannot tag
	ifaces  []netlink.Link
	targets map[string]*target
	inited  bool
	// releaseTimer is the pending release of shared state (releaseLater);
	// releases counts the ones not finished; releaseErr keeps the error of
	// the last one.
	releaseTimer *time.Timer
	releases     sync.WaitGroup
	releaseErr   error
}

// limiter is how a backend puts limits into the kernel. base calls it with
// its lock held, between Init and Cleanup.
type limiter interface {
	// install puts nt's limit in place, replacing prev (nil for a new
	// target). On error the kernel is left as it was.
	install(nt, prev *target) error
	// uninstall removes t's limit.
	uninstall(t *target) error
	// release removes what the limits shared, once none is left.
	release() error
}

// target is one limited target as installed.
type target struct {
	t       backends.Target
	limit   backends.Limit
	minor   uint16   // its class minor (HTB class, police filter handle)
	cgroups []uint64 // its cgroups' ids (backends.Target.AllCgroups)
	keys    sockKeys
}

func newBase(name string, dir direction, opts backends.Options) *base {
	return &base{name: name, dir: dir, opts: opts, targets: map[string]*target{}}
}

// hook is the clsact filter parent of this direction.
func (b *base) hook() uint32 {
	if b.dir == ingress {
		return netlink.HANDLE_MIN_INGRESS
	}
	return netlink.HANDLE_MIN_EGRESS
}

// major is the handle major of this direction's HTB roots and classes.
func (b *base) major() uint16 {
	if b.global {
		if b.dir == ingress {
			return GlobalDownMajor
		}
		return GlobalUpMajor
	}
	if b.dir == ingress {
		return DownloadMajor
	}
	return UploadMajor
}

func (b *base) rootHandle() uint32 { return netlink.MakeHandle(b.major(), 0) }

func (b *base) classID(minor uint16) uint32 { return netlink.MakeHandle(b.major(), minor) }

// ifbPrefix starts the names of this direction's IFB devices.
func (b *base) ifbPrefix() string {
	if b.global && b.dir == ingress {
		return GlobalIFBPrefix + "d"
	}
	if b.global {
		return GlobalIFBPrefix + "u"
	}
	if b.dir == ingress {
		return IFBPrefix + "d"
	}
	return IFBPrefix + "u"
}

// Init opens the namespace, finds the interfaces, removes leftovers of an
// earlier run and loads the classifier.
func (b *base) Init() (err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inited {
		return nil
	}
	defer func() {
		if err != nil {
			b.closeLocked()
		}
	}()
	if err := b.openLocked(); err != nil {
		return err
	}
	b.ifaces, err = interfaces(b.h, b.opts.Interfaces)
	if err != nil {
		return err
	}
	if err := b.reconcile(); err != nil {
		return fmt.Errorf("remove leftovers of an earlier run: %w", err)
	}
	var objs classifyObjects
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{}}
	if tg, err := socktarget.Acquire(b.opts.Tag); err == nil {
		b.tagger = tg // closed by closeLocked, also when Init fails
		maps.Copy(opts.MapReplacements, tg.Replacements())
	}
	if b.global && b.dir == ingress {
		maps.Copy(opts.MapReplacements, nestedMaps(b.opts.Tag)) // globalnest_linux.go
	}
	if err := loadClassifyObjects(&objs, opts); err != nil {
		return fmt.Errorf("load classifier: %w", err)
	}
	b.objs = &objs
	b.inited = true
	return nil
}

// openLocked opens the namespace and the netlink and sock_diag sockets in it.
func (b *base) openLocked() (err error) {
	if b.opts.NetNS != "" {
		b.ns, err = netns.GetFromPath(b.opts.NetNS)
	} else {
		b.ns, err = netns.Get()
	}
	if err != nil {
		return fmt.Errorf("open network namespace %q: %w", b.opts.NetNS, err)
	}
	b.h, err = netlink.NewHandleAt(b.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink in namespace %q: %w", b.opts.NetNS, err)
	}
	b.diag, err = procnet.OpenDiag(b.opts.NetNS)
	if err != nil {
		return fmt.Errorf("open netlink in namespace %q: %w", b.opts.NetNS, err)
	}
	sock, err := nl.GetNetlinkSocketAt(b.ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink in namespace %q: %w", b.opts.NetNS, err)
	}
	b.rtnl = &nl.SocketHandle{Socket: sock}
	return nil
}

// closeLocked closes what Init opened and loaded; the kernel objects that
// carry limits stay.
func (b *base) closeLocked() {
	if b.objs != nil {
		b.objs.Close()
		b.objs = nil
	}
	if b.tagger != nil {
		_ = b.tagger.Close()
		b.tagger = nil
	}
	if b.h != nil {
		b.h.Close()
		b.h = nil
	}
	if b.rtnl != nil {
		b.rtnl.Socket.Close()
		b.rtnl = nil
	}
	if b.diag != nil {
		b.diag.Close()
		b.diag = nil
	}
	if b.ns.IsOpen() {
		b.ns.Close()
		b.ns = netns.None()
	}
	b.inited = false
}

// Cleanup removes every limit and the kernel objects that carried them.
func (b *base) Cleanup() error {
	b.mu.Lock()
	b.keepShared() // released below, now
	b.mu.Unlock()
	b.releases.Wait() // one that already fired
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.inited {
		return nil
	}
	errs := []error{b.releaseErr}
	b.releaseErr = nil
	for id := range b.targets {
		if err := b.removeLocked(id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := b.lim.release(); err != nil {
		errs = append(errs, err)
	}
	b.closeLocked()
	return errors.Join(errs...)
}

// SetLimit creates or updates a target's limit on every interface. On error
// the kernel is left as it was before the call.
func (b *base) SetLimit(t backends.Target, l backends.Limit) error {
	return b.setTarget(t, l, 0)
}

// setTarget is SetLimit with the target's class minor given (0: one of its
// own).
func (b *base) setTarget(t backends.Target, l backends.Limit, minor uint16) error {
	if err := b.validate(t, l); err != nil {
		return err
	}
	pids, err := livePIDs(t)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.inited {
		return fmt.Errorf("%s: not initialised", b.name)
	}
	keys, err := socketsOf(b.diag, pids)
	if err != nil {
		return fmt.Errorf("find sockets of target %s: %w", t.ID, err)
	}
	prev := b.targets[t.ID]
	nt := &target{t: t, limit: l, cgroups: t.CgroupIDs(), keys: keys}
	if minor != 0 {
		nt.minor = minor
	} else if prev != nil {
		nt.minor = prev.minor
	} else if nt.minor, err = b.allocMinor(); err != nil {
		return err
	}
	// A new limit clamps the buffers of connections already running
	// before its class exists, and lets what they hold or were offered
	// drain first (socktarget.AdoptDrain): else that overflows the queue.
	first := prev == nil
	if first {
		b.clampSockets(nt)
	}
	b.keepShared()
	if err := b.lim.install(nt, prev); err != nil {
		if first {
			b.unclampSockets(nt)
		}
		if len(b.targets) == 0 {
			b.releaseLater()
		}
		return err
	}
	b.targets[t.ID] = nt
	if !first {
		b.clampSockets(nt)
	}
	return nil
}

// validate checks a SetLimit call before anything is touched.
func (b *base) validate(t backends.Target, l backends.Limit) error {
	if !b.inited {
		return fmt.Errorf("%s: not initialised", b.name)
	}
	if t.ID == "" {
		return errors.New("target has no id")
	}
	return l.Check()
}

func (b *base) allocMinor() (uint16, error) {
	used := map[uint16]bool{}
	for _, t := range b.targets {
		used[t.minor] = true
	}
	for m := uint16(2); m < 0xfff0; m++ {
		if !used[m] {
			return m, nil
		}
	}
	return 0, errors.New("too many limited targets")
}

// RemoveLimit removes a target's limit; when no limit is left, what the
// limits shared goes too, right after the call (releaseLater).
func (b *base) RemoveLimit(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.inited {
		return nil
	}
	err := b.removeLocked(id)
	if len(b.targets) == 0 {
		b.releaseLater()
	}
	return err
}

// releaseGrace is how long what the limits shared (IFB devices, mark
// filters) stays after the last limit is removed.
var releaseGrace = 5 * time.Second

// releaseLater removes what the limits shared off the caller's path, after
// releaseGrace: deleting a device waits for the kernel's RCU grace periods,
// and the call that removed the last limit took 65–68 ms at p99 for it
// (issue #13); a limit set right after it (a user moving a slider to
// "unlimited" and back, the next rule of a script) waited as long behind
// the teardown. The traffic is unshaped at once: the last target's classes
// and map entries went with it. A limit set within the grace period keeps
// everything (keepShared); Cleanup releases at once, so nothing is left
// once the helper is idle. Called with b.mu held.
func (b *base) releaseLater() {
	if b.releaseTimer != nil {
		return
	}
	b.releases.Add(1)
	var tm *time.Timer
	tm = time.AfterFunc(releaseGrace, func() {
		defer b.releases.Done()
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.releaseTimer != tm {
			return // kept by a new limit, or taken over by Cleanup or released
		}
		b.releaseTimer = nil
		b.releaseIdleLocked()
	})
	b.releaseTimer = tm
}

// releaseIdleLocked removes what the limits shared when none is left.
func (b *base) releaseIdleLocked() {
	if b.inited && len(b.targets) == 0 {
		b.releaseErr = b.lim.release()
	}
}

// keepShared cancels a pending release. Called with b.mu held.
func (b *base) keepShared() {
	if b.releaseTimer != nil && b.releaseTimer.Stop() {
		b.releases.Done()
	}
	b.releaseTimer = nil
}

// released runs a pending release now, waits until the shared state of the
// last removed limit is gone and returns the error of its release.
func (b *base) released() error {
	b.mu.Lock()
	if b.releaseTimer != nil {
		b.keepShared() // a timer already firing then finds it taken over
		b.releaseIdleLocked()
	}
	b.mu.Unlock()
	b.releases.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.releaseErr
	b.releaseErr = nil
	return err
}

func (b *base) removeLocked(id string) error {
	t, ok := b.targets[id]
	if !ok {
		return nil
	}
	delete(b.targets, id)
	b.unclampSockets(t)
	return b.lim.uninstall(t)
}

// Limit returns a target's limit.
func (b *base) Limit(id string) (backends.Limit, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.targets[id]
	if !ok {
		return backends.Limit{}, false
	}
	return t.limit, true
}

// FollowSockets matches the sockets t's processes hold now and forgets the
// ones they closed (backends.SocketFollower): connections a listener opened
// before the limit accepts later carry its old cgroup, so only their cookie
// places them in the target's class. Without new or closed sockets it only
// reads /proc/PID/fd.
func (b *base) FollowSockets(t backends.Target) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.targets[t.ID]
	if !ok || !b.inited {
		return nil
	}
	if maps.Equal(procnet.SocketInodesOf(t.PIDs), cur.keys.inodes) {
		return nil
	}
	keys, err := socketsOf(b.diag, t.PIDs)
	if err != nil {
		return fmt.Errorf("find sockets of target %s: %w", t.ID, err)
	}
	nt := *cur
	nt.keys = keys
	if err := b.mapCookies(&nt, cur); err != nil {
		_ = b.mapCookies(cur, &nt)
		return err
	}
	b.targets[t.ID] = &nt
	return nil
}

// links returns the interfaces limits apply to.
func (b *base) links() []netlink.Link { return b.ifaces }
