//go:build linux

package tc

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/chadthrottle/chadthrottle/backends/procnet"
)

// sockKeys are the classifier map keys of a target's open sockets.
type sockKeys struct {
	cookies []uint64 // socket cookies (sock_diag generates them if needed)
}

// socketsOf returns the cookies of the TCP and UDP sockets (IPv4 and IPv6)
// in d's namespace that pids hold open (/proc/PID/fd inodes matched against
// a sock_diag dump). A process that exits meanwhile is skipped.
func socketsOf(d *procnet.Diag, pids []int) (sockKeys, error) {
	inodes := map[uint64]bool{}
	for _, p := range pids {
		ins, err := procnet.SocketInodes(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // exited since we listed it
		}
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
	socks, err := d.Dump()
	if err != nil {
		return sockKeys{}, fmt.Errorf("dump sockets: %w", err)
	}
	for _, s := range socks {
		if s.Inode != 0 && inodes[s.Inode] {
			keys.cookies = append(keys.cookies, s.Cookie)
		}
	}
	return keys, nil
}
