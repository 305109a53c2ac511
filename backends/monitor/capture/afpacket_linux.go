//go:build linux && !no_capture

package capture

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
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
// network namespace, read one packet per system call: the capture uses it
// for TCP SYNs only (synFilter), which it must see within microseconds.
// Packets come from the network header on, truncated to snapLen; the
// original length comes from PACKET_AUXDATA.
type afPacket struct {
	fd     int
	filter []unix.SockFilter
	stop   atomic.Bool
	buf    [snapLen]byte
	oob    [64]byte
	sa     unix.RawSockaddrLinklayer
	iov    unix.Iovec
	msg    unix.Msghdr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// synFilter keeps TCP packets with SYN set (IPv4 first fragments, IPv6
// without extension headers), truncated to snapLen.
var synFilter = []unix.SockFilter{
	/* 0 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 0}, // version
	/* 1 */ {Code: unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K, K: 4},
	/* 2 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 4, Jt: 1, Jf: 0},
	/* 3 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 6, Jt: 7, Jf: 12},
	/* 4 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 9}, // IPv4 protocol
	/* 5 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.IPPROTO_TCP, Jt: 0, Jf: 10},
	/* 6 */ {Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 6}, // fragment offset
	/* 7 */ {Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: 0x1fff, Jt: 8, Jf: 0},
	/* 8 */ {Code: unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH, K: 0}, // X = IPv4 header length
	/* 9 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_IND, K: 13}, // TCP flags
	/* 10 */ {Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: 0x02, Jt: 4, Jf: 5},
	/* 11 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 6}, // IPv6 next header
	/* 12 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.IPPROTO_TCP, Jt: 0, Jf: 3},
	/* 13 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 40 + 13}, // TCP flags
	/* 14 */ {Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: 0x02, Jt: 0, Jf: 1},
	/* 15 */ {Code: unix.BPF_RET | unix.BPF_K, K: snapLen},
	/* 16 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0},
}

// openAFPacket opens the socket in the namespace at netnsPath with a
// socket filter.
func openAFPacket(netnsPath string, filter []unix.SockFilter) (*afPacket, error) {
	fd, err := procnet.SocketAt(netnsPath, unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	a := &afPacket{fd: fd, filter: filter}
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
	// Room for bursts of SYNs.
	if err := unix.SetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
		unix.SetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	// A receive timeout lets the reader notice Close.
	tv := unix.Timeval{Usec: 200_000}
	if err := unix.SetsockoptTimeval(a.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("set packet socket timeout: %w", err)
	}
	if err := attachFilter(a.fd, a.filter); err != nil {
		return err
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
