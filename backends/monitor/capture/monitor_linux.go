//go:build linux && !no_capture

package capture

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/procnet"
)

// resolvers is how many flows are resolved at once.
const resolvers = 3

// Backend is the capture monitor backend.
type Backend struct {
	opts backends.Options

	mu      sync.Mutex // lifecycle
	running bool
	tab     *table
	res     *sysResolver
	pkt     *afPacket
	diag    *procnet.Diag
	watch   *procnet.Watcher
	nl      *netlink.Handle
	stop    chan struct{}
	wg      sync.WaitGroup
	ifEpoch atomic.Uint64 // bumped to make the reader re-check interfaces
	lastIf  time.Time
	drops   atomic.Uint64
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
	p, err := openAFPacket(opts.NetNS)
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
	var err error
	cleanup := func() {
		if m.pkt != nil {
			m.pkt.close()
			m.pkt = nil
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
		cleanup()
		return err
	}
	if m.pkt, err = openAFPacket(m.opts.NetNS); err != nil {
		cleanup()
		return err
	}
	m.tab = newTable()
	m.res = newSysResolver(m.diag)
	m.stop = make(chan struct{})
	m.drops.Store(0)
	m.watch, m.WatchErr = procnet.WatchProcesses()
	m.res.fullScan(time.Now())
	m.running = true
	m.wg.Add(1 + resolvers)
	go func() { defer m.wg.Done(); m.readLoop() }()
	for i := 0; i < resolvers; i++ {
		go func() { defer m.wg.Done(); m.tab.runResolver(m.stop, m.res.lookup, i == 0) }()
	}
	if m.watch != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.watchLoop() }()
	}
	return nil
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
	m.pkt.stop.Store(true)
	var errs []error
	if m.watch != nil {
		errs = append(errs, m.watch.Close())
	}
	// The reader notices stop within its receive timeout; the socket is
	// closed only after it returned, never under it.
	m.wg.Wait()
	errs = append(errs, m.pkt.close(), m.diag.Close())
	m.nl.Close()
	m.pkt, m.diag, m.nl, m.watch = nil, nil, nil, nil
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
	if d, err := m.pkt.drops(); err == nil {
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
	return m.res.stats.String()
}

// Drops returns how many packets the kernel dropped because the capture
// fell behind, since Init.
func (m *Backend) Drops() uint64 { return m.drops.Load() }

func (m *Backend) readLoop() {
	dec := newDecoder()
	var pkt packet
	ifOK := map[int]bool{}
	epoch := m.ifEpoch.Load()
	for {
		data, origLen, pkttype, ifindex, err := m.pkt.read()
		if err != nil {
			if errors.Is(err, errStopped) {
				return
			}
			time.Sleep(10 * time.Millisecond) // unexpected: do not spin
			continue
		}
		if e := m.ifEpoch.Load(); e != epoch {
			clear(ifOK)
			epoch = e
		}
		ok, known := ifOK[ifindex]
		if !known {
			ok = m.wantInterface(ifindex)
			ifOK[ifindex] = ok
		}
		if !ok {
			continue
		}
		var tx bool
		switch pkttype {
		case pktOutgoing:
			tx = true
		case pktHost, pktBroadcast, pktMulticast, pktLoopback:
		default:
			continue // another host's packet (promiscuous)
		}
		if !dec.decode(data, origLen, &pkt) {
			continue
		}
		if f := m.tab.account(&pkt, tx, time.Now()); f != nil {
			m.tab.resolveNow(f, m.res.lookup)
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
		now := time.Now()
		switch e.Kind {
		case procnet.EventFork, procnet.EventExec:
			m.res.noteStart(e.PID, now)
		case procnet.EventExit:
			m.res.noteExit(e.PID)
			m.tab.exit(e.PID, now)
		}
	}
}

var _ backends.MonitorBackend = (*Backend)(nil)
