//go:build linux && !no_capture

package capture

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// resolvers is how many flows are resolved at once.
const resolvers = 3

// The SYN thread's priority: real-time while it has spent less than
// synBudget in the current second, then nice synNice.
const (
	synBudget = 50 * time.Millisecond
	synNice   = -10
)

// realtimeSYN lets the benchmark measure the SYN thread at normal priority
// (as when the helper lacks CAP_SYS_NICE).
var realtimeSYN = true

// Backend is the capture monitor backend.
type Backend struct {
	opts backends.Options

	mu      sync.Mutex // lifecycle
	running bool
	tab     *table
	res     *sysResolver
	ring    *ring     // every packet, counted
	syn     *afPacket // TCP SYNs, seen at once to resolve new flows early
	diag    *procnet.Diag
	watch   *procnet.Watcher
	nl      *netlink.Handle
	stop    chan struct{}
	wg      sync.WaitGroup
	ifEpoch atomic.Uint64 // bumped to make the reader re-check interfaces
	lastIf  time.Time
	drops   atomic.Uint64
	synRT   atomic.Bool // the SYN thread got real-time priority
	// WatchErr says why the proc connector is not used (nil when it is);
	// without it short-lived processes are found by /proc scans only.
	WatchErr error
}

// New returns an uninitialised capture monitor for opts.
func New(opts backends.Options) (*Backend, error) {
	return &Backend{opts: opts}, nil
}

// Probe reports whether packet capture and sock_diag work in opts.NetNS.
func Probe(opts backends.Options) error {
	p, err := openRing(opts.NetNS)
	if err != nil {
		return backends.Unavailable("packet capture: %v", err)
	}
	p.close()
	d, err := procnet.OpenDiag(opts.NetNS)
	if err != nil {
		return backends.Unavailable("sock_diag: %v", err)
	}
	defer d.Close()
	if _, err := d.DumpOf(nil, 2, 6); err != nil {
		return backends.Unavailable("sock_diag: %v", err)
	}
	return nil
}

func (m *Backend) Name() string                { return "capture" }
func (m *Backend) Priority() backends.Priority { return backends.Good }
func (m *Backend) Capabilities() backends.Capabilities {
	return backends.Capabilities{IPv4: true, IPv6: true, PerProcess: true, Connections: true}
}

// Init opens the capture and starts the reader, resolver and process
// watcher goroutines.
func (m *Backend) Init() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		return nil
	}
	if err := m.openSockets(); err != nil {
		return err
	}
	m.tab = newTable()
	m.res = newSysResolver(m.diag)
	m.res.netns, _ = procnet.NetNSInode(m.opts.NetNS)
	m.stop = make(chan struct{})
	m.drops.Store(0)
	m.watchProcesses()
	m.res.fullScan(time.Now())
	m.running = true
	m.startLoops()
	return nil
}

// openSockets opens, in the monitored namespace, the netlink handle, the
// sock_diag socket, the counting ring and the SYN socket. On error none is
// left open.
func (m *Backend) openSockets() error {
	var err error
	if m.opts.NetNS != "" {
		ns, err := netns.GetFromPath(m.opts.NetNS)
		if err != nil {
			return fmt.Errorf("open network namespace %s: %w", m.opts.NetNS, err)
		}
		m.nl, err = netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			return fmt.Errorf("open netlink handle: %w", err)
		}
	} else if m.nl, err = netlink.NewHandle(); err != nil {
		return fmt.Errorf("open netlink handle: %w", err)
	}
	if m.diag, err = procnet.OpenDiag(m.opts.NetNS); err != nil {
		m.closeSockets()
		return err
	}
	if m.ring, err = openRing(m.opts.NetNS); err != nil {
		m.closeSockets()
		return err
	}
	if m.syn, err = openAFPacket(m.opts.NetNS, synFilter); err != nil {
		m.closeSockets()
		return err
	}
	return nil
}

// closeSockets closes what openSockets opened, after a failed Init.
func (m *Backend) closeSockets() {
	if m.ring != nil {
		m.ring.close()
		m.ring = nil
	}
	if m.syn != nil {
		m.syn.close()
		m.syn = nil
	}
	if m.diag != nil {
		m.diag.Close()
		m.diag = nil
	}
	if m.nl != nil {
		m.nl.Close()
		m.nl = nil
	}
}

// watchProcesses subscribes to the proc connector (WatchErr says why not)
// and lets the resolver drain its events before it scans: those the
// watcher has read but watchLoop not yet handled, then those still in the
// kernel's queue.
func (m *Backend) watchProcesses() {
	m.watch, m.WatchErr = procnet.WatchProcesses()
	w := m.watch
	if w == nil {
		return
	}
	m.res.drain = func() {
		for {
			select {
			case e, ok := <-w.C:
				if !ok {
					return
				}
				m.procEvent(e)
				continue
			default:
			}
			break
		}
		w.Drain(m.procEvent)
	}
}

// startLoops starts the ring reader, the SYN reader, the resolvers and,
// when there is a watcher, the process watch loop.
func (m *Backend) startLoops() {
	m.wg.Add(2 + resolvers)
	go func() { defer m.wg.Done(); m.ringLoop() }()
	go func() { defer m.wg.Done(); m.synLoop() }()
	for i := 0; i < resolvers; i++ {
		go func() { defer m.wg.Done(); m.tab.runResolver(m.stop, m.res.lookup, i == 0) }()
	}
	if m.watch != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.watchLoop() }()
	}
}

// Cleanup stops the goroutines and closes the sockets. It is safe to call
// more than once.
func (m *Backend) Cleanup() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return nil
	}
	m.running = false
	close(m.stop)
	m.ring.stop.Store(true)
	m.syn.stop.Store(true)
	var errs []error
	if m.watch != nil {
		errs = append(errs, m.watch.Close())
	}
	// The reader notices stop within its receive timeout; the socket is
	// closed only after it returned, never under it.
	m.wg.Wait()
	errs = append(errs, m.ring.close(), m.syn.close(), m.diag.Close())
	m.nl.Close()
	m.ring, m.syn, m.diag, m.nl, m.watch = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// Update returns cumulative counters since Init.
func (m *Backend) Update() (backends.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return backends.Snapshot{}, errors.New("capture monitor: Update before Init")
	}
	now := time.Now()
	if now.Sub(m.lastIf) > 5*time.Second {
		m.ifEpoch.Add(1) // interfaces may have changed
		m.lastIf = now
	}
	// Liveness: the proc connector may have dropped events, or be missing.
	for _, pk := range m.tab.livePIDs() {
		if st, err := procnet.StartTime(pk.pid); err != nil || st != pk.start {
			m.tab.exitIf(pk, now)
		}
	}
	if d, err := m.ring.drops(); err == nil {
		m.drops.Add(d)
	}
	if d, err := m.syn.drops(); err == nil {
		m.drops.Add(d)
	}
	return m.tab.snapshot(now), nil
}

// Stats returns the resolver's counters, or "" before Init.
func (m *Backend) Stats() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.res == nil {
		return ""
	}
	rt := "no (normal priority)"
	if m.synRT.Load() {
		rt = "yes"
	}
	return m.res.stats.String() + "; SYN thread real-time: " + rt
}

// Drops returns how many packets the kernel dropped because the capture
// fell behind, since Init.
func (m *Backend) Drops() uint64 { return m.drops.Load() }

// ifFilter remembers which interfaces are counted; Update invalidates it.
type ifFilter struct {
	m     *Backend
	ok    map[int]bool
	epoch uint64
}

func (f *ifFilter) want(ifindex int) bool {
	if e := f.m.ifEpoch.Load(); e != f.epoch {
		clear(f.ok)
		f.epoch = e
	}
	ok, known := f.ok[ifindex]
	if !known {
		ok = f.m.wantInterface(ifindex)
		f.ok[ifindex] = ok
	}
	return ok
}

// direction says whether a packet of type pkttype was sent by this host
// (tx) and whether it is counted at all.
func direction(pkttype uint8) (tx, ok bool) {
	switch pkttype {
	case pktOutgoing:
		return true, true
	case pktHost, pktBroadcast, pktMulticast, pktLoopback:
		return false, true
	}
	return false, false // another host's packet (promiscuous)
}

// ringLoop counts every packet the ring delivers.
func (m *Backend) ringLoop() {
	dec := newDecoder()
	var pkt packet
	ifs := ifFilter{m: m, ok: map[int]bool{}}
	var fresh []*flow
	for {
		fresh = fresh[:0]
		err := m.ring.next(func(now time.Time, p *ringPacket) {
			tx, ok := direction(p.pkttype)
			if !ok || !ifs.want(p.ifindex) || !dec.decode(p.data, p.origLen, &pkt) {
				return
			}
			if f := m.tab.account(&pkt, tx, now); f != nil {
				fresh = append(fresh, f)
			}
		})
		for _, f := range fresh {
			m.tab.resolveNow(f, m.res.lookup)
		}
		if err != nil {
			if errors.Is(err, errStopped) {
				return
			}
			time.Sleep(10 * time.Millisecond) // unexpected: do not spin
		}
	}
}

// synLoop resolves the flows of TCP SYNs the moment they are sent or
// received: a process that connects, sends and exits can be gone within a
// millisecond, sooner than the ring hands over its block.
//
// It runs on its own OS thread with real-time priority (SCHED_FIFO 1) so
// that on a busy machine it still wakes within microseconds of a SYN. Its
// work per SYN is small and bounded; a budget keeps a SYN flood from
// turning that priority against the machine: once the thread has spent
// synBudget of a second handling SYNs, it drops to normal priority (nice
// synNice) until the next second.
func (m *Backend) synLoop() {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	tid := unix.Gettid()
	rt := &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}
	normal := &unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: synNice}
	unix.SchedSetAttr(tid, normal, 0)
	isRT := realtimeSYN && unix.SchedSetAttr(tid, rt, 0) == nil
	m.synRT.Store(isRT)
	var window time.Time
	var spent time.Duration
	dec := newDecoder()
	var pkt packet
	ifs := ifFilter{m: m, ok: map[int]bool{}}
	for {
		data, origLen, pkttype, ifindex, err := m.syn.read()
		if err != nil {
			if errors.Is(err, errStopped) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		start := time.Now()
		if start.Sub(window) >= time.Second {
			window, spent = start, 0
			if !isRT && realtimeSYN {
				isRT = unix.SchedSetAttr(tid, rt, 0) == nil
			}
		}
		tx, ok := direction(pkttype)
		if !ok || !ifs.want(ifindex) || !dec.decode(data, origLen, &pkt) {
			continue
		}
		if f := m.tab.hint(&pkt, tx, start); f != nil {
			m.tab.resolveNow(f, m.res.lookup)
		}
		if spent += time.Since(start); spent > synBudget && isRT {
			unix.SchedSetAttr(tid, normal, 0)
			isRT = false
		}
	}
}

// wantInterface says whether packets of interface ifindex are counted: the
// interfaces of Options.Interfaces when given, else every interface that is
// not enslaved to another (a bridge or bond port would count twice).
func (m *Backend) wantInterface(ifindex int) bool {
	l, err := m.nl.LinkByIndex(ifindex)
	if err != nil {
		return len(m.opts.Interfaces) == 0
	}
	a := l.Attrs()
	if len(m.opts.Interfaces) > 0 {
		return slices.Contains(m.opts.Interfaces, a.Name)
	}
	return a.MasterIndex == 0
}

func (m *Backend) watchLoop() {
	for e := range m.watch.C {
		m.procEvent(e)
	}
}

func (m *Backend) procEvent(e procnet.ProcEvent) {
	now := time.Now()
	switch e.Kind {
	case procnet.EventFork, procnet.EventExec:
		m.res.noteStart(e.PID, now)
	case procnet.EventExit:
		m.res.noteExit(e.PID)
		m.tab.exit(e.PID, now)
	}
}

var _ backends.MonitorBackend = (*Backend)(nil)
