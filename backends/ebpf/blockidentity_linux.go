//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"maps"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// targetIdentity is how the block programs recognise a target, kept to this
// one type (Go) and the block_target_* functions of block.c (BPF) so it can
// be re-pointed when the throttlers change how they find a socket's target.
// Today it is the throttlers' identity: the target's socket tag (sockets
// the socket tagger tagged at creation, backends/kernel/socktarget), the
// target's cgroup (where the placer moves processes instead: sockets made
// there and tasks in it carry it), the
// cgroup's depth below the cgroup2 root (for cgroups the processes made
// below it), and the cookies of the sockets its processes hold (sockets
// made before the processes were placed keep their old cgroup). For an app
// it adds the app's own identity, its executables and uids (blockExeKey),
// which the connect and sendmsg programs read from the calling task: a new
// process of the app is refused before it is placed in the app's cgroup.
type targetIdentity struct {
	tag     uint32          // the socket tag (backends.Target.Tag): sockets tagged at creation
	cgroups map[uint64]bool // every cgroup of the target (a process target's children may sit in several)
	level   int             // the depth of its first cgroup
	cookies map[uint64]bool
	inodes  map[uint64]bool // the socket inodes the cookies were found from
	exes    map[blockExeKey]bool
}

// identityOf reads t's identity now; the sockets are looked up in the
// network namespace at netns ("" = the caller's). prev, when not nil, is
// the identity read last time: with the same open sockets nothing but
// /proc/PID/fd is read.
func identityOf(netns string, t backends.Target, prev *targetIdentity) (targetIdentity, error) {
	id := targetIdentity{tag: t.Tag, cgroups: map[uint64]bool{}, exes: map[blockExeKey]bool{}}
	for i, cg := range t.AllCgroups() {
		if cg.ID == 0 {
			continue
		}
		id.cgroups[cg.ID] = true
		if i == 0 {
			id.level = cgroupLevel(cg.Path)
		}
	}
	if t.Kind == backends.TargetApp {
		id.exes = exeKeysOf(t.PIDs)
		if k, ok := exeKeyOf(t.Exe, t.UID); ok {
			id.exes[k] = true // the program itself, running or not
		}
	}
	id.inodes = procnet.SocketInodesOf(t.PIDs)
	if prev != nil && maps.Equal(prev.inodes, id.inodes) {
		id.cookies = prev.cookies
		return id, nil
	}
	socks, err := procnet.SocketsWith(netns, id.inodes)
	if err != nil {
		return targetIdentity{}, fmt.Errorf("find open sockets of target %s: %w", t.ID, err)
	}
	id.cookies = make(map[uint64]bool, len(socks))
	for _, s := range socks {
		id.cookies[s.Cookie] = true
	}
	return id, nil
}

// exeKeysOf returns the executables and owners of pids as the block
// programs see a task: inode, the kernel's device number, uid.
func exeKeysOf(pids []int) map[blockExeKey]bool {
	keys := map[blockExeKey]bool{}
	for _, pid := range pids {
		var exe, dir unix.Stat_t
		base := "/proc/" + strconv.Itoa(pid)
		if unix.Stat(base+"/exe", &exe) != nil || unix.Stat(base, &dir) != nil {
			continue // gone, or a kernel thread
		}
		keys[exeKey(&exe, dir.Uid)] = true
	}
	return keys
}

// exeKeyOf is the key of program path run by uid ("" or missing: none).
func exeKeyOf(path string, uid uint32) (blockExeKey, bool) {
	var st unix.Stat_t
	if path == "" || unix.Stat(path, &st) != nil {
		return blockExeKey{}, false
	}
	return exeKey(&st, uid), true
}

// exeKey converts a stat's device number to the kernel's dev_t encoding
// (major << 20 | minor), which the programs read from the inode's super
// block.
func exeKey(st *unix.Stat_t, uid uint32) blockExeKey {
	dev := unix.Major(st.Dev)<<20 | unix.Minor(st.Dev)
	return blockExeKey{Ino: st.Ino, Dev: uint32(dev), Uid: uid}
}
