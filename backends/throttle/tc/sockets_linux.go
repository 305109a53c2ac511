//go:build linux

package tc

import (
	"fmt"

	"github.com/chadthrottle/chadthrottle/backends/procnet"
)

// sockKeys are the classifier map keys of a target's open sockets.
type sockKeys struct {
	inodes  map[uint64]bool // the sockets the target's processes held
	cookies []uint64        // their cookies (sock_diag generates them if needed)
}

// socketsOf returns the cookies of the TCP and UDP sockets (IPv4 and IPv6)
// in d's namespace that pids hold open (/proc/PID/fd inodes matched against
// a sock_diag dump). A process that exits meanwhile is skipped.
func socketsOf(d *procnet.Diag, pids []int) (sockKeys, error) {
	keys := sockKeys{inodes: procnet.SocketInodesOf(pids)}
	if len(keys.inodes) == 0 {
		return keys, nil
	}
	socks, err := d.Dump()
	if err != nil {
		return sockKeys{}, fmt.Errorf("dump sockets: %w", err)
	}
	for _, s := range socks {
		if s.Inode != 0 && keys.inodes[s.Inode] {
			keys.cookies = append(keys.cookies, s.Cookie)
		}
	}
	return keys, nil
}
