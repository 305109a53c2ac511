package engine

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// youngScans: a process found this many scans ago or less is re-read on
// every scan, so a fork followed by exec lands in the right app at once.
const youngScans = 12

// appKey identifies an app: a user and an executable ("[comm]" for kernel
// threads and processes without an executable).
type appKey struct {
	uid uint32
	exe string
}

func (k appKey) id() string { return strconv.FormatUint(uint64(k.uid), 10) + ":" + k.exe }

func (k appKey) bracketed() bool { return strings.HasPrefix(k.exe, "[") }

// ring is a fixed history of 1 s samples.
type ring struct {
	buf  [api.HistoryLen]api.Sample
	n    int
	next int
}

func (r *ring) push(s api.Sample) {
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// slice returns the samples oldest first.
func (r *ring) slice() []api.Sample {
	out := make([]api.Sample, 0, r.n)
	start := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := 0; i < r.n; i++ {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}

// app is one group of processes.
type app struct {
	key     appKey
	id      string
	name    string
	icon    string
	user    string
	flatpak string
	pids    map[int]struct{} // live processes from /proc
	exited  backends.Counters
	live    backends.Counters // counters of monitored live processes (since they joined)
	total   backends.Counters
	rx, tx  uint64
	hist    ring
}

// procKey identifies a monitored process across pid reuse.
type procKey struct {
	pid   int
	start uint64
}

type connKey struct {
	proto         backends.Proto
	local, remote netip.AddrPort
}

// procStat is a monitored process's statistics.
type procStat struct {
	info     backends.ProcessInfo
	app      *app
	base     backends.Counters // counters when it joined app
	cur      backends.Counters
	rx, tx   uint64
	hist     ring
	conns    []api.Connection
	prevConn map[connKey]backends.Counters
	seen     uint64
}

// sampleState is everything stateMu guards.
type sampleState struct {
	procs        map[int]*proc
	apps         map[appKey]*app
	byID         map[string]*app
	stats        map[procKey]*procStat
	scans        int64
	fullScans    int64
	seq          uint64
	procsChanged bool
	lastLog      map[string]string

	lastSample            time.Time
	prevTotal, prevUnkown backends.Counters
	total                 backends.Counters
	rx, tx, unknownRate   uint64
}

func (s *sampleState) init() {
	s.procs = map[int]*proc{}
	s.apps = map[appKey]*app{}
	s.byID = map[string]*app{}
	s.stats = map[procKey]*procStat{}
	s.lastLog = map[string]string{}
	s.lastSample = time.Now()
}

// keyOf returns the app a live process belongs to.
func keyOf(p *proc) appKey {
	if p.exe != "" {
		return appKey{p.uid, p.exe}
	}
	return appKey{p.uid, bracket(p.comm, p.kthread)}
}

func bracket(comm string, kthread bool) string {
	if kthread {
		// kworker/0:1-events, ksoftirqd/1: one app per kind of thread.
		if i := strings.IndexByte(comm, '/'); i > 0 {
			comm = comm[:i]
		}
	}
	if comm == "" {
		comm = "?"
	}
	return "[" + comm + "]"
}

// infoKey returns the app of a process known only from the monitor (it has
// exited or is not yet in the process table).
func infoKey(i backends.ProcessInfo) appKey {
	if exe := cleanExe(i.Exe); exe != "" {
		return appKey{i.UID, exe}
	}
	return appKey{i.UID, bracket(i.Comm, false)}
}

// appLocked returns the app for key, creating (and naming) it.
func (e *Engine) appLocked(key appKey, p *proc) *app {
	if a, ok := e.st.apps[key]; ok {
		return a
	}
	a := &app{key: key, id: key.id(), user: userName(key.uid), pids: map[int]struct{}{}}
	if p != nil && p.cgroup != "" {
		a.flatpak = flatpakID(p.cgroup)
	}
	e.nameLocked(a)
	e.st.apps[key] = a
	e.st.byID[a.id] = a
	return a
}

func (e *Engine) nameLocked(a *app) {
	if a.key.bracketed() {
		a.name, a.icon = a.key.exe, ""
		return
	}
	if de := e.desk.lookup(a.key.uid, a.key.exe, a.flatpak); de != nil {
		a.name, a.icon = de.name, de.icon
		return
	}
	a.name, a.icon = filepath.Base(a.key.exe), ""
}

func (e *Engine) renameAppsLocked() {
	for _, a := range e.st.apps {
		e.nameLocked(a)
	}
}

func (e *Engine) addProcLocked(p *proc) {
	p.key = keyOf(p)
	e.st.procs[p.pid] = p
	a := e.appLocked(p.key, p)
	a.pids[p.pid] = struct{}{}
	e.st.procsChanged = true
}

func (e *Engine) removeProcLocked(p *proc) {
	if a, ok := e.st.apps[p.key]; ok {
		delete(a.pids, p.pid)
	}
	delete(e.st.procs, p.pid)
	e.st.procsChanged = true
}

// scanLocked lists /proc: new processes are read and joined to their app,
// gone ones removed. Young processes (and every process when full is set)
// are re-read so an exec or a setuid moves them to the right app.
func (e *Engine) scanLocked(full bool) error {
	pids, err := e.fs.pids()
	if err != nil {
		return err
	}
	e.st.scans++
	scan := e.st.scans
	if full {
		e.st.fullScans++
	}
	// Credentials change rarely after a process's first seconds (login,
	// su, sshd do it at once): old processes are re-checked every 10th
	// full scan.
	credsAll := full && e.st.fullScans%10 == 0
	for _, pid := range pids {
		p := e.st.procs[pid]
		if p == nil {
			np, err := e.fs.read(pid)
			if err != nil {
				continue
			}
			np.found, np.seenScan = scan, scan
			e.addProcLocked(np)
			continue
		}
		if young := scan-p.found <= youngScans; full || young {
			e.refreshLocked(p, scan, young || credsAll)
			continue
		}
		p.seenScan = scan
	}
	for _, p := range e.st.procs {
		if p.seenScan != scan {
			e.removeProcLocked(p)
		}
	}
	return nil
}

// refreshLocked re-reads a known process; a different start time means the
// pid was reused.
func (e *Engine) refreshLocked(p *proc, scan int64, creds bool) {
	comm, ppid, kthread, start, err := e.fs.stat(p.pid)
	if err != nil {
		return // gone: not marked seen, removed below
	}
	if start != p.start {
		e.removeProcLocked(p)
		np, err := e.fs.read(p.pid)
		if err != nil {
			return
		}
		np.found = scan
		np.seenScan = scan
		e.addProcLocked(np)
		return
	}
	p.seenScan = scan
	p.ppid, p.comm, p.kthread = ppid, comm, kthread
	exe := ""
	if !kthread {
		exe = e.fs.exe(p.pid)
	}
	if creds || exe != p.exe { // an exec may have been of a setuid program
		oldUID, oldOwner := p.uid, p.owner
		if err := e.fs.refreshCreds(p); err != nil {
			p.uid, p.owner = oldUID, oldOwner
		}
	}
	if exe != p.exe {
		p.exe = exe
		p.cmdline = e.fs.cmdline(p.pid)
		p.cgroup = e.fs.cgroup(p.pid)
	}
	if k := keyOf(p); k != p.key {
		if a, ok := e.st.apps[p.key]; ok {
			delete(a.pids, p.pid)
		}
		p.key = k
		e.appLocked(k, p).pids[p.pid] = struct{}{}
		e.st.procsChanged = true
	}
}

func sub(a, b backends.Counters) backends.Counters {
	return backends.Counters{
		RxBytes: a.RxBytes - b.RxBytes, TxBytes: a.TxBytes - b.TxBytes,
		RxPackets: a.RxPackets - b.RxPackets, TxPackets: a.TxPackets - b.TxPackets,
	}
}

// less reports whether any counter of a is below b's (a monitor reset).
func less(a, b backends.Counters) bool {
	return a.RxBytes < b.RxBytes || a.TxBytes < b.TxBytes || a.RxPackets < b.RxPackets || a.TxPackets < b.TxPackets
}

func rate(bytes uint64, dt float64) uint64 {
	return uint64(float64(bytes)/dt + 0.5)
}

// sample reads the monitor and updates rates, totals and histories.
func (e *Engine) sample(now time.Time) {
	var snap backends.Snapshot
	if e.monitor != nil {
		var err error
		snap, err = e.monitor.Update()
		if err != nil {
			e.logOnce("monitor", err)
			return
		}
	}
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	t := snap.Time
	if t.IsZero() {
		t = now
	}
	dt := t.Sub(e.st.lastSample).Seconds()
	if dt < 0.05 {
		dt = 0.05
	}
	e.st.lastSample = t
	e.st.seq++
	seq := e.st.seq
	for _, a := range e.st.apps {
		a.rx, a.tx, a.live = 0, 0, backends.Counters{}
	}
	for i := range snap.Processes {
		ps := &snap.Processes[i]
		k := procKey{ps.PID, ps.StartTime}
		s := e.st.stats[k]
		if s == nil {
			s = &procStat{prevConn: map[connKey]backends.Counters{}}
			e.st.stats[k] = s
		}
		var key appKey
		p := e.st.procs[ps.PID]
		if p != nil && (ps.StartTime == 0 || p.start == ps.StartTime) {
			key = p.key
		} else {
			p = nil
			key = infoKey(ps.ProcessInfo)
		}
		a := e.appLocked(key, p)
		if s.app != a {
			if s.app != nil {
				s.app.exited.Add(sub(s.cur, s.base))
			}
			s.base, s.app = s.cur, a
		}
		if less(ps.Counters, s.cur) {
			// The monitor's counters went backwards: keep what was counted.
			a.exited.Add(sub(s.cur, s.base))
			s.base, s.cur = backends.Counters{}, backends.Counters{}
		}
		d := sub(ps.Counters, s.cur)
		s.rx, s.tx = rate(d.RxBytes, dt), rate(d.TxBytes, dt)
		s.cur, s.info, s.seen = ps.Counters, ps.ProcessInfo, seq
		s.hist.push(api.Sample{RxRate: s.rx, TxRate: s.tx})
		s.conns = connStats(s, ps, dt)
		a.rx += s.rx
		a.tx += s.tx
		if ps.Exited {
			a.exited.Add(sub(s.cur, s.base))
			delete(e.st.stats, k)
		} else {
			a.live.Add(sub(s.cur, s.base))
		}
	}
	for k, s := range e.st.stats {
		if s.seen != seq {
			// Dropped by the monitor without an exit report: keep its bytes.
			s.app.exited.Add(sub(s.cur, s.base))
			delete(e.st.stats, k)
		}
	}
	rulesView := e.limView.Load()
	for key, a := range e.st.apps {
		a.total = a.exited
		a.total.Add(a.live)
		a.hist.push(api.Sample{RxRate: a.rx, TxRate: a.tx})
		if len(a.pids) == 0 && a.total == (backends.Counters{}) && a.rx == 0 && a.tx == 0 && !rulesView.hasRule(key) {
			delete(e.st.apps, key)
			delete(e.st.byID, a.id)
		}
	}
	if e.monitor != nil {
		if less(snap.Total, e.st.prevTotal) {
			e.st.prevTotal = backends.Counters{}
		}
		if less(snap.Unknown, e.st.prevUnkown) {
			e.st.prevUnkown = backends.Counters{}
		}
		d := sub(snap.Total, e.st.prevTotal)
		e.st.rx, e.st.tx = rate(d.RxBytes, dt), rate(d.TxBytes, dt)
		u := sub(snap.Unknown, e.st.prevUnkown)
		e.st.unknownRate = rate(u.RxBytes+u.TxBytes, dt)
		e.st.prevTotal, e.st.prevUnkown, e.st.total = snap.Total, snap.Unknown, snap.Total
	}
}

func connStats(s *procStat, ps *backends.ProcessStats, dt float64) []api.Connection {
	if len(ps.Conns) == 0 {
		if len(s.prevConn) > 0 {
			s.prevConn = map[connKey]backends.Counters{}
		}
		return nil
	}
	out := make([]api.Connection, 0, len(ps.Conns))
	next := make(map[connKey]backends.Counters, len(ps.Conns))
	for _, c := range ps.Conns {
		k := connKey{c.Proto, c.Local, c.Remote}
		prev := s.prevConn[k]
		if less(c.Counters, prev) {
			prev = backends.Counters{}
		}
		d := sub(c.Counters, prev)
		next[k] = c.Counters
		traffic := api.TrafficInternet
		if backends.IsLocal(c.Remote.Addr()) {
			traffic = api.TrafficLocal
		}
		out = append(out, api.Connection{
			PID: int32(ps.PID), Proto: string(c.Proto), Local: addrString(c.Local), Remote: addrString(c.Remote),
			Traffic: traffic, RxRate: rate(d.RxBytes, dt), TxRate: rate(d.TxBytes, dt),
			RxBytes: c.RxBytes, TxBytes: c.TxBytes,
		})
	}
	s.prevConn = next
	return out
}

func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()).String()
}

// publish rebuilds the snapshot Snapshot returns.
func (e *Engine) publish(now time.Time) {
	view := e.limView.Load()
	e.stateMu.Lock()
	// Apps with a rule show even when none of their processes runs.
	for key := range view.rules {
		e.appLocked(key, nil)
	}
	snap := &api.Snapshot{
		Time: now.UnixMilli(), RxRate: e.st.rx, TxRate: e.st.tx, RxBytes: e.st.total.RxBytes, TxBytes: e.st.total.TxBytes,
		UnknownRate: e.st.unknownRate, Apps: make([]api.App, 0, len(e.st.apps)),
	}
	for key, a := range e.st.apps {
		l, hasRule := view.rules[key]
		quiet := a.total == (backends.Counters{}) && a.rx == 0 && a.tx == 0
		if !hasRule && quiet && (len(a.pids) == 0 || (a.key.bracketed() && key.uid == 0)) {
			continue // kernel threads and idle system tasks without traffic are noise
		}
		snap.Apps = append(snap.Apps, e.apiAppLocked(a, l, hasRule))
	}
	e.stateMu.Unlock()
	sortApps(snap.Apps)
	e.snap.Store(snap)
}

func (e *Engine) apiAppLocked(a *app, l api.Limit, hasRule bool) api.App {
	pids := make([]int32, 0, len(a.pids))
	for pid := range a.pids {
		pids = append(pids, int32(pid))
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	exe := a.key.exe
	return api.App{
		ID: a.id, Name: a.name, Exe: exe, Icon: a.icon, UID: a.key.uid, User: a.user, PIDs: pids,
		RxRate: a.rx, TxRate: a.tx, RxBytes: a.total.RxBytes, TxBytes: a.total.TxBytes, Limit: l, Rule: hasRule,
	}
}

// AppDetails returns one app with its processes, their connections and the
// app's history (oldest first).
func (e *Engine) AppDetails(appID string) (api.AppDetails, error) {
	view := e.limView.Load()
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	a, ok := e.st.byID[appID]
	if !ok {
		if len(appID) > 64 {
			appID = appID[:64] + "…"
		}
		return api.AppDetails{}, fmt.Errorf("%w: no app %q", ErrNotFound, appID)
	}
	l, hasRule := view.rules[a.key]
	d := api.AppDetails{App: e.apiAppLocked(a, l, hasRule), History: a.hist.slice()}
	for _, pid := range d.App.PIDs {
		p := e.st.procs[int(pid)]
		if p == nil {
			continue
		}
		pr := api.Process{PID: pid, PPID: int32(p.ppid), Comm: p.comm, Cmdline: strings.Join(p.cmdline, " "), UID: p.uid}
		if pl, ok := view.procs[p.pid]; ok && pl.start == p.start {
			pr.Limit = pl.limit
		}
		s := e.st.stats[procKey{p.pid, p.start}]
		if s == nil {
			s = e.st.stats[procKey{p.pid, 0}]
		}
		if s != nil && s.app == a {
			pr.RxRate, pr.TxRate = s.rx, s.tx
			pr.RxBytes, pr.TxBytes = s.cur.RxBytes-s.base.RxBytes, s.cur.TxBytes-s.base.TxBytes
			d.Connections = append(d.Connections, s.conns...)
		}
		d.Processes = append(d.Processes, pr)
	}
	return d, nil
}

// ProcessHistory returns a monitored process's last 60 s of rates, oldest
// first (empty when the monitor has not seen traffic from it).
func (e *Engine) ProcessHistory(pid int) ([]api.Sample, error) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	p := e.st.procs[pid]
	if p == nil {
		return nil, fmt.Errorf("%w: no process %d", ErrNotFound, pid)
	}
	if s := e.st.stats[procKey{pid, p.start}]; s != nil {
		return s.hist.slice(), nil
	}
	if s := e.st.stats[procKey{pid, 0}]; s != nil {
		return s.hist.slice(), nil
	}
	return []api.Sample{}, nil
}
