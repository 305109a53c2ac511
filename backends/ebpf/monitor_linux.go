//go:build linux && !no_ebpf

package ebpf

import (
	"errors"
	"fmt"
	"sync"
	"time"

	cilium "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

func probeMonitor(backends.Options) error {
	if err := probeKernel(); err != nil {
		return err
	}
	spec, err := monitorSpec(1)
	if err != nil {
		return err
	}
	return probeLoad(spec, "monitor")
}

func monitorSpec(netns uint64) (*cilium.CollectionSpec, error) {
	spec, err := loadMonitor()
	if err != nil {
		return nil, fmt.Errorf("read monitor object: %w", err)
	}
	if err := spec.Variables["netns_cookie"].Set(netns); err != nil {
		return nil, fmt.Errorf("configure monitor object: %w", err)
	}
	return spec, nil
}

// How long idle state is kept: connections idle this long whose socket is
// closed (or unknown) are dropped from the kernel maps; an exited process is
// reported as exited once it has been gone and quiet this long.
const (
	connIdle  = 30 * time.Second
	exitQuiet = 2 * time.Second
	// resolveEvery rate-limits the userspace lookups (sock_diag dump and a
	// /proc scan) of sockets whose creation the programs did not see.
	resolveEvery = time.Second
)

// monitorBackend counts bytes per socket in the kernel and attributes them
// to processes.
type monitorBackend struct {
	opts backends.Options

	mu     sync.Mutex
	objs   *monitorObjects
	links  []link.Link
	events *ringbuf.Reader
	wg     sync.WaitGroup

	mirror    map[monitorConnKey]mirrored // last counters read per connection
	resolved  map[uint64]int              // cookie → pid found from userspace (0 = none)
	lastScan  time.Time
	lastSweep time.Time
	procs     map[int]*procState
	unknown   backends.Counters
	total     backends.Counters

	infoMu sync.Mutex
	infos  map[int]infoEntry // process identities read when their sockets were created
}

type mirrored struct {
	val     monitorConnVal
	changed time.Time // when the counters last moved
}

type infoEntry struct {
	info backends.ProcessInfo
	at   time.Time
}

type procState struct {
	stats      backends.ProcessStats
	conns      map[monitorConnKey]*connState
	lastActive time.Time
	goneSince  time.Time
}

type connState struct {
	conn backends.Conn
	last time.Time
}

// NewMonitor returns the eBPF monitor for opts (NetNS selects the network
// namespace whose traffic is counted; CgroupParent, when set, limits
// counting to processes below that cgroup).
func NewMonitor(opts backends.Options) backends.MonitorBackend {
	return &monitorBackend{opts: opts}
}

func (m *monitorBackend) Name() string                { return "ebpf" }
func (m *monitorBackend) Priority() backends.Priority { return backends.Best }
func (m *monitorBackend) Capabilities() backends.Capabilities {
	return backends.Capabilities{IPv4: true, IPv6: true, PerProcess: true, PerApp: true, Connections: true}
}

// Init loads the programs and attaches them to the cgroup2 root (or
// CgroupParent). Nothing needs reconciling: the links belong to this process
// and vanish with it.
func (m *monitorBackend) Init() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs != nil {
		return nil
	}
	if err := probeKernel(); err != nil {
		return err
	}
	ns, err := netnsCookie(m.opts.NetNS)
	if err != nil {
		return err
	}
	spec, err := monitorSpec(ns)
	if err != nil {
		return err
	}
	objs := &monitorObjects{}
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		return fmt.Errorf("load monitor programs: %w", err)
	}
	dir, err := attachDir(m.opts.CgroupParent)
	if err != nil {
		objs.Close()
		return err
	}
	var links []link.Link
	fail := func(err error) error {
		for _, l := range links {
			l.Close()
		}
		objs.Close()
		return err
	}
	for _, a := range []struct {
		p  *cilium.Program
		at cilium.AttachType
	}{
		{objs.CtSockCreate, cilium.AttachCGroupInetSockCreate},
		{objs.CtSockRelease, cilium.AttachCgroupInetSockRelease},
		{objs.CtCountIngress, cilium.AttachCGroupInetIngress},
		{objs.CtCountEgress, cilium.AttachCGroupInetEgress},
	} {
		l, err := attachCgroup(dir, a.p, a.at)
		if err != nil {
			return fail(err)
		}
		links = append(links, l)
	}
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		return fail(fmt.Errorf("open monitor event ring: %w", err))
	}
	m.objs, m.links, m.events = objs, links, rd
	m.mirror = map[monitorConnKey]mirrored{}
	m.resolved = map[uint64]int{}
	m.procs = map[int]*procState{}
	m.unknown, m.total = backends.Counters{}, backends.Counters{}
	m.lastScan, m.lastSweep = time.Time{}, time.Time{}
	m.infoMu.Lock()
	m.infos = map[int]infoEntry{}
	m.infoMu.Unlock()
	m.wg.Add(1)
	go m.readEvents(rd)
	return nil
}

// readEvents learns the identity of processes as they create sockets, so
// that processes living a few milliseconds still have an exe and cmdline.
func (m *monitorBackend) readEvents(rd *ringbuf.Reader) {
	defer m.wg.Done()
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			continue
		}
		if len(rec.RawSample) < 8 {
			continue
		}
		pid := int(hostEndian.Uint32(rec.RawSample[0:4]))
		start, err := procnet.StartTime(pid)
		if err != nil {
			continue // gone already; the owner record has comm and uid
		}
		m.infoMu.Lock()
		e, ok := m.infos[pid]
		m.infoMu.Unlock()
		if ok && e.info.StartTime == start {
			continue
		}
		info, err := procnet.ReadProcess(pid)
		if err != nil {
			continue
		}
		m.infoMu.Lock()
		m.infos[pid] = infoEntry{info: info, at: time.Now()}
		m.infoMu.Unlock()
	}
}

// Cleanup detaches the programs and frees the maps.
func (m *monitorBackend) Cleanup() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		return nil
	}
	var errs []error
	for _, l := range m.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach monitor program: %w", err))
		}
	}
	if err := m.events.Close(); err != nil {
		errs = append(errs, err)
	}
	m.wg.Wait()
	if err := m.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	m.objs, m.links, m.events = nil, nil, nil
	return errors.Join(errs...)
}

// Update reads the kernel's counters, attributes what changed since the
// last call and returns the cumulative figures.
func (m *monitorBackend) Update() (backends.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		return backends.Snapshot{}, errors.New("ebpf monitor: Update before Init")
	}
	now := time.Now()
	mono := monotonicNow()
	owners := newOwnerCache(m.objs.Owners)
	read, err := m.readCounters(owners, now)
	if err != nil {
		return backends.Snapshot{}, err
	}
	m.resolveUnowned(read.deltas, owners, now)
	active := m.attribute(read.deltas, owners, now)
	snap := m.snapshot(active, now)
	m.forget(read.stale, now, mono)
	return snap, nil
}
