package engine

import (
	"net/netip"
	"os/user"
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
	fed     backends.Counters // total when last reported to Config.Usage
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
func userName(uid uint32) string {
	names.mu.Lock()
	defer names.mu.Unlock()
	if n, ok := names.m[uid]; ok {
		return n
	}
	n := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(n); err == nil && u.Username != "" {
		n = u.Username
	}
	names.m[uid] = n
	return n
}

func sortApps(apps []api.App) {
	sort.Slice(apps, func(i, j int) bool {
		a, b := &apps[i], &apps[j]
		if a.RxRate != b.RxRate {
			return a.RxRate > b.RxRate
		}
		if a.TxRate != b.TxRate {
			return a.TxRate > b.TxRate
		}
		return a.ID < b.ID
	})
}
