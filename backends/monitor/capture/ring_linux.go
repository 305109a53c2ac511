//go:build linux && !no_capture

package capture

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// Ring geometry: 512 blocks of 32 KiB (16 MiB); a block holds about 145
// truncated packets and is handed over when full or after ringTimeout ms,
// so the ring covers ≥ 2 s of a stalled reader at low packet rates and
// ≥ 70 000 packets at high ones. New TCP flows do not wait for a block:
// their SYNs come through the low-latency socket (afPacket).
const (
	ringBlockSize = 1 << 15
	ringBlocks    = 512
	ringFrameSize = 1 << 11 // only validated by the kernel in TPACKET_V3
	ringTimeout   = 4       // ms
)

// ring is an AF_PACKET SOCK_DGRAM socket with a TPACKET_V3 receive ring on
// every interface of a network namespace: the kernel copies the first
// snapLen bytes of each IPv4/IPv6 packet (from the network header) into
// shared memory and wakes the reader once per block, not per packet.
type ring struct {
	fd   int
	mem  []byte
	cur  int
	stop atomic.Bool
}

// ipFilter keeps IPv4 and IPv6 packets, truncated to snapLen.
var ipFilter = []unix.SockFilter{
	{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 0xfffff000 /* SKF_AD_OFF + SKF_AD_PROTOCOL */},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 2, Jf: 0, K: unix.ETH_P_IP},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: unix.ETH_P_IPV6},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0},
	{Code: unix.BPF_RET | unix.BPF_K, K: snapLen},
}

func attachFilter(fd int, prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach packet filter: %w", err)
	}
	return nil
}

// openRing opens the ring in the namespace at netnsPath.
func openRing(netnsPath string) (*ring, error) {
	fd, err := procnet.SocketAt(netnsPath, unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	r := &ring{fd: fd}
	if err := r.setup(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *ring) setup() error {
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("select TPACKET_V3: %w", err)
	}
	if err := attachFilter(r.fd, ipFilter); err != nil {
		return err
	}
	req := unix.TpacketReq3{
		Block_size:     ringBlockSize,
		Block_nr:       ringBlocks,
		Frame_size:     ringFrameSize,
		Frame_nr:       ringBlockSize / ringFrameSize * ringBlocks,
		Retire_blk_tov: ringTimeout,
	}
	if err := unix.SetsockoptTpacketReq3(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("set up packet ring: %w", err)
	}
	mem, err := unix.Mmap(r.fd, 0, ringBlockSize*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map packet ring: %w", err)
	}
	r.mem = mem
	// Bind last, so no packet arrives before the filter is in place.
	if err := unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		return fmt.Errorf("bind packet socket: %w", err)
	}
	return nil
}

// ringPacket is one packet in the ring; data is valid until the block is
// released.
type ringPacket struct {
	data    []byte
	origLen int
	pkttype uint8
	ifindex int
}

// Offsets in the ring (linux/if_packet.h).
const (
	blockStatusOff = 8  // tpacket_block_desc.hdr.bh1.block_status
	blockNumOff    = 12 // … num_pkts
	blockFirstOff  = 16 // … offset_to_first_pkt
	sllOff         = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
)

// next waits for the next filled block and calls fn for each of its
// packets, then gives the block back to the kernel. It returns errStopped
// once stop is set.
func (r *ring) next(fn func(now time.Time, p *ringPacket)) error {
	block := r.mem[r.cur*ringBlockSize : (r.cur+1)*ringBlockSize]
	status := (*uint32)(unsafe.Pointer(&block[blockStatusOff]))
	for atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
		if r.stop.Load() {
			return errStopped
		}
		fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN | unix.POLLERR}}
		if _, err := unix.Poll(fds, 200); err != nil && err != unix.EINTR {
			return fmt.Errorf("wait for packets: %w", err)
		}
	}
	now := time.Now()
	n := *(*uint32)(unsafe.Pointer(&block[blockNumOff]))
	off := int(*(*uint32)(unsafe.Pointer(&block[blockFirstOff])))
	var p ringPacket
	for i := uint32(0); i < n && off > 0 && off+sllOff+unix.SizeofSockaddrLinklayer <= len(block); i++ {
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&block[off]))
		sll := (*unix.RawSockaddrLinklayer)(unsafe.Pointer(&block[off+sllOff]))
		// Snaplen counts from the link header (Mac); for SOCK_DGRAM it
		// equals Net, the network header.
		start := off + int(h.Net)
		end := off + int(h.Mac) + int(h.Snaplen)
		if end <= len(block) && start <= end {
			p.data = block[start:end]
			p.origLen = int(h.Len)
			p.pkttype = sll.Pkttype
			p.ifindex = int(sll.Ifindex)
			fn(now, &p)
		}
		if h.Next_offset == 0 {
			break
		}
		off += int(h.Next_offset)
	}
	atomic.StoreUint32(status, unix.TP_STATUS_KERNEL)
	r.cur = (r.cur + 1) % ringBlocks
	return nil
}

// drops returns the packets the kernel dropped since the last call (the
// ring was full).
func (r *ring) drops() (uint64, error) {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, err
	}
	return uint64(st.Drops), nil
}

func (r *ring) close() error {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
	return unix.Close(r.fd)
}
