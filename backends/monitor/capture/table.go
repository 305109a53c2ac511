//go:build !no_capture

package capture

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
)

// flowKey names a flow from the local side: protocol, local and remote
// address (IPv4-mapped addresses normalised to IPv4).
type flowKey struct {
	proto  uint8
	local  netip.AddrPort
	remote netip.AddrPort
}

func (k flowKey) protoName() backends.Proto {
	if k.proto == protoUDP {
		return backends.UDP
	}
	return backends.TCP
}

type flowState uint8

const (
	statePending    flowState = iota // being resolved; bytes held in flow.held
	stateAttributed                  // bytes go to flow.proc
	stateUnknown                     // bytes go to the table's Unknown
)

// flow is one connection (or UDP address pair) seen on the wire.
type flow struct {
	key     flowKey
	c       backends.Counters // all traffic of the flow since it was first seen
	held    backends.Counters // traffic seen while pending, credited on resolution
	proc    *proc
	state   flowState
	queued  bool // in the resolver's hands
	closed  bool // FIN or RST seen
	first   time.Time
	last    time.Time
	retryAt time.Time // unknown flows are looked at again after this
	seq     seqTrack  // TCP: bytes delivered, from sequence numbers
}

// proc is one process with traffic. It is keyed by pid and start time, so a
// reused pid is a new proc.
type proc struct {
	info   backends.ProcessInfo
	c      backends.Counters
	flows  map[*flow]struct{}
	last   time.Time // last packet
	exited bool
	exitAt time.Time
	gone   bool // reported as exited and dropped
}

type procKey struct {
	pid   int
	start uint64
}

// resolution is a resolver's answer for one flow.
type resolution struct {
	// info identifies the owning process; PID 0 means none was found.
	info backends.ProcessInfo
	// retry asks for another attempt after the given delay; otherwise the
	// answer is final (for now: unknown flows are looked at again later).
	retry time.Duration
	// patience bounds the retries: the flow is given up once it has been
	// pending this long (0 means giveUpAfter).
	patience time.Duration
}

// Timings of the flow table.
const (
	giveUpAfter   = 3 * time.Second  // a pending flow becomes unknown after this
	unknownRetry  = 5 * time.Second  // an unknown flow with traffic is resolved again after this
	drainIdle     = 2 * time.Second  // an exited process is dropped once idle this long …
	drainMax      = 60 * time.Second // … or this long after its exit
	closedExpiry  = 10 * time.Second // a closed flow leaves the table after this idle time
	idleExpiry    = 2 * time.Minute  // any flow leaves the table after this idle time
	resolverQueue = 4096
	maxFlows      = 1 << 16 // flows tracked at once; traffic of more is unknown
	syncBelow     = 8       // new flows are resolved synchronously while fewer than this are queued
)

// table counts packets per flow and per process. Packets arrive from the
// capture goroutine, resolutions from the resolver, snapshots from Update.
type table struct {
	mu      sync.Mutex
	flows   map[flowKey]*flow
	procs   map[procKey]*proc
	byPID   map[int]*proc
	pending map[*flow]struct{}
	unknown backends.Counters
	total   backends.Counters
	queue   chan *flow
}

func newTable() *table {
	return &table{
		flows:   map[flowKey]*flow{},
		procs:   map[procKey]*proc{},
		byPID:   map[int]*proc{},
		pending: map[*flow]struct{}{},
		queue:   make(chan *flow, resolverQueue),
	}
}

// account counts one decoded packet; tx says the local side sent it. It
// returns a new flow the caller should resolve at once (see resolveNow), or
// nil.
func (t *table) account(p *packet, tx bool, now time.Time) (fresh *flow) {
	var c backends.Counters
	if tx {
		c.TxBytes, c.TxPackets = p.payload, 1
	} else {
		c.RxBytes, c.RxPackets = p.payload, 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.proto != protoTCP && p.proto != protoUDP {
		t.total.Add(c)
		t.unknown.Add(c)
		return nil
	}
	k := p.key(tx)
	f := t.flows[k]
	if f != nil && p.flags&(flagSYN|flagACK) == flagSYN && (f.closed || f.state == stateUnknown) {
		// A new connection on the 5-tuple of a finished one.
		t.forget(f)
		f = nil
	}
	if f == nil && len(t.flows) >= maxFlows {
		t.total.Add(c)
		t.unknown.Add(c) // table full (a scan or flood): count, do not track
		return nil
	}
	if f == nil {
		f = &flow{key: k, first: now}
		t.flows[k] = f
		t.pending[f] = struct{}{}
		if len(t.queue) < syncBelow {
			// Resolved by the caller right away: a short-lived process can
			// be gone within a millisecond of its first packet, too soon
			// for a hand-over to another goroutine.
			f.queued = true
			fresh = f
		} else {
			t.enqueue(f)
		}
	}
	f.last = now
	if p.proto == protoTCP {
		c.RxBytes, c.TxBytes = f.seq.bytes(p, tx)
	}
	t.total.Add(c)
	f.c.Add(c)
	if p.flags&(flagFIN|flagRST) != 0 {
		f.closed = true
	}
	switch f.state {
	case stateAttributed:
		if f.proc.gone {
			t.unknown.Add(c)
			return fresh
		}
		f.proc.c.Add(c)
		f.proc.last = now
	case stateUnknown:
		t.unknown.Add(c)
		if !f.queued && now.After(f.retryAt) && !f.closed {
			f.retryAt = now.Add(unknownRetry)
			t.enqueue(f)
		}
	default:
		f.held.Add(c)
	}
	return fresh
}

// hint announces a flow from a TCP SYN seen on the low-latency socket,
// before the ring delivers (and counts) the packet: the flow is created and
// returned for resolving at once (nil when it exists already).
func (t *table) hint(p *packet, tx bool, now time.Time) *flow {
	if p.proto != protoTCP {
		return nil
	}
	k := p.key(tx)
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.flows[k]
	if f != nil && p.flags&(flagSYN|flagACK) == flagSYN && (f.closed || f.state == stateUnknown) {
		t.forget(f)
		f = nil
	}
	if f != nil || len(t.flows) >= maxFlows {
		return nil
	}
	f = &flow{key: k, first: now, last: now, queued: true}
	t.flows[k] = f
	t.pending[f] = struct{}{}
	return f
}

// resolveNow makes a quick first attempt at resolving a fresh flow on the
// caller's goroutine; if it needs more time the flow goes to the resolvers.
func (t *table) resolveNow(f *flow, lookup lookupFunc) {
	res := lookup(f.key, true)
	if res.info.PID != 0 || res.retry == 0 {
		t.resolved(f, res, time.Now())
		return
	}
	t.mu.Lock()
	f.queued = false
	if t.flows[f.key] == f {
		t.enqueue(f)
	}
	t.mu.Unlock()
}

// enqueue hands f to the resolver unless its queue is full; pending flows
// left behind are picked up by requeue.
func (t *table) enqueue(f *flow) {
	select {
	case t.queue <- f:
		f.queued = true
	default:
	}
}

// requeue offers pending flows that are not queued to the resolver again.
func (t *table) requeue() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for f := range t.pending {
		if !f.queued {
			t.enqueue(f)
		}
	}
}

// resolved applies a resolver's final answer for f.
func (t *table) resolved(f *flow, r resolution, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.queued = false
	if t.flows[f.key] != f {
		return // forgotten meanwhile; its bytes were counted as unknown
	}
	if r.info.PID == 0 {
		if f.state == statePending {
			t.unknown.Add(f.held)
			f.held = backends.Counters{}
			delete(t.pending, f)
		}
		f.state = stateUnknown
		f.retryAt = now.Add(unknownRetry)
		return
	}
	pk := procKey{r.info.PID, r.info.StartTime}
	p := t.procs[pk]
	if p == nil || p.gone {
		p = &proc{info: r.info, flows: map[*flow]struct{}{}}
		t.procs[pk] = p
		if old := t.byPID[r.info.PID]; old != nil && old != p && !old.exited {
			// The pid was reused: the old process has exited.
			old.exited, old.exitAt = true, now
		}
		t.byPID[r.info.PID] = p
	}
	if f.state == statePending {
		p.c.Add(f.held)
		f.held = backends.Counters{}
		delete(t.pending, f)
	}
	f.state = stateAttributed
	f.proc = p
	p.flows[f] = struct{}{}
	if f.last.After(p.last) {
		p.last = f.last
	}
}

// giveUp makes a pending flow unknown (the resolver's deadline passed).
func (t *table) giveUp(f *flow, now time.Time) {
	t.resolved(f, resolution{}, now)
}

// stillPending reports when f was first seen and whether it still wants
// resolving (it is in the table and not attributed).
func (t *table) stillPending(f *flow) (first time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flows[f.key] != f || f.state == stateAttributed {
		f.queued = false
		return time.Time{}, false
	}
	return f.first, true
}

// forget removes f from the table; held bytes become unknown.
func (t *table) forget(f *flow) {
	if f.state == statePending {
		t.unknown.Add(f.held)
		f.held = backends.Counters{}
	}
	delete(t.pending, f)
	delete(t.flows, f.key)
	if f.proc != nil {
		delete(f.proc.flows, f)
	}
}

// exit notes that process pid has exited.
func (t *table) exit(pid int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.byPID[pid]; p != nil && !p.exited {
		p.exited, p.exitAt = true, now
	}
}

// livePIDs returns the live processes the table tracks, for liveness checks.
func (t *table) livePIDs() []procKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]procKey, 0, len(t.byPID))
	for _, p := range t.byPID {
		if !p.exited {
			out = append(out, procKey{p.info.PID, p.info.StartTime})
		}
	}
	return out
}

// exitIf marks the process pk exited (a liveness check found it gone).
func (t *table) exitIf(pk procKey, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.procs[pk]; p != nil && !p.exited {
		p.exited, p.exitAt = true, now
	}
}

// snapshot returns cumulative counters, drops processes reported as exited
// and expires idle flows.
func (t *table) snapshot(now time.Time) backends.Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := backends.Snapshot{Time: now, Unknown: t.unknown, Total: t.total}
	for _, f := range t.flows {
		idle := now.Sub(f.last)
		if idle > idleExpiry || (f.closed && idle > closedExpiry) {
			t.forget(f)
		}
	}
	s.Processes = make([]backends.ProcessStats, 0, len(t.procs))
	for pk, p := range t.procs {
		ps := backends.ProcessStats{ProcessInfo: p.info, Counters: p.c}
		ps.Conns = make([]backends.Conn, 0, len(p.flows))
		for f := range p.flows {
			ps.Conns = append(ps.Conns, backends.Conn{Proto: f.key.protoName(), Local: f.key.local, Remote: f.key.remote, Counters: f.c})
		}
		sort.Slice(ps.Conns, func(i, j int) bool { return connLess(ps.Conns[i], ps.Conns[j]) })
		if p.exited && (now.Sub(p.last) >= drainIdle || now.Sub(p.exitAt) >= drainMax) {
			ps.Exited = true
			p.gone = true
			delete(t.procs, pk)
			if t.byPID[pk.pid] == p {
				delete(t.byPID, pk.pid)
			}
			for f := range p.flows {
				delete(t.flows, f.key)
			}
		}
		s.Processes = append(s.Processes, ps)
	}
	sort.Slice(s.Processes, func(i, j int) bool { return s.Processes[i].PID < s.Processes[j].PID })
	return s
}

func connLess(a, b backends.Conn) bool {
	if a.Proto != b.Proto {
		return a.Proto < b.Proto
	}
	if c := a.Local.Compare(b.Local); c != 0 {
		return c < 0
	}
	return a.Remote.Compare(b.Remote) < 0
}

// key is the flow of p seen from this host: local is the source of a sent
// packet (tx) and the destination of a received one.
func (p *packet) key(tx bool) flowKey {
	if tx {
		return flowKey{proto: p.proto, local: p.src, remote: p.dst}
	}
	return flowKey{proto: p.proto, local: p.dst, remote: p.src}
}
