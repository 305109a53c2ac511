//go:build linux && !no_ebpf

package ebpf

import (
	"errors"
	"fmt"
	"sync"

	cilium "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
)

func probeBlock() error {
	if err := probeKernel(); err != nil {
		return err
	}
	spec, err := loadBlock()
	if err != nil {
		return fmt.Errorf("read block object: %w", err)
	}
	return probeLoad(spec, "block")
}

// blocker is the ebpf_block backend: cgroup/connect4|6 and sendmsg4|6
// programs refuse a blocked target's new connections with EPERM, and
// cgroup_skb programs drop the packets of its open sockets (block.c). All
// six are attached to the cgroup2 root with links this process owns, only
// while something is blocked.
type blocker struct {
	opts backends.Options

	mu      sync.Mutex
	objs    *blockObjects
	root    string
	links   []link.Link // empty while nothing is blocked
	targets map[string]*blockedTarget
	nextIdx uint32
	tagger  *socktarget.Tagger // whose socket_targets the programs read; nil when the kernel cannot tag
}

// blockedTarget is a target the programs know: blocked, budgeted
// (budget_linux.go) or both.
type blockedTarget struct {
	idx     uint32
	blocked bool
	traffic backends.TrafficType
	budget  backends.Budget
	id      targetIdentity
}

// NewBlocker returns the ebpf_block blocker.
func NewBlocker(opts backends.Options) backends.Blocker { return &blocker{opts: opts} }

func (b *blocker) Name() string                { return "ebpf_block" }
func (b *blocker) Priority() backends.Priority { return backends.Best }
func (b *blocker) Capabilities() backends.Capabilities {
	return backends.Capabilities{
		IPv4: true, IPv6: true, PerProcess: true, PerApp: true,
		TrafficTypes:        []backends.TrafficType{backends.TrafficInternet, backends.TrafficLocal},
		ExistingConnections: true,
	}
}

// Init loads the programs and checks that they attach to the cgroup2 root.
// A dead helper's links died with it: there is nothing to reconcile.
func (b *blocker) Init() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.objs != nil {
		return nil
	}
	if err := probeKernel(); err != nil {
		return err
	}
	spec, err := loadBlock()
	if err != nil {
		return fmt.Errorf("read block object: %w", err)
	}
	objs := &blockObjects{}
	tagger, opts := acquireTagger(b.opts.Tag)
	if err := spec.LoadAndAssign(objs, opts); err != nil {
		closeTagger(tagger)
		return fmt.Errorf("load block programs: %w", err)
	}
	root, err := cgroupv2.Mount()
	if err != nil {
		objs.Close()
		closeTagger(tagger)
		return err
	}
	b.objs, b.root = objs, root
	err = b.attachLocked()
	if err == nil {
		err = b.detachLocked()
	}
	if err != nil {
		objs.Close()
		closeTagger(tagger)
		b.objs = nil
		return err
	}
	b.targets = map[string]*blockedTarget{}
	b.nextIdx = 1
	b.tagger = tagger
	return nil
}

func (b *blocker) attachLocked() error {
	if len(b.links) > 0 {
		return nil
	}
	for _, p := range []struct {
		prog *cilium.Program
		at   cilium.AttachType
	}{
		{b.objs.CtBlockConnect4, cilium.AttachCGroupInet4Connect},
		{b.objs.CtBlockConnect6, cilium.AttachCGroupInet6Connect},
		{b.objs.CtBlockSendmsg4, cilium.AttachCGroupUDP4Sendmsg},
		{b.objs.CtBlockSendmsg6, cilium.AttachCGroupUDP6Sendmsg},
		{b.objs.CtBlockEgress, cilium.AttachCGroupInetEgress},
		{b.objs.CtBlockIngress, cilium.AttachCGroupInetIngress},
	} {
		l, err := attachCgroup(b.root, p.prog, p.at)
		if err != nil {
			_ = b.detachLocked()
			return err
		}
		b.links = append(b.links, l)
	}
	return nil
}

func (b *blocker) detachLocked() error {
	var errs []error
	for _, l := range b.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	b.links = nil
	if len(errs) > 0 {
		return fmt.Errorf("detach block programs: %w", errors.Join(errs...))
	}
	return nil
}

// Cleanup detaches the programs and frees the maps (every block goes).
func (b *blocker) Cleanup() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.objs == nil {
		return nil
	}
	err := b.detachLocked()
	err = errors.Join(err, b.objs.Close())
	closeTagger(b.tagger)
	b.objs, b.targets, b.tagger = nil, nil, nil
	return err
}

// Block implements backends.Blocker.
func (b *blocker) Block(t backends.Target, traffic backends.TrafficType) error {
	if traffic < backends.TrafficAll || traffic > backends.TrafficLocal {
		return fmt.Errorf("unknown traffic type %d", traffic)
	}
	return b.upsert(t, func(cur *blockedTarget) { cur.blocked, cur.traffic = true, traffic })
}

// upsert adds target t, or updates its identity, with change made to its
// entry.
func (b *blocker) upsert(t backends.Target, change func(*blockedTarget)) error {
	if t.ID == "" {
		return errors.New("target has no id")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.objs == nil {
		return errors.New("blocker ebpf_block is not initialised")
	}
	old, existed := b.targets[t.ID]
	var prev *targetIdentity
	if existed {
		prev = &old.id
	}
	id, err := identityOf(b.opts.NetNS, t, prev)
	if err != nil {
		return err
	}
	cur := &blockedTarget{idx: b.nextIdx, id: id}
	if existed {
		c := *old
		cur = &c
		cur.id = id
	}
	change(cur)
	if err := b.writeLocked(cur, old); err != nil {
		if !existed {
			_ = b.removeLocked(cur)
		}
		return err
	}
	if err := b.attachLocked(); err != nil {
		if !existed {
			_ = b.removeLocked(cur)
		}
		return err
	}
	b.targets[t.ID] = cur
	if !existed {
		b.nextIdx++
	}
	return nil
}

// writeLocked puts cur's entry and identity in the maps; old (nil for a
// new target) is what was there, whose keys cur no longer has are deleted.
func (b *blocker) writeLocked(cur, old *blockedTarget) error {
	if err := b.putEntryLocked(cur, old); err != nil {
		return err
	}
	if cur.id.tag != 0 {
		if err := b.objs.BlockTag.Put(cur.id.tag, cur.idx); err != nil {
			return fmt.Errorf("match socket tag %d: %w", cur.id.tag, err)
		}
	}
	for cg := range cur.id.cgroups {
		if err := b.objs.BlockCgroup.Put(cg, cur.idx); err != nil {
			return fmt.Errorf("match cgroup %d: %w", cg, err)
		}
	}
	if cur.id.level > 0 {
		if err := b.objs.BlockSettings.Put(uint32(0), uint32(cur.id.level)); err != nil {
			return fmt.Errorf("set cgroup level: %w", err)
		}
	}
	for c := range cur.id.cookies {
		if old != nil && old.id.cookies[c] {
			continue
		}
		if err := b.objs.BlockSock.Put(c, cur.idx); err != nil {
			return fmt.Errorf("match socket %d: %w", c, err)
		}
	}
	for k := range cur.id.exes {
		if err := b.objs.BlockExe.Put(k, cur.idx); err != nil {
			return fmt.Errorf("match executable %+v: %w", k, err)
		}
	}
	if old == nil {
		return nil
	}
	for k := range old.id.exes {
		if !cur.id.exes[k] {
			_ = b.objs.BlockExe.Delete(k)
		}
	}
	for cg := range old.id.cgroups {
		if !cur.id.cgroups[cg] {
			_ = b.objs.BlockCgroup.Delete(cg)
		}
	}
	if old.id.tag != 0 && old.id.tag != cur.id.tag {
		_ = b.objs.BlockTag.Delete(old.id.tag)
	}
	for c := range old.id.cookies {
		if !cur.id.cookies[c] {
			_ = b.objs.BlockSock.Delete(c)
		}
	}
	return nil
}

// FollowSockets matches the sockets t's processes hold now and forgets the
// ones they closed (backends.SocketFollower), like the throttlers.
func (b *blocker) FollowSockets(t backends.Target) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.targets[t.ID]
	if !ok || b.objs == nil {
		return nil
	}
	id, err := identityOf(b.opts.NetNS, t, &cur.id)
	if err != nil {
		return err
	}
	// The cgroups are the manager's business (Apply), not ours here.
	id.cgroups, id.level, id.tag = cur.id.cgroups, cur.id.level, cur.id.tag
	c := *cur
	next := &c
	next.id = id
	if err := b.writeLocked(next, cur); err != nil {
		return err
	}
	b.targets[t.ID] = next
	return nil
}

// Unblock implements backends.Blocker; a budget the target has stays.
func (b *blocker) Unblock(id string) error {
	return b.lift(id, func(cur *blockedTarget) { cur.blocked, cur.traffic = false, 0 })
}

// lift makes change to target id's entry and removes the target when it is
// left neither blocked nor budgeted.
func (b *blocker) lift(id string, change func(*blockedTarget)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.targets[id]
	if !ok || b.objs == nil {
		return nil
	}
	c := *old
	cur := &c
	change(cur)
	if cur.blocked || cur.budget.On {
		if err := b.putEntryLocked(cur, old); err != nil {
			return err
		}
		b.targets[id] = cur
		return nil
	}
	delete(b.targets, id)
	err := b.removeLocked(cur)
	if len(b.targets) == 0 {
		err = errors.Join(err, b.detachLocked())
	}
	return err
}

func (b *blocker) removeLocked(cur *blockedTarget) error {
	var errs []error
	del := func(m *cilium.Map, k any) {
		if err := m.Delete(k); err != nil && !errors.Is(err, cilium.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	for c := range cur.id.cookies {
		del(b.objs.BlockSock, c)
	}
	for k := range cur.id.exes {
		del(b.objs.BlockExe, k)
	}
	for cg := range cur.id.cgroups {
		del(b.objs.BlockCgroup, cg)
	}
	if cur.id.tag != 0 {
		del(b.objs.BlockTag, cur.id.tag)
	}
	del(b.objs.Blocks, cur.idx)
	if len(errs) > 0 {
		return fmt.Errorf("remove block: %w", errors.Join(errs...))
	}
	return nil
}

// Blocked implements backends.Blocker.
func (b *blocker) Blocked(id string) (backends.TrafficType, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.targets[id]
	if !ok || !cur.blocked {
		return 0, false
	}
	return cur.traffic, true
}

// blockCounts returns how many connect/sendmsg calls of a target were
// refused and how many of its packets were dropped.
func (b *blocker) blockCounts(id string) (refused, dropped uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.targets[id]
	if !ok || b.objs == nil {
		return 0, 0
	}
	var v blockBlock
	_ = b.objs.Blocks.Lookup(cur.idx, &v)
	return v.Refused, v.Dropped
}
