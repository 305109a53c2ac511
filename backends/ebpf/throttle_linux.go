//go:build linux && !no_ebpf

package ebpf

import (
	"errors"
	"fmt"
	"maps"
	"sync"

	cilium "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
)

type direction int

const (
	egress direction = iota
	ingress
)

func (d direction) String() string {
	if d == egress {
		return "upload"
	}
	return "download"
}

func probeThrottle(d direction) error {
	if err := probeKernel(); err != nil {
		return err
	}
	spec, err := loadThrottle()
	if err != nil {
		return fmt.Errorf("read throttle object: %w", err)
	}
	// Only this direction's program is loaded.
	keep := "ct_throttle_egress"
	if d == ingress {
		keep = "ct_throttle_ingress"
	}
	for name := range spec.Programs {
		if name != keep {
			delete(spec.Programs, name)
		}
	}
	return probeLoad(spec, d.String()+" throttle")
}

// throttler is the ebpf_cgroup upload or download backend.
type throttler struct {
	dir  direction
	opts backends.Options

	mu      sync.Mutex
	objs    *throttleObjects
	root    string    // cgroup2 mount
	link    link.Link // nil while no limit is set
	targets map[string]*target
	nextIdx uint32
	pace    *pacer // upload only: TCP pacing under the bucket (pace_linux.go)
	// tagger is the socket tagger whose socket_targets the program reads
	// (nil when the kernel cannot tag sockets: the program has its own,
	// empty map then).
	tagger *socktarget.Tagger
}

// untagged is the first bucket key of targets without a socket tag; tags
// (socktarget numbers, the keys of tagged targets' buckets) stay below it.
const untagged = 1 << 31

type target struct {
	idx     uint32
	limit   backends.Limit
	cgroups []uint64 // its cgroups' ids (backends.Target.AllCgroups)
	cookies []uint64
	inodes  map[uint64]bool // the sockets its processes held when last matched
	clamped uint32          // the tag whose receive window is clamped (rwnd_linux.go)
	pids    []int           // its processes (backends.Target.PIDs), whose clamped sockets an unclamp finds
}

type uploadThrottler struct {
	*throttler
	backends.UploadOnly
}

type downloadThrottler struct {
	*throttler
	backends.DownloadOnly
}

// NewUpload returns the ebpf_cgroup upload throttler.
func NewUpload(opts backends.Options) backends.UploadThrottleBackend {
	return uploadThrottler{throttler: &throttler{dir: egress, opts: opts, pace: newPacer(opts.Tag)}}
}

// NewDownload returns the ebpf_cgroup download throttler.
func NewDownload(opts backends.Options) backends.DownloadThrottleBackend {
	return downloadThrottler{throttler: &throttler{dir: ingress, opts: opts}}
}

func (t *throttler) Name() string                { return "ebpf_cgroup" }
func (t *throttler) Priority() backends.Priority { return backends.Best }
func (t *throttler) Capabilities() backends.Capabilities {
	return backends.Capabilities{
		IPv4: true, IPv6: true, PerProcess: true, PerApp: true,
		TrafficTypes:        []backends.TrafficType{backends.TrafficInternet, backends.TrafficLocal},
		ExistingConnections: true,
	}
}

// Init loads the program and checks that it attaches to the cgroup2 root.
// It is attached (with a link this process owns, on the root so every
// socket passes through it wherever it was created) only while at least
// one limit is set, so unlimited traffic pays nothing the rest of the time.
// There is nothing to reconcile: a dead helper's links died with it.
func (t *throttler) Init() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.objs != nil {
		return nil
	}
	if err := probeKernel(); err != nil {
		return err
	}
	spec, err := loadThrottle()
	if err != nil {
		return fmt.Errorf("read throttle object: %w", err)
	}
	objs := &throttleObjects{}
	tagger, opts := acquireTagger(t.opts.Tag)
	if err := spec.LoadAndAssign(objs, opts); err != nil {
		closeTagger(tagger)
		return fmt.Errorf("load %s throttle programs: %w", t.dir, err)
	}
	root, err := cgroupv2.Mount()
	if err == nil {
		t.objs, t.root = objs, root
		if err = t.attachLocked(); err == nil {
			err = t.detachLocked()
		}
	}
	if err != nil {
		objs.Close()
		closeTagger(tagger)
		t.objs = nil
		return err
	}
	t.targets = map[string]*target{}
	t.nextIdx = untagged
	t.tagger = tagger
	if t.pace != nil {
		t.pace.rec.recover() // a killed helper's pacing (pacerecord_linux.go)
	}
	return nil
}

// acquireTagger returns the process's socket tagger for tag and the load
// options that make a program read its socket_targets, or nil and nil
// when the kernel cannot tag sockets (the program keeps its own, empty
// map, and targets are matched by cgroup and cookie only).
func acquireTagger(tag string) (*socktarget.Tagger, *cilium.CollectionOptions) {
	tg, err := socktarget.Acquire(tag)
	if err != nil {
		return nil, nil
	}
	return tg, &cilium.CollectionOptions{MapReplacements: tg.Replacements()}
}

func closeTagger(tg *socktarget.Tagger) {
	if tg != nil {
		_ = tg.Close()
	}
}

func (t *throttler) attachLocked() error {
	if t.link != nil {
		return nil
	}
	prog, at := t.objs.CtThrottleEgress, cilium.AttachCGroupInetEgress
	if t.dir == ingress {
		prog, at = t.objs.CtThrottleIngress, cilium.AttachCGroupInetIngress
	}
	l, err := attachCgroup(t.root, prog, at)
	if err != nil {
		return err
	}
	t.link = l
	return nil
}

func (t *throttler) detachLocked() error {
	if t.link == nil {
		return nil
	}
	err := t.link.Close()
	t.link = nil
	if err != nil {
		return fmt.Errorf("detach %s throttle program: %w", t.dir, err)
	}
	return nil
}

// Cleanup detaches the program and frees the maps (every limit goes).
func (t *throttler) Cleanup() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.objs == nil {
		return nil
	}
	if t.pace != nil {
		t.pace.close()
	}
	for _, cur := range t.targets {
		t.unclampReceive(cur)
	}
	var errs []error
	if err := t.detachLocked(); err != nil {
		errs = append(errs, err)
	}
	if err := t.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	closeTagger(t.tagger)
	t.objs, t.targets, t.tagger = nil, nil, nil
	return errors.Join(errs...)
}

// SetLimit gives the target a bucket, matches sockets created in its cgroup
// and the sockets its processes already hold (by cookie).
func (t *throttler) SetLimit(tg backends.Target, l backends.Limit) error {
	if tg.ID == "" {
		return errors.New("target has no id")
	}
	if err := l.Check(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.objs == nil {
		return fmt.Errorf("%s throttle ebpf_cgroup is not initialised", t.dir)
	}
	// Sockets the processes hold now: found first, so a failure leaves
	// nothing behind.
	inodes := procnet.SocketInodesOf(tg.PIDs)
	socks, err := procnet.SocketsWith(t.opts.NetNS, inodes)
	if err != nil {
		return fmt.Errorf("find open sockets of target %s: %w", tg.ID, err)
	}
	old, existed := t.targets[tg.ID]
	cur := &target{limit: l, cgroups: tg.CgroupIDs(), inodes: inodes, idx: t.bucketKey(tg, old), pids: tg.PIDs}
	if existed && old.idx != cur.idx {
		return fmt.Errorf("target %s changed its socket tag (%d to %d)", tg.ID, old.idx, cur.idx)
	}
	if err := t.writeBucket(cur.idx, l, existed); err != nil {
		return err
	}
	// Paced before the bucket sees the sockets: a segment sent at full
	// speed into the empty bucket was stopped, and TCP, with nothing in
	// flight, waited for its probe timer (the receiver got nothing for
	// 100–200 ms after the call, then the pacer used the tokens saved
	// meanwhile: 1.06 × the limit for the next 1.5 s).
	if t.pace != nil {
		t.pace.set(tg.ID, l, tg.PIDs, t.bucketFill(cur.idx))
	}
	rollback := func(err error) error {
		if t.pace != nil && existed {
			t.pace.set(tg.ID, old.limit, old.pids, t.bucketFill(old.idx))
		} else if t.pace != nil {
			t.pace.remove(tg.ID)
		}
		if !existed {
			t.removeLocked(cur)
			if len(t.targets) == 0 {
				t.detachLocked()
			}
		}
		return err
	}
	if err := t.mapCgroups(tg, cur, old); err != nil {
		return rollback(err)
	}
	seen := map[uint64]bool{}
	if existed {
		for _, c := range old.cookies {
			seen[c] = true
		}
		cur.cookies = old.cookies
	}
	for _, s := range socks {
		if seen[s.Cookie] {
			continue
		}
		if err := t.objs.SockTarget.Put(s.Cookie, cur.idx); err != nil {
			return rollback(fmt.Errorf("match socket %v of target %s: %w", s, tg.ID, err))
		}
		seen[s.Cookie] = true
		cur.cookies = append(cur.cookies, s.Cookie)
	}
	if err := t.attachLocked(); err != nil {
		return rollback(err)
	}
	t.targets[tg.ID] = cur
	if !existed && tg.Tag == 0 {
		t.nextIdx++
	}
	t.clampReceive(cur, old, tg.Tag)
	return nil
}

// bucketKey is the key of tg's bucket: its socket tag, which the program
// finds on the sockets tagged at creation, else a number of its own.
func (t *throttler) bucketKey(tg backends.Target, old *target) uint32 {
	switch {
	case old != nil:
		if tg.Tag != 0 {
			return tg.Tag
		}
		return old.idx
	case tg.Tag != 0:
		return tg.Tag
	}
	return t.nextIdx
}

// FollowSockets matches the sockets tg's processes hold now and forgets the
// ones they closed (backends.SocketFollower): connections a listener opened
// before the limit accepts later carry its old cgroup, so only their cookie
// puts them in the target's bucket. Without new or closed sockets it only
// reads /proc/PID/fd.
func (t *throttler) FollowSockets(tg backends.Target) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.targets[tg.ID]
	if !ok || t.objs == nil {
		return nil
	}
	if t.pace != nil {
		t.pace.follow(tg.ID, tg.PIDs)
	}
	cur.pids = tg.PIDs
	inodes := procnet.SocketInodesOf(tg.PIDs)
	if maps.Equal(inodes, cur.inodes) {
		return nil
	}
	socks, err := procnet.SocketsWith(t.opts.NetNS, inodes)
	if err != nil {
		return fmt.Errorf("find open sockets of target %s: %w", tg.ID, err)
	}
	had := make(map[uint64]bool, len(cur.cookies))
	for _, c := range cur.cookies {
		had[c] = true
	}
	keep := make(map[uint64]bool, len(socks))
	cookies := make([]uint64, 0, len(socks))
	for _, s := range socks {
		if keep[s.Cookie] {
			continue
		}
		if !had[s.Cookie] {
			if err := t.objs.SockTarget.Put(s.Cookie, cur.idx); err != nil {
				return fmt.Errorf("match socket %v of target %s: %w", s, tg.ID, err)
			}
		}
		keep[s.Cookie] = true
		cookies = append(cookies, s.Cookie)
	}
	for _, c := range cur.cookies {
		if !keep[c] {
			_ = t.objs.SockTarget.Delete(c)
		}
	}
	cur.cookies, cur.inodes = cookies, inodes
	return nil
}

// writeBucket creates or updates a bucket. A new bucket starts empty, so the
// limit bites at once; an updated one keeps its tokens up to the new burst.
func (t *throttler) writeBucket(idx uint32, l backends.Limit, existed bool) error {
	burst, strict := bucketFor(t.dir, l.Rate)
	b := throttleBucket{Traffic: uint32(l.Traffic), Rate: uint64(l.Rate), Burst: burst, LastNs: monotonicNow(), WinCap: secondCap(t.dir, l.Rate)}
	if strict {
		b.Strict = 1
	}
	if existed {
		var prev throttleBucket
		if err := t.objs.Buckets.LookupWithFlags(idx, &prev, cilium.LookupLock); err == nil {
			b.Tokens = min(prev.Tokens, burst)
			b.LastNs = prev.LastNs
			b.Passed, b.Dropped, b.Marked = prev.Passed, prev.Dropped, prev.Marked
			if b.WinCap != 0 && prev.WinCap != 0 { // what passed in the last second still counts
				b.WinSlot, b.WinSum, b.Win = prev.WinSlot, prev.WinSum, prev.Win
			}
		}
	}
	if err := t.objs.Buckets.Update(idx, &b, cilium.UpdateLock); err != nil {
		return fmt.Errorf("write token bucket %d: %w", idx, err)
	}
	return nil
}

// RemoveLimit implements backends.Throttler.
func (t *throttler) RemoveLimit(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.targets[id]
	if !ok || t.objs == nil {
		return nil
	}
	delete(t.targets, id)
	if t.pace != nil {
		t.pace.remove(id)
	}
	err := t.removeLocked(cur)
	if len(t.targets) == 0 {
		err = errors.Join(err, t.detachLocked())
	}
	return err
}

func (t *throttler) removeLocked(cur *target) error {
	t.unclampReceive(cur)
	var errs []error
	for _, c := range cur.cookies {
		if err := t.objs.SockTarget.Delete(c); err != nil && !errors.Is(err, cilium.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	for _, cg := range cur.cgroups {
		if err := t.objs.CgroupTarget.Delete(cg); err != nil && !errors.Is(err, cilium.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	if err := t.objs.Buckets.Delete(cur.idx); err != nil && !errors.Is(err, cilium.ErrKeyNotExist) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove %s limit: %w", t.dir, errors.Join(errs...))
	}
	return nil
}

// Limit implements backends.Throttler.
func (t *throttler) Limit(id string) (backends.Limit, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.targets[id]
	if !ok {
		return backends.Limit{}, false
	}
	return cur.limit, true
}
