//go:build linux

package tc

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
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

// livePIDs returns the target's processes that exist: its PIDs and whatever
// runs in its cgroup (children that followed).
func livePIDs(t backends.Target) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	var missing []int
	for _, p := range t.PIDs {
		if p <= 0 {
			return nil, fmt.Errorf("invalid pid %d", p)
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(p)); err != nil {
			missing = append(missing, p)
			continue
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, cg := range t.AllCgroups() {
		for _, p := range cgroupv2.Procs(cg.Path) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 && t.Tag != 0 {
		return nil, nil // sockets are tagged when its processes make them
	}
	if len(out) == 0 && len(t.AllCgroups()) == 0 {
		if len(missing) > 0 {
			return nil, fmt.Errorf("process %d does not exist", missing[0])
		}
		return nil, errors.New("target has no processes and no cgroup")
	}
	if len(out) == 0 && len(missing) > 0 {
		return nil, fmt.Errorf("process %d does not exist", missing[0])
	}
	return out, nil
}
