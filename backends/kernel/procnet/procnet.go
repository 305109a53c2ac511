// Package procnet gathers socket and process facts the monitors and
// throttlers share: sock_diag dumps and single-socket lookups of TCP and UDP
// sockets (IPv4 and IPv6) in a network namespace, the socket inodes a
// process holds (/proc/PID/fd), a fast inode → process map, process
// identity (/proc/PID/stat, exe, cmdline, cgroup) and a proc connector
// listener for fork/exec/exit events, so that short-lived processes are
// seen. Addresses are normalised: IPv4-mapped IPv6 addresses come back as
// IPv4.
package procnet

import (
	"fmt"
	"net/netip"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Socket is one TCP or UDP socket as sock_diag reports it.
type Socket struct {
	Proto  backends.Proto
	Local  netip.AddrPort // normalised (IPv4-mapped → IPv4)
	Remote netip.AddrPort // normalised; the unspecified address with port 0 for listeners and unconnected UDP
	Inode  uint64         // 0 once no process holds the socket (TIME_WAIT, orphans)
	Cookie uint64         // the socket cookie, as bpf_get_socket_cookie returns it
	UID    uint32
	State  uint8 // TCP state (1 established … 10 listen); 7 (close) for unconnected UDP
	// Family is the socket's own family (AF_INET 2 or AF_INET6 10): an IPv6
	// socket carrying IPv4 reports IPv4 addresses but Family 10.
	Family uint8
}

// TCP states as sock_diag reports them.
const (
	StateEstablished = 1
	StateTimeWait    = 6
	StateClose       = 7
	StateListen      = 10
)

func (s Socket) String() string {
	return fmt.Sprintf("%s %v→%v inode %d cookie %d uid %d", s.Proto, s.Local, s.Remote, s.Inode, s.Cookie, s.UID)
}

// Normalize returns a with an IPv4-mapped IPv6 address turned into IPv4
// (and any zone dropped).
func Normalize(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}
