//go:build linux && !no_ebpf

package ebpf

import (
	"net/netip"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// The attribute step of Update: which process each delta belongs to.

// resolveUnowned looks up, at most every resolveEvery, the processes of
// the sockets that moved bytes but whose creation the programs did not see
// (open before Init, or accepted from a listener); each is looked up once.
func (m *monitorBackend) resolveUnowned(deltas []delta, owners *ownerCache, now time.Time) {
	var unresolved []monitorConnKey
	for _, d := range deltas {
		if _, ok := owners.get(d.key.Cookie); ok {
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
}

// attribute adds each delta to the totals and to its process and
// connection, or to Unknown when no process is known, and returns the
// processes that moved bytes.
func (m *monitorBackend) attribute(deltas []delta, owners *ownerCache, now time.Time) map[int]bool {
	active := map[int]bool{}
	for _, d := range deltas {
		m.total.Add(d.c)
		pid := 0
		var who *monitorOwner
		if o, ok := owners.get(d.key.Cookie); ok {
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
	return active
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
