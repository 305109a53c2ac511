//go:build linux && !no_ebpf

package ebpf

import (
	"sort"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// The emit step of Update: the snapshot of every known process.

// snapshot reports the cumulative figures of every known process, sorted by
// pid. A process gone and quiet for exitQuiet is reported once as exited,
// then dropped; connections idle for connIdle are dropped. active holds the
// processes that moved bytes in this Update.
func (m *monitorBackend) snapshot(active map[int]bool, now time.Time) backends.Snapshot {
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
	return snap
}

func alive(pid int, start uint64) bool {
	st, err := procnet.StartTime(pid)
	if err != nil {
		return false
	}
	return start == 0 || st == start
}
