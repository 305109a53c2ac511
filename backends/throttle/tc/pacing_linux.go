//go:build linux

package tc

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/procnet"
)

// Upload shaping happens on the IFB, after the socket: TCP gets no
// back-pressure and learns the limit from drops, which makes a connection
// that was running fast when the limit came stall and burst for seconds.
// So tc_htb also caps the pacing rate (SO_MAX_PACING_RATE, which turns on
// TCP's own pacing) of the target's open TCP sockets a little above the
// limit: TCP then sends at about the limit by itself and HTB only trims.
// The app's own setting is put back when the limit goes. This is an
// optimisation: the HTB class is the limit, and a socket that cannot be
// reached (process gone, fd reused) is simply left alone.

// pacingHeadroom keeps TCP's pace a little above the limit so HTB, not the
// pacer, decides the rate (pacing counts TCP headers, HTB whole frames).
const pacingHeadroom = 1.03

// pacedSock is one TCP socket of a target whose pacing rate was capped.
type pacedSock struct {
	pid, fd int
	cookie  uint64
	orig    uint64 // SO_MAX_PACING_RATE before (^0 = unlimited)
}

// tcpSockets finds, in pids' fd tables, the TCP sockets of socks.
func tcpSockets(pids []int, socks []procnet.Socket) []pacedSock {
	byInode := map[uint64]uint64{}
	for _, s := range socks {
		if s.Proto == backends.TCP && s.Inode != 0 {
			byInode[s.Inode] = s.Cookie
		}
	}
	var out []pacedSock
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			link, err := os.Readlink(dir + "/" + e.Name())
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(link[len("socket:["):], "]"), 10, 64)
			if err != nil {
				continue
			}
			fd, err := strconv.Atoi(e.Name())
			if c, ok := byInode[ino]; ok && err == nil {
				out = append(out, pacedSock{pid: pid, fd: fd, cookie: c})
				delete(byInode, ino) // once per socket
			}
		}
	}
	return out
}

// withSocket runs fn on a duplicate of the process's socket fd, if it is
// still the socket with ps's cookie.
func withSocket(ps *pacedSock, fn func(fd int) error) error {
	pidfd, err := unix.PidfdOpen(ps.pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, ps.fd, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE); err != nil || c != ps.cookie {
		return errors.New("socket changed")
	}
	return fn(fd)
}

// capPacing records each socket's pacing cap and lowers it to rate.
func capPacing(socks []pacedSock, rate backends.Rate) []pacedSock {
	pace := uint64(float64(rate) * pacingHeadroom)
	var done []pacedSock
	for i := range socks {
		ps := socks[i]
		err := withSocket(&ps, func(fd int) error {
			orig, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE)
			if err != nil {
				return err
			}
			ps.orig = orig
			if orig != ^uint64(0) && orig <= pace {
				return errors.New("the app paces lower itself") // leave it
			}
			return unix.SetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, pace)
		})
		if err == nil {
			done = append(done, ps)
		}
	}
	return done
}

// restorePacing puts back what capPacing changed.
func restorePacing(socks []pacedSock) {
	for i := range socks {
		ps := socks[i]
		_ = withSocket(&ps, func(fd int) error {
			return unix.SetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, ps.orig)
		})
	}
}
