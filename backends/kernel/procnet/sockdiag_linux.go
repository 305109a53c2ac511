//go:build linux

package procnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
)

// sock_diag wire constants (linux/inet_diag.h, linux/sock_diag.h).
const (
	sockDiagByFamily = 20
	sizeofReq        = 56 // inet_diag_req_v2
	sizeofMsg        = 72 // inet_diag_msg
	noCookie         = 0xffffffff
	allStates        = 0xfff
)

// Diag is a sock_diag netlink socket opened in one network namespace. It is
// safe for concurrent use (requests are serialised).
type Diag struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

// OpenDiag opens a sock_diag socket in the network namespace at netnsPath
// ("" = the caller's own).
func OpenDiag(netnsPath string) (*Diag, error) {
	fd, err := SocketAt(netnsPath, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind sock_diag socket: %w", err)
	}
	// A receive timeout keeps a lost reply from blocking forever.
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &Diag{fd: fd, buf: make([]byte, 64<<10)}, nil
}

// Close closes the socket.
func (d *Diag) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// SocketAt creates a socket in the network namespace at netnsPath ("" = the
// caller's own). The socket stays in that namespace for its whole life.
func SocketAt(netnsPath string, domain, typ, proto int) (int, error) {
	if netnsPath == "" {
		return unix.Socket(domain, typ, proto)
	}
	target, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open network namespace %s: %w", netnsPath, err)
	}
	defer unix.Close(target)
	var fd int
	var serr error
	err = InNetNS(target, func() error {
		fd, serr = unix.Socket(domain, typ, proto)
		return nil
	})
	if err != nil {
		return -1, err
	}
	return fd, serr
}

// InNetNS runs fn on a locked OS thread switched into the network namespace
// nsfd refers to, then switches back. If switching back fails the thread is
// left locked, so the runtime discards it rather than reuse it.
func InNetNS(nsfd int, fn func() error) error {
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer self.Close()
	if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("return to own network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Dump lists the TCP and UDP sockets, IPv4 and IPv6, in the namespace at
// netnsPath ("" = the caller's own).
func Dump(netnsPath string) ([]Socket, error) {
	d, err := OpenDiag(netnsPath)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Dump()
}

// Dump lists the TCP and UDP sockets, IPv4 and IPv6, of the namespace.
func (d *Diag) Dump() ([]Socket, error) {
	var out []Socket
	for _, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			var err error
			out, err = d.DumpOf(out, fam, proto)
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// DumpOf appends the sockets of one family (AF_INET, AF_INET6) and protocol
// (IPPROTO_TCP, IPPROTO_UDP) to out.
func (d *Diag) DumpOf(out []Socket, family, proto uint8) ([]Socket, error) {
	req := diagRequest(family, proto, allStates, netip.AddrPort{}, netip.AddrPort{}, noCookie)
	err := d.roundTrip(req, unix.NLM_F_DUMP, func(s Socket) { out = append(out, s) })
	if err != nil {
		return nil, fmt.Errorf("sock_diag dump of %s/%s: %w", famName(family), protoOf(proto), err)
	}
	return out, nil
}

// Lookup finds the one socket with these local and remote addresses. For
// UDP it also finds an unconnected socket bound to local (or to a wildcard
// address on its port). It returns ErrNotFound when there is none.
func (d *Diag) Lookup(proto backends.Proto, local, remote netip.AddrPort) (Socket, error) {
	var p uint8
	switch proto {
	case backends.TCP:
		p = unix.IPPROTO_TCP
	case backends.UDP:
		p = unix.IPPROTO_UDP
	default:
		return Socket{}, fmt.Errorf("look up socket: unknown protocol %q", proto)
	}
	local, remote = Normalize(local), Normalize(remote)
	if local.Addr().Is4() != remote.Addr().Is4() {
		return Socket{}, fmt.Errorf("look up socket %v→%v: mixed address families", local, remote)
	}
	fam := uint8(unix.AF_INET)
	if local.Addr().Is6() {
		fam = unix.AF_INET6
	}
	src, dst := local, remote
	if p == unix.IPPROTO_UDP {
		// udp_dump_one passes the request's source as the remote end
		// (linux net/ipv4/udp_diag.c: "src and dst are swapped for
		// historical reasons").
		src, dst = remote, local
	}
	var found *Socket
	req := diagRequest(fam, p, allStates, src, dst, noCookie)
	err := d.roundTrip(req, 0, func(s Socket) {
		if found == nil {
			found = &s
		}
	})
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Socket{}, ErrNotFound
		}
		return Socket{}, fmt.Errorf("sock_diag lookup of %s %v→%v: %w", proto, local, remote, err)
	}
	if found == nil {
		return Socket{}, ErrNotFound
	}
	return *found, nil
}

// ErrNotFound is returned by Lookup when no socket matches.
var ErrNotFound = errors.New("no such socket")

func famName(f uint8) string {
	if f == unix.AF_INET6 {
		return "ipv6"
	}
	return "ipv4"
}

func protoOf(p uint8) backends.Proto {
	if p == unix.IPPROTO_UDP {
		return backends.UDP
	}
	return backends.TCP
}

func diagRequest(family, proto uint8, states uint32, src, dst netip.AddrPort, cookie uint32) []byte {
	b := make([]byte, sizeofReq)
	b[0], b[1] = family, proto
	binary.NativeEndian.PutUint32(b[4:], states)
	binary.BigEndian.PutUint16(b[8:], src.Port())
	binary.BigEndian.PutUint16(b[10:], dst.Port())
	putAddr(b[12:28], src.Addr())
	putAddr(b[28:44], dst.Addr())
	binary.NativeEndian.PutUint32(b[48:], cookie)
	binary.NativeEndian.PutUint32(b[52:], cookie)
	return b
}

func putAddr(b []byte, a netip.Addr) {
	if !a.IsValid() {
		return
	}
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// roundTrip sends one request and calls fn for each socket in the reply.
func (d *Diag) roundTrip(req []byte, flags uint16, fn func(Socket)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return errors.New("sock_diag socket closed")
	}
	d.seq++
	seq := d.seq
	msg := make([]byte, unix.NLMSG_HDRLEN+len(req))
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], sockDiagByFamily)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	copy(msg[unix.NLMSG_HDRLEN:], req)
	if err := unix.Sendto(d.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	dump := flags&unix.NLM_F_DUMP != 0
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		b := d.buf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := binary.NativeEndian.Uint32(b[0:])
			typ := binary.NativeEndian.Uint16(b[4:])
			mseq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.NLMSG_HDRLEN || int(l) > len(b) {
				return fmt.Errorf("malformed netlink message (length %d of %d)", l, len(b))
			}
			body := b[unix.NLMSG_HDRLEN:l]
			b = b[min(nlmAlign(int(l)), len(b)):]
			if mseq != seq {
				continue // a late reply to an earlier request
			}
			switch typ {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(body) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(body)); e != 0 {
						return unix.Errno(-e)
					}
				}
				return nil
			case sockDiagByFamily:
				if s, ok := parseDiagMsg(body); ok {
					s.Proto = protoOf(req[1])
					fn(s)
				}
				if !dump {
					return nil
				}
			}
		}
	}
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

func parseDiagMsg(b []byte) (Socket, bool) {
	if len(b) < sizeofMsg {
		return Socket{}, false
	}
	fam := b[0]
	s := Socket{State: b[1], Family: fam}
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	var src, dst netip.Addr
	if fam == unix.AF_INET {
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(b[24:28]))
	} else {
		src = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		dst = netip.AddrFrom16([16]byte(b[24:40])).Unmap()
	}
	s.Local = netip.AddrPortFrom(src, sport)
	s.Remote = netip.AddrPortFrom(dst, dport)
	s.Cookie = uint64(binary.NativeEndian.Uint32(b[44:])) | uint64(binary.NativeEndian.Uint32(b[48:]))<<32
	s.UID = binary.NativeEndian.Uint32(b[64:])
	s.Inode = uint64(binary.NativeEndian.Uint32(b[68:]))
	return s, true
}
