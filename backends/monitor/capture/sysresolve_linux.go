//go:build linux && !no_capture

package capture

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// Limits of the socket → process search.
const (
	recentWindow   = 30 * time.Second       // pids forked/execed this recently are searched first
	recentMax      = 512                    // at most this many recent pids are searched per lookup
	fullScanPeriod = 250 * time.Millisecond // full /proc scans at most this often
	newestPIDs     = 64                     // the highest pids searched when recent ones fail
	maxCached      = 1 << 17                // bound of the inode and identity caches
	maxActive      = 256                    // bound of the pids searched as former socket owners
)

type recentPID struct {
	pid int
	at  time.Time
}

// sysResolver finds the process that owns a flow's socket: a sock_diag
// lookup of the one socket gives its inode; the inode is looked up in a map
// filled by scanning the fds of, in order, recently started processes (from
// proc connector events), processes that owned sockets before, and, at most
// every fullScanPeriod, every process.
type sysResolver struct {
	diag *procnet.Diag
	// drain, when set, takes in queued proc connector events at once.
	drain func()
	// netns is the inode of the monitored network namespace (0: unknown).
	netns uint64

	mu       sync.Mutex
	inodes   map[uint64]int   // socket inode → pid
	recent   []recentPID      // oldest first
	active   map[int]struct{} // pids that owned attributed sockets
	infos    map[int]backends.ProcessInfo
	lastFull time.Time
	scanning bool
	stats    ResolverStats
}

// ResolverStats counts lookup outcomes (for tests and benchmarks).
type ResolverStats struct {
	found, notFound, errors, noInodeYet, orphaned, noProcess, gone, fullScans atomic.Uint64
}

func (s *ResolverStats) String() string {
	return fmt.Sprintf("found %d, no socket %d, errors %d, no inode yet %d, orphaned %d, no process %d, exited %d, full scans %d",
		s.found.Load(), s.notFound.Load(), s.errors.Load(), s.noInodeYet.Load(), s.orphaned.Load(), s.noProcess.Load(), s.gone.Load(), s.fullScans.Load())
}

func newSysResolver(diag *procnet.Diag) *sysResolver {
	return &sysResolver{diag: diag, inodes: map[uint64]int{}, active: map[int]struct{}{}, infos: map[int]backends.ProcessInfo{}}
}

// noteStart records a fork or exec of pid (proc connector).
func (r *sysResolver) noteStart(pid int, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.infos, pid) // an exec changes exe and cmdline
	r.recent = append(r.recent, recentPID{pid, now})
	// Trim entries out of the window (and cap the slice).
	cut := 0
	for cut < len(r.recent) && (now.Sub(r.recent[cut].at) > recentWindow || len(r.recent)-cut > 4*recentMax) {
		cut++
	}
	if cut > 64 || cut > len(r.recent)/2 { // amortised: not a copy per event
		r.recent = append(r.recent[:0], r.recent[cut:]...)
	}
}

// noteExit forgets what was known about pid.
func (r *sysResolver) noteExit(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.infos, pid)
	delete(r.active, pid)
	// Inode entries of the pid are dropped lazily (on a failed check).
}

// fullScan rebuilds the inode map from every process, unless another
// resolver is at it.
func (r *sysResolver) fullScan(now time.Time) {
	r.mu.Lock()
	if r.scanning {
		r.mu.Unlock()
		return
	}
	r.scanning = true
	r.lastFull = now
	r.mu.Unlock()
	r.stats.fullScans.Add(1)
	m, err := procnet.ScanInodes()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scanning = false
	if err != nil {
		return
	}
	// The scan replaces the map, dropping sockets that were closed since.
	r.inodes = m
}

func (r *sysResolver) lookup(k flowKey, quick bool) resolution {
	sock, err := r.diag.Lookup(k.protoName(), k.local, k.remote)
	if err != nil {
		if errors.Is(err, procnet.ErrNotFound) {
			// An incoming packet can be captured before the kernel has
			// made its socket; a packet to a closed port never gets one.
			r.stats.notFound.Add(1)
			return resolution{retry: 10 * time.Millisecond, patience: 100 * time.Millisecond}
		}
		r.stats.errors.Add(1)
		return resolution{retry: 50 * time.Millisecond}
	}
	if sock.Inode == 0 {
		switch sock.State {
		case 2, 3, 12, procnet.StateEstablished:
			// SYN_SENT, SYN_RECV, NEW_SYN_RECV, or established and not
			// yet accepted: the socket gets its inode soon.
			r.stats.noInodeYet.Add(1)
			return resolution{retry: 5 * time.Millisecond}
		}
		r.stats.orphaned.Add(1)
		return resolution{} // orphaned: its process closed it
	}
	pid, ok := r.findInode(sock.Inode, quick)
	if !ok {
		r.stats.noProcess.Add(1)
		return resolution{retry: 50 * time.Millisecond}
	}
	info, ok := r.info(pid)
	if !ok {
		r.stats.gone.Add(1)
		return resolution{} // it exited just now: identity unknown
	}
	r.stats.found.Add(1)
	return resolution{info: info}
}

// findInode returns the pid holding inode, searching as the type describes.
func (r *sysResolver) findInode(inode uint64, quick bool) (int, bool) {
	r.mu.Lock()
	pid, ok := r.inodes[inode]
	r.mu.Unlock()
	if ok && alive(pid) {
		return pid, true
	}
	// Recently started processes, newest first; first take in the proc
	// connector events that are queued but not yet handled.
	if r.drain != nil {
		r.drain()
	}
	r.mu.Lock()
	now := time.Now()
	var cands []int
	seen := map[int]bool{}
	for i := len(r.recent) - 1; i >= 0 && len(cands) < recentMax; i-- {
		e := r.recent[i]
		if now.Sub(e.at) > recentWindow {
			break
		}
		if !seen[e.pid] {
			seen[e.pid] = true
			cands = append(cands, e.pid)
		}
	}
	for pid := range r.active {
		if !seen[pid] {
			seen[pid] = true
			cands = append(cands, pid)
		}
	}
	r.mu.Unlock()
	found := r.scanCandidates(inode, cands)
	if found == 0 {
		// The highest pids: the newest processes unless pids wrapped.
		found = r.scanNewest(inode, seen)
	}
	if found == 0 {
		r.mu.Lock()
		due := now.Sub(r.lastFull) >= fullScanPeriod
		r.mu.Unlock()
		if !due || quick {
			return 0, false
		}
		r.fullScan(now)
		r.mu.Lock()
		found = r.inodes[inode]
		r.mu.Unlock()
		if found == 0 {
			return 0, false
		}
	}
	r.mu.Lock()
	if len(r.active) > maxActive {
		clear(r.active)
	}
	r.active[found] = struct{}{}
	r.mu.Unlock()
	return found, true
}

// scanNewest scans the newestPIDs highest pids not in skip for inode.
func (r *sysResolver) scanNewest(inode uint64, skip map[int]bool) int {
	pids, err := procnet.PIDs()
	if err != nil {
		return 0
	}
	slices.Sort(pids)
	var cands []int
	for i := len(pids) - 1; i >= 0 && len(cands) < newestPIDs; i-- {
		if !skip[pids[i]] {
			cands = append(cands, pids[i])
		}
	}
	return r.scanCandidates(inode, cands)
}

// scanCandidates scans the fds of cands, in order, for inode and returns
// the pid holding it (0 if none). Processes in the monitored network
// namespace go first: checking a process's namespace is far cheaper than
// reading its fds, and a socket's owner most likely lives in its namespace.
func (r *sysResolver) scanCandidates(inode uint64, cands []int) int {
	m := procnet.InodeMap{}
	scan := func(pid int) bool {
		clear(m)
		if m.AddPID(pid) == 0 {
			return false
		}
		r.mu.Lock()
		if len(r.inodes) > maxCached {
			clear(r.inodes) // closed sockets pile up between full scans
		}
		for ino, p := range m {
			r.inodes[ino] = p
		}
		r.mu.Unlock()
		_, ok := m[inode]
		return ok
	}
	var later []int
	for _, pid := range cands {
		if r.netns != 0 {
			if ns, err := procnet.NetNSOf(pid); err != nil {
				continue // gone
			} else if ns != r.netns {
				later = append(later, pid)
				continue
			}
		}
		if scan(pid) {
			return pid
		}
	}
	for _, pid := range later {
		if scan(pid) {
			return pid
		}
	}
	return 0
}

// info returns the identity of a live pid (cached; the cache is checked
// against the process's start time).
func (r *sysResolver) info(pid int) (backends.ProcessInfo, bool) {
	r.mu.Lock()
	info, ok := r.infos[pid]
	r.mu.Unlock()
	if ok {
		if st, err := procnet.StartTime(pid); err == nil && st == info.StartTime {
			return info, true
		}
	}
	info, err := procnet.ReadProcess(pid)
	if err != nil {
		return backends.ProcessInfo{}, false
	}
	r.mu.Lock()
	if len(r.infos) > maxCached {
		clear(r.infos) // without exit events nothing else prunes it
	}
	r.infos[pid] = info
	r.mu.Unlock()
	return info, true
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
