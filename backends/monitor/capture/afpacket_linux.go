//go:build linux && !no_capture

package capture

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends/procnet"
)

// snapLen is how much of each packet is copied: enough for an IPv6 header
// with a hop-by-hop option and a TCP header with options.
const snapLen = 160

// Packet types (sll_pkttype).
const (
	pktHost      = unix.PACKET_HOST
	pktBroadcast = unix.PACKET_BROADCAST
	pktMulticast = unix.PACKET_MULTICAST
	pktOutgoing  = unix.PACKET_OUTGOING
	pktLoopback  = unix.PACKET_LOOPBACK
)

// afPacket is an AF_PACKET SOCK_DGRAM socket on every interface of a
// network namespace. Packets come from the network header on, truncated to
// snapLen by a socket filter that also drops everything but IPv4 and IPv6;
// the original length comes from PACKET_AUXDATA.
type afPacket struct {
	fd   int
	stop atomic.Bool
	buf  [snapLen]byte
	oob  [64]byte
	sa   unix.RawSockaddrLinklayer
	iov  unix.Iovec
	msg  unix.Msghdr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openAFPacket opens the socket in the namespace at netnsPath.
func openAFPacket(netnsPath string) (*afPacket, error) {
	fd, err := procnet.SocketAt(netnsPath, unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	a := &afPacket{fd: fd}
	if err := a.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return a, nil
}

func (a *afPacket) setup() error {
	if err := unix.SetsockoptInt(a.fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fmt.Errorf("enable packet auxdata: %w", err)
	}
	// Room for bursts: a queued packet is charged its full (GSO) size even
	// though only snapLen bytes are copied.
	if err := unix.SetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
		unix.SetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<20)
	}
	// A receive timeout lets the reader notice Close.
	tv := unix.Timeval{Usec: 200_000}
	if err := unix.SetsockoptTimeval(a.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("set packet socket timeout: %w", err)
	}
	// ld proto; jeq IPv4 → keep; jeq IPv6 → keep; ret 0; keep: ret snapLen.
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 0xfffff000 /* SKF_AD_OFF + SKF_AD_PROTOCOL */},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 2, Jf: 0, K: unix.ETH_P_IP},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: unix.ETH_P_IPV6},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},
		{Code: unix.BPF_RET | unix.BPF_K, K: snapLen},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(a.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach packet filter: %w", err)
	}
	// Bind last, so no packet arrives before the filter is in place.
	if err := unix.Bind(a.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		return fmt.Errorf("bind packet socket: %w", err)
	}
	return nil
}

// errStopped is returned by read after close was requested.
var errStopped = errors.New("capture stopped")

// read returns the next packet: its first bytes (valid until the next
// read), its original length, packet type and interface index.
func (a *afPacket) read() (data []byte, origLen int, pkttype uint8, ifindex int, err error) {
	for {
		if a.stop.Load() {
			return nil, 0, 0, 0, errStopped
		}
		a.iov.Base = &a.buf[0]
		a.iov.SetLen(len(a.buf))
		a.msg.Name = (*byte)(unsafe.Pointer(&a.sa))
		a.msg.Namelen = unix.SizeofSockaddrLinklayer
		a.msg.Iov = &a.iov
		a.msg.Iovlen = 1
		a.msg.Control = &a.oob[0]
		a.msg.SetControllen(len(a.oob))
		a.msg.Flags = 0
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(a.fd), uintptr(unsafe.Pointer(&a.msg)), 0)
		if e != 0 {
			if e == unix.EAGAIN || e == unix.EINTR {
				continue
			}
			return nil, 0, 0, 0, fmt.Errorf("read packet: %w", e)
		}
		origLen = int(n)
		// The one control message is PACKET_AUXDATA (parsed by hand: the
		// unix helpers allocate per packet).
		if cl := int(a.msg.Controllen); cl >= unix.SizeofCmsghdr+int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			h := (*unix.Cmsghdr)(unsafe.Pointer(&a.oob[0]))
			if h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA {
				aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&a.oob[unix.SizeofCmsghdr]))
				origLen = int(aux.Len)
			}
		}
		return a.buf[:min(int(n), len(a.buf))], origLen, a.sa.Pkttype, int(a.sa.Ifindex), nil
	}
}

// drops returns the packets the kernel dropped since the last call.
func (a *afPacket) drops() (uint64, error) {
	st, err := unix.GetsockoptTpacketStats(a.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, err
	}
	return uint64(st.Drops), nil
}

func (a *afPacket) close() error { return unix.Close(a.fd) }
