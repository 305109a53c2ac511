//go:build linux

package tc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sockKeys are the classifier map keys of a target's open sockets.
type sockKeys struct {
	cookies []uint64 // socket cookies (sock_diag generates them if needed)
}

// socketInodes returns the inodes of the sockets pid has open, from
// /proc/PID/fd. A process that exited has none.
func socketInodes(pid int) ([]uint64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []uint64
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
		if err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// socketsOf dumps the namespace's TCP and UDP sockets (IPv4 and IPv6) with
// sock_diag and returns the keys of those the pids have open.
func socketsOf(h *netlink.Handle, pids []int) (sockKeys, error) {
	inodes := map[uint64]bool{}
	for _, p := range pids {
		ins, err := socketInodes(p)
		if err != nil {
			return sockKeys{}, err
		}
		for _, i := range ins {
			inodes[i] = true
		}
	}
	var keys sockKeys
	if len(inodes) == 0 {
		return keys, nil
	}
	type dump struct {
		proto uint8
		fn    func(uint8) ([]*netlink.Socket, error)
	}
	for _, d := range []dump{{unix.IPPROTO_TCP, h.SocketDiagTCP}, {unix.IPPROTO_UDP, h.SocketDiagUDP}} {
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			socks, err := d.fn(fam)
			if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
				return sockKeys{}, fmt.Errorf("dump sockets: %w", err)
			}
			for _, s := range socks {
				if !inodes[uint64(s.INode)] {
					continue
				}
				keys.cookies = append(keys.cookies, uint64(s.ID.Cookie[0])|uint64(s.ID.Cookie[1])<<32)
			}
		}
	}
	return keys, nil
}
