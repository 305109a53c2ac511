package engine

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

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
		e.sampleProcLocked(&snap.Processes[i], seq, dt)
	}
	for k, s := range e.st.stats {
		if s.seen != seq {
			// Dropped by the monitor without an exit report: keep its bytes.
			s.app.exited.Add(sub(s.cur, s.base))
			delete(e.st.stats, k)
		}
	}
	e.sampleAppsLocked()
	if e.monitor != nil {
		e.sampleTotalsLocked(&snap, dt)
	}
	usage := e.usageLocked()
	e.stateMu.Unlock()
	if e.cfg.Usage != nil {
		e.cfg.Usage(t, usage)
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

// sampleProcLocked accounts one process of the monitor's snapshot to its app.
func (e *Engine) sampleProcLocked(ps *backends.ProcessStats, seq uint64, dt float64) {
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

// sampleAppsLocked updates the apps' totals and history and drops apps
// with nothing left to show.
func (e *Engine) sampleAppsLocked() {
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
}

// sampleTotalsLocked updates the machine's totals from the snapshot.
func (e *Engine) sampleTotalsLocked(snap *backends.Snapshot, dt float64) {
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
