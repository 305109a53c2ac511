//go:build linux && !no_ebpf

package ebpf

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	cilium "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
)

// The upload token bucket alone stops a TCP segment once the bucket is
// empty; the segment waits in TCP's write queue for the next ACK or, with
// nothing in flight, TCP's probe timer, and a sender limited to 1 MB/s ran
// 1.31, 1.31, 1.31, 0 MB/s second by second (issue #13). On a path with a
// short round trip the congestion window cannot slow TCP down to the limit;
// pacing can. The pacer sets SO_MAX_PACING_RATE on the TCP sockets of
// upload-limited targets, the target's rate shared among its sockets that
// are sending, so they run at the limit and the bucket is only a backstop.
// TCP paces by itself once a socket has a maximum pacing rate (no fq qdisc
// is needed, and this kernel has none).
//
// Sockets are reached from user space with pidfd_getfd(2): a sockops
// program (bpf_setsockopt) would see only connections established after it
// was attached, not the ones a running upload already has open. A socket
// the pacer dropped (the limit removed, or the process gone) gets back the
// maximum pacing rate it had before.

// paceEvery is how often the pacer shares the rates out again; a socket
// opened in between is held by the bucket alone until the next round.
const paceEvery = 200 * time.Millisecond

// maxPacedSockets bounds the sockets paced per target.
const maxPacedSockets = 1024

type pacer struct {
	mu      sync.Mutex
	rec     *paceRecords // what it set, kept where a restarted helper finds it (pacerecord_linux.go)
	targets map[string]*paceTarget
	stop    chan struct{} // nil while no target is paced
	done    chan struct{}
}

type paceTarget struct {
	rate    uint64
	fill    func() float64 // how full the target's bucket is, 0–1
	traffic backends.TrafficType
	pids    []int
	socks   map[uint64]*pacedSock // by inode
	rec     *cilium.Map           // the pacer's records (nil: none)
}

type pacedSock struct {
	pid, fd int    // where it was last found
	acked   uint64 // tcpi_bytes_acked at the last round
	set     uint64 // the pacing rate set; 0 before the first
	orig    uint64 // the socket's own maximum pacing rate
	dup     int    // during a round: this process's copy of the socket (0: none)
}

func newPacer(tag string) *pacer {
	return &pacer{targets: map[string]*paceTarget{}, rec: &paceRecords{tag: tag}}
}

// set paces target id's sockets at about l.Rate bytes/s in total (matching
// traffic only), starting now; fill tells how full the target's bucket is.
func (p *pacer) set(id string, l backends.Limit, pids []int, fill func() float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt := p.targets[id]
	if pt == nil {
		pt = &paceTarget{socks: map[uint64]*pacedSock{}}
		p.targets[id] = pt
	}
	pt.rate, pt.fill, pt.traffic, pt.pids = uint64(l.Rate), fill, l.Traffic, append([]int(nil), pids...)
	pt.rec = p.rec.open()
	pt.round()
	if p.stop == nil {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.loop(p.stop, p.done)
	}
}

// follow updates the processes of a paced target.
func (p *pacer) follow(id string, pids []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pt := p.targets[id]; pt != nil {
		pt.pids = append([]int(nil), pids...)
	}
}

// remove stops pacing target id and gives its sockets their own rates back.
func (p *pacer) remove(id string) {
	p.mu.Lock()
	pt := p.targets[id]
	delete(p.targets, id)
	var stop, done chan struct{}
	if len(p.targets) == 0 {
		stop, done, p.stop = p.stop, p.done, nil
	}
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	if pt != nil {
		for ino, s := range pt.socks {
			s.restore(ino, pt.rec)
		}
	}
}

// close removes every target.
func (p *pacer) close() {
	p.mu.Lock()
	ids := make([]string, 0, len(p.targets))
	for id := range p.targets {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.remove(id)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec.close()
}

func (p *pacer) loop(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(paceEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		for _, pt := range p.targets {
			pt.round()
		}
		p.mu.Unlock()
	}
}

// round finds the target's TCP sockets, counts the ones that are sending
// and gives each the rate divided by that count (idle ones too: one that
// starts sending exceeds the share only until the next round).
func (pt *paceTarget) round() {
	found := map[uint64]*pacedSock{}
	var active []*pacedSock
	for _, pid := range pt.pids {
		pt.scan(pid, found, &active)
	}
	// A socket no longer found is closed, or held by another process now:
	// its descriptor number may name another file by now, so it is left.
	pt.socks = found
	share := pt.paceRate() / uint64(max(len(active), 1))
	for _, s := range found {
		if s.set != share && setMaxPacing(s.dup, share) == nil {
			if s.set == 0 && pt.rec != nil {
				_ = pt.rec.Put(uint32(s.dup), s.orig)
			}
			s.set = share
		}
		unix.Close(s.dup)
		s.dup = 0
	}
}

// paceRate is the target's total pacing rate: 0.98 of its limit while the
// bucket is nearly empty, up to 1.48 of it while the bucket is full. Paced
// exactly at the limit, the bucket sat at zero and stopped segments (each a
// stall); paced below it, TCP falls behind whenever its pacing timer runs
// late on a busy machine (0.70 of the limit at 100 MB/s, load 16) and the
// unused tokens pile up: the fuller the bucket, the faster TCP may send to
// use them. In equilibrium the bucket holds a few percent of its burst and
// the average is the limit.
func (pt *paceTarget) paceRate() uint64 {
	f := 0.0
	if pt.fill != nil {
		f = min(max(pt.fill(), 0), 1)
	}
	return uint64(float64(pt.rate) * (0.98 + 0.5*f))
}

// scan adds pid's TCP sockets that carry the target's traffic to found and
// the ones that sent since the last round to active.
func (pt *paceTarget) scan(pid int, found map[uint64]*pacedSock, active *[]*pacedSock) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(pidfd)
	for _, e := range ents {
		if len(found) >= maxPacedSockets {
			return
		}
		ino, fd, ok := socketFD(dir, e.Name())
		if !ok || found[ino] != nil {
			continue
		}
		s := pt.socks[ino]
		if s == nil {
			s = &pacedSock{}
		}
		s.pid, s.fd = pid, fd
		sent, ok := pt.inspect(pidfd, s)
		if !ok {
			continue
		}
		found[ino] = s
		if sent {
			*active = append(*active, s)
		}
	}
}

// socketFD reads the fd entry name in dir and returns its socket inode.
func socketFD(dir, name string) (ino uint64, fd int, ok bool) {
	link, err := os.Readlink(dir + "/" + name)
	if err != nil || !strings.HasPrefix(link, "socket:[") {
		return 0, 0, false
	}
	ino, err = strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	fd, err = strconv.Atoi(name)
	return ino, fd, err == nil
}

// inspect reads a socket through a copy of its descriptor: ok when it is a
// connected TCP socket whose peer matches the target's traffic type (the
// copy is then kept in s.dup for round to set the rate through and close);
// sent when it sent (or has data waiting to be sent) since the last round.
func (pt *paceTarget) inspect(pidfd int, s *pacedSock) (sent, ok bool) {
	fd, err := unix.PidfdGetfd(pidfd, s.fd, 0)
	if err != nil {
		return false, false
	}
	defer func() {
		if ok {
			s.dup = fd
		} else {
			unix.Close(fd)
		}
	}()
	if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || proto != unix.IPPROTO_TCP {
		return false, false
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil || info.State != unix.BPF_TCP_ESTABLISHED {
		return false, false
	}
	if !pt.wants(fd) {
		return false, false
	}
	if s.set == 0 {
		if s.orig, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE); err != nil {
			return false, false
		}
	}
	sent = info.Bytes_acked != s.acked || info.Notsent_bytes > 0 || info.Unacked > 0
	s.acked = info.Bytes_acked
	return sent, true
}

// wants reports whether the peer of the socket fd is in the traffic the
// limit applies to.
func (pt *paceTarget) wants(fd int) bool {
	if pt.traffic == backends.TrafficAll {
		return true
	}
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return false
	}
	var addr netip.Addr
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		addr = netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		addr = netip.AddrFrom16(a.Addr).Unmap()
	default:
		return false
	}
	return backends.IsLocal(addr) == (pt.traffic == backends.TrafficLocal)
}

// restore gives the socket back the maximum pacing rate it had, if its
// process still holds it at the same descriptor, and drops its record in
// rec.
func (s *pacedSock) restore(ino uint64, rec *cilium.Map) {
	dir := "/proc/" + strconv.Itoa(s.pid) + "/fd"
	if now, _, ok := socketFD(dir, strconv.Itoa(s.fd)); s.set == 0 || !ok || now != ino {
		return
	}
	pidfd, err := unix.PidfdOpen(s.pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, s.fd, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if setMaxPacing(fd, s.orig) == nil && rec != nil {
		_ = rec.Delete(uint32(fd))
	}
}

// setMaxPacing sets SO_MAX_PACING_RATE on fd (a 32-bit value where the
// kernel takes no 64-bit one).
func setMaxPacing(fd int, rate uint64) error {
	err := unix.SetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, rate)
	if errors.Is(err, unix.EINVAL) {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, int(min(rate, 1<<32-1)))
	}
	return err
}

// bucketFill returns how full bucket idx is (tokens ÷ burst), for the
// pacer. It reads the map without t.mu (SetLimit holds it while the pacer
// runs a round); Cleanup stops the pacer before it closes the map.
func (t *throttler) bucketFill(idx uint32) func() float64 {
	m := t.objs.Buckets
	return func() float64 {
		var b throttleBucket
		if err := m.LookupWithFlags(idx, &b, cilium.LookupLock); err != nil || b.Burst <= 0 {
			return 0
		}
		return float64(b.Tokens) / float64(b.Burst)
	}
}
