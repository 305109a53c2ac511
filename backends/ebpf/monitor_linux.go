//go:build linux && !no_ebpf

package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	cilium "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/procnet"
)

// Monitor is the descriptor of the "ebpf" monitor backend.
var Monitor = &backends.Descriptor[backends.MonitorBackend]{
	Name:     "ebpf",
	Priority: backends.Best,
	Probe:    probeMonitor,
	New:      func(o backends.Options) (backends.MonitorBackend, error) { return NewMonitor(o), nil },
}

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

type delta struct {
	key  monitorConnKey // identity: the cookie alone for TCP
	addr monitorConnKey // addresses, for Conns and lookups
	c    backends.Counters
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

	// Owners are looked up only for sockets that moved bytes (or went
	// idle), not read in full every second.
	owners := map[uint64]*monitorOwner{}
	owner := func(cookie uint64) (monitorOwner, bool) {
		o, ok := owners[cookie]
		if !ok {
			var v monitorOwner
			if m.objs.Owners.Lookup(cookie, &v) == nil {
				o = &v
			}
			owners[cookie] = o
		}
		if o == nil {
			return monitorOwner{}, false
		}
		return *o, true
	}
	var ck uint64
	var it *cilium.MapIterator

	var deltas []delta
	var stale []monitorConnKey
	seen := make(map[monitorConnKey]bool, len(m.mirror))
	visit := func(k, addr monitorConnKey, perCPU []monitorConnVal) {
		seen[k] = true
		var v monitorConnVal
		for _, c := range perCPU {
			v.RxBytes += c.RxBytes
			v.TxBytes += c.TxBytes
			v.RxPackets += c.RxPackets
			v.TxPackets += c.TxPackets
		}
		prev, known := m.mirror[k]
		if v.RxBytes < prev.val.RxBytes || v.TxBytes < prev.val.TxBytes {
			prev = mirrored{} // recreated after eviction
		}
		d := backends.Counters{
			RxBytes: v.RxBytes - prev.val.RxBytes, TxBytes: v.TxBytes - prev.val.TxBytes,
			RxPackets: v.RxPackets - prev.val.RxPackets, TxPackets: v.TxPackets - prev.val.TxPackets,
		}
		if d != (backends.Counters{}) || !known {
			m.mirror[k] = mirrored{val: v, changed: now}
		}
		if d != (backends.Counters{}) {
			deltas = append(deltas, delta{k, addr, d})
			return
		}
		if now.Sub(m.mirror[k].changed) <= connIdle {
			return
		}
		if o, ok := owner(k.Cookie); !ok || o.ReleasedNs != 0 {
			stale = append(stale, k)
		}
	}
	tuples := map[uint64]monitorConnKey{}
	var tk monitorConnKey
	it = m.objs.TcpTuples.Iterate()
	for it.Next(&ck, &tk) {
		tuples[ck] = tk
	}
	if err := it.Err(); err != nil {
		return backends.Snapshot{}, fmt.Errorf("read connection addresses: %w", err)
	}
	var perCPU []monitorConnVal
	it = m.objs.TcpConns.Iterate()
	for it.Next(&ck, &perCPU) {
		addr, ok := tuples[ck]
		if !ok && m.objs.TcpTuples.Lookup(ck, &addr) != nil {
			addr = monitorConnKey{Cookie: ck, Proto: 6} // addresses evicted
		}
		visit(monitorConnKey{Cookie: ck, Proto: 6}, addr, perCPU)
	}
	if err := it.Err(); err != nil {
		return backends.Snapshot{}, fmt.Errorf("read connection counters: %w", err)
	}
	var k monitorConnKey
	it = m.objs.UdpConns.Iterate()
	for it.Next(&k, &perCPU) {
		visit(k, k, perCPU)
	}
	if err := it.Err(); err != nil {
		return backends.Snapshot{}, fmt.Errorf("read connection counters: %w", err)
	}
	for key := range m.mirror {
		if !seen[key] {
			delete(m.mirror, key)
		}
	}

	// Sockets the kernel saw created have owners; the rest (open before we
	// started, or accepted from a listener) are looked up once.
	var unresolved []monitorConnKey
	for _, d := range deltas {
		if _, ok := owner(d.key.Cookie); ok {
			continue
		}
		if _, ok := m.resolved[d.key.Cookie]; !ok {
			unresolved = append(unresolved, d.addr)
		}
	}
	if len(unresolved) > 0 && now.Sub(m.lastScan) >= resolveEvery {
		m.lastScan = now
		m.resolve(unresolved)
	}

	active := map[int]bool{}
	for _, d := range deltas {
		m.total.Add(d.c)
		pid := 0
		var who *monitorOwner
		if o, ok := owner(d.key.Cookie); ok {
			pid, who = int(o.Tgid), &o
		} else {
			pid = m.resolved[d.key.Cookie]
		}
		if pid <= 0 {
			m.unknown.Add(d.c)
			continue
		}
		p := m.proc(pid, who, now)
		p.stats.Counters.Add(d.c)
		p.lastActive = now
		active[pid] = true
		cs := p.conns[d.key]
		if cs == nil {
			cs = &connState{conn: connOf(d.addr)}
			p.conns[d.key] = cs
		}
		cs.conn.Counters.Add(d.c)
		cs.last = now
	}

	snap := backends.Snapshot{Time: now, Unknown: m.unknown, Total: m.total}
	for pid, p := range m.procs {
		if p.stats.Exited {
			delete(m.procs, pid) // reported once already
			continue
		}
		if !alive(pid, p.stats.StartTime) {
			if p.goneSince.IsZero() {
				p.goneSince = now
			}
			if !active[pid] && now.Sub(p.goneSince) >= exitQuiet && now.Sub(p.lastActive) >= exitQuiet {
				p.stats.Exited = true
			}
		}
		ps := p.stats
		ps.Conns = make([]backends.Conn, 0, len(p.conns))
		for ck, cs := range p.conns {
			if now.Sub(cs.last) > connIdle {
				delete(p.conns, ck)
				continue
			}
			ps.Conns = append(ps.Conns, cs.conn)
		}
		ps.Cmdline = append([]string(nil), ps.Cmdline...)
		snap.Processes = append(snap.Processes, ps)
	}
	sort.Slice(snap.Processes, func(i, j int) bool { return snap.Processes[i].PID < snap.Processes[j].PID })

	m.forget(stale, now, mono)
	return snap, nil
}

// resolve finds the processes holding sockets the programs did not see
// created: a sock_diag dump of the namespace gives each cookie's inode and
// /proc/*/fd gives the inode's process. A TCP connection that is gone by
// now, or whose process closed it before the scan (an accepted connection
// that lasted milliseconds), goes to the process listening on its local
// port, which accepted it.
func (m *monitorBackend) resolve(keys []monitorConnKey) {
	socks, err := procnet.Dump(m.opts.NetNS)
	if err != nil {
		return // try again later
	}
	byCookie := make(map[uint64]procnet.Socket, len(socks))
	for _, s := range socks {
		byCookie[s.Cookie] = s
	}
	var inodes procnet.InodeMap
	pidOf := func(inode uint64) int {
		if inode == 0 {
			return 0
		}
		if inodes == nil {
			if inodes, err = procnet.ScanInodes(); err != nil {
				inodes = procnet.InodeMap{}
			}
		}
		return inodes[inode]
	}
	for _, k := range keys {
		if _, done := m.resolved[k.Cookie]; done {
			continue
		}
		pid := 0
		if s, ok := byCookie[k.Cookie]; ok && s.Inode != 0 {
			// 0 when the process closed it between the dump and the
			// /proc scan (CI caught a 1-ms accepted connection so).
			pid = pidOf(s.Inode)
		}
		m.resolved[k.Cookie] = pid // 0: closed already, or held by no process
		if pid != 0 || k.Proto != 6 {
			continue
		}
		local := connOf(k).Local
		for _, s := range socks {
			if s.Proto == backends.TCP && s.State == procnet.StateListen && s.Local.Port() == local.Port() &&
				(s.Local.Addr().IsUnspecified() || s.Local.Addr() == local.Addr()) {
				if pid := pidOf(s.Inode); pid != 0 {
					m.resolved[k.Cookie] = pid
					break
				}
			}
		}
	}
}

// proc returns the state of pid, creating it with the best identity known.
func (m *monitorBackend) proc(pid int, owner *monitorOwner, now time.Time) *procState {
	if p, ok := m.procs[pid]; ok {
		return p
	}
	m.infoMu.Lock()
	e, ok := m.infos[pid]
	m.infoMu.Unlock()
	info := e.info
	if !ok {
		var err error
		if info, err = procnet.ReadProcess(pid); err != nil {
			info = backends.ProcessInfo{PID: pid}
		}
	}
	if owner != nil {
		if info.Comm == "" {
			info.Comm = cString(owner.Comm[:])
		}
		if info.StartTime == 0 {
			info.UID = owner.Uid
		}
	}
	p := &procState{stats: backends.ProcessStats{ProcessInfo: info}, conns: map[monitorConnKey]*connState{}, lastActive: now}
	m.procs[pid] = p
	return p
}

// forget drops kernel and userspace state nobody needs any more: idle
// connections of closed sockets, owners of sockets closed long ago (swept
// every connIdle), and identities of processes that are not reported.
func (m *monitorBackend) forget(stale []monitorConnKey, now time.Time, mono uint64) {
	for _, k := range stale {
		if k.Proto == 6 {
			_ = m.objs.TcpConns.Delete(k.Cookie)
			_ = m.objs.TcpTuples.Delete(k.Cookie)
		} else {
			_ = m.objs.UdpConns.Delete(k)
		}
		delete(m.mirror, k)
	}
	live := make(map[uint64]bool, len(m.mirror))
	for k := range m.mirror {
		live[k.Cookie] = true
	}
	for c := range m.resolved {
		if !live[c] {
			delete(m.resolved, c)
		}
	}
	if now.Sub(m.lastSweep) >= connIdle {
		m.lastSweep = now
		var gone []uint64
		var c uint64
		var o monitorOwner
		it := m.objs.Owners.Iterate()
		for it.Next(&c, &o) {
			if o.ReleasedNs != 0 && mono-o.ReleasedNs > uint64(connIdle) && !live[c] {
				gone = append(gone, c)
			}
		}
		for _, c := range gone {
			_ = m.objs.Owners.Delete(c)
		}
	}
	m.infoMu.Lock()
	for pid, e := range m.infos {
		if _, ok := m.procs[pid]; !ok && time.Since(e.at) > connIdle {
			delete(m.infos, pid)
		}
	}
	m.infoMu.Unlock()
}

func alive(pid int, start uint64) bool {
	st, err := procnet.StartTime(pid)
	if err != nil {
		return false
	}
	return start == 0 || st == start
}

func connOf(k monitorConnKey) backends.Conn {
	proto := backends.TCP
	if k.Proto == 17 {
		proto = backends.UDP
	}
	return backends.Conn{
		Proto:  proto,
		Local:  netip.AddrPortFrom(addrOf(k.Family, k.Laddr), k.Lport),
		Remote: netip.AddrPortFrom(addrOf(k.Family, k.Raddr), k.Rport),
	}
}

func addrOf(family uint8, b [16]byte) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]})
	}
	return netip.AddrFrom16(b).Unmap()
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
