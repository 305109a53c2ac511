//go:build linux

package procnet

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/chadthrottle/chadthrottle/backends"
)

// ProcRoot is where procfs is mounted.
const ProcRoot = "/proc"

// SocketInodes returns the inodes of the sockets process pid holds open
// (from /proc/PID/fd).
func SocketInodes(pid int) ([]uint64, error) {
	var out []uint64
	err := eachSocketFD(pid, func(inode uint64) { out = append(out, inode) })
	return out, err
}

// eachSocketFD calls fn with the inode of each socket pid holds.
func eachSocketFD(pid int, fn func(inode uint64)) error {
	return EachSocketFD(pid, func(_ int, inode uint64) { fn(inode) })
}

// EachSocketFD calls fn with the descriptor number and inode of each socket
// pid holds (from /proc/PID/fd).
func EachSocketFD(pid int, fn func(fd int, inode uint64)) error {
	if pid <= 0 {
		return fmt.Errorf("read sockets of pid %d: invalid pid", pid)
	}
	dir := ProcRoot + "/" + strconv.Itoa(pid) + "/fd"
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("read sockets of pid %d: %w", pid, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read sockets of pid %d: %w", pid, err)
	}
	buf := make([]byte, 64)
	for _, name := range names {
		n, err := syscall.Readlink(dir+"/"+name, buf)
		if err != nil || n < 10 {
			continue
		}
		l := buf[:n]
		// "socket:[12345]"
		if !bytes.HasPrefix(l, []byte("socket:[")) || l[n-1] != ']' {
			continue
		}
		inode, err := strconv.ParseUint(string(l[8:n-1]), 10, 64)
		fd, err2 := strconv.Atoi(name)
		if err == nil && err2 == nil {
			fn(fd, inode)
		}
	}
	return nil
}

// SocketInodesOf returns the inodes of the sockets any of pids holds open.
// Processes that have gone are skipped.
func SocketInodesOf(pids []int) map[uint64]bool {
	inodes := map[uint64]bool{}
	for _, pid := range pids {
		eachSocketFD(pid, func(inode uint64) { inodes[inode] = true })
	}
	return inodes
}

// SocketsOf returns the TCP and UDP sockets in the namespace at netnsPath
// ("" = the caller's own) that any of pids holds open. Processes that have
// gone are skipped.
func SocketsOf(netnsPath string, pids []int) ([]Socket, error) {
	return SocketsWith(netnsPath, SocketInodesOf(pids))
}

// SocketsWith returns the TCP and UDP sockets in the namespace at netnsPath
// whose inode is in inodes.
func SocketsWith(netnsPath string, inodes map[uint64]bool) ([]Socket, error) {
	if len(inodes) == 0 {
		return nil, nil
	}
	all, err := Dump(netnsPath)
	if err != nil {
		return nil, err
	}
	var out []Socket
	for _, s := range all {
		if s.Inode != 0 && inodes[s.Inode] {
			out = append(out, s)
		}
	}
	return out, nil
}

// PIDs lists the processes in /proc.
func PIDs() ([]int, error) {
	f, err := os.Open(ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := make([]int, 0, len(names))
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// InodeMap maps socket inodes to the process holding them.
type InodeMap map[uint64]int

// ScanInodes builds the socket inode → pid map of every process. When
// several processes share a socket (after fork), the lowest pid wins is not
// promised; any holder is returned.
func ScanInodes() (InodeMap, error) {
	pids, err := PIDs()
	if err != nil {
		return nil, err
	}
	m := InodeMap{}
	for _, pid := range pids {
		m.AddPID(pid)
	}
	return m, nil
}

// AddPID adds pid's sockets to the map and returns how many it holds.
func (m InodeMap) AddPID(pid int) int {
	n := 0
	eachSocketFD(pid, func(inode uint64) {
		if _, ok := m[inode]; !ok {
			m[inode] = pid
		}
		n++
	})
	return n
}

// ReadProcess reads the identity of a live process.
func ReadProcess(pid int) (backends.ProcessInfo, error) {
	info := backends.ProcessInfo{PID: pid}
	base := ProcRoot + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return info, fmt.Errorf("read process %d: %w", pid, err)
	}
	ps, err := ParseStat(stat)
	if err != nil {
		return info, fmt.Errorf("read process %d: %w", pid, err)
	}
	info.Comm, info.PPID, info.StartTime = ps.Comm, ps.PPID, ps.StartTime
	var st syscall.Stat_t
	if err := syscall.Stat(base, &st); err == nil {
		info.UID = st.Uid
	}
	if exe, err := os.Readlink(base + "/exe"); err == nil {
		info.Exe = strings.TrimSuffix(exe, " (deleted)")
	}
	if cmd, err := os.ReadFile(base + "/cmdline"); err == nil && len(cmd) > 0 {
		cmd = bytes.TrimRight(cmd, "\x00")
		for _, a := range bytes.Split(cmd, []byte{0}) {
			info.Cmdline = append(info.Cmdline, string(a))
		}
	}
	if cg, err := os.ReadFile(base + "/cgroup"); err == nil {
		for _, line := range strings.Split(string(cg), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				info.Cgroup = rest
			}
		}
	}
	return info, nil
}

// StartTime returns the start time of pid (clock ticks since boot, stat
// field 22), which with the pid identifies a process across pid reuse.
func StartTime(pid int) (uint64, error) {
	stat, err := os.ReadFile(ProcRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	ps, err := ParseStat(stat)
	if err != nil {
		return 0, fmt.Errorf("read process %d: %w", pid, err)
	}
	return ps.StartTime, nil
}

// NetNSOf returns the inode number of the network namespace process pid is
// in (from /proc/PID/ns/net).
func NetNSOf(pid int) (uint64, error) {
	var buf [64]byte
	n, err := syscall.Readlink(ProcRoot+"/"+strconv.Itoa(pid)+"/ns/net", buf[:])
	if err != nil {
		return 0, fmt.Errorf("read network namespace of pid %d: %w", pid, err)
	}
	l := buf[:n] // "net:[4026531840]"
	if !bytes.HasPrefix(l, []byte("net:[")) || n < 7 || l[n-1] != ']' {
		return 0, fmt.Errorf("read network namespace of pid %d: unexpected %q", pid, l)
	}
	return strconv.ParseUint(string(l[5:n-1]), 10, 64)
}

// NetNSInode returns the inode number of the network namespace at path
// ("" = the caller's own), comparable with NetNSOf.
func NetNSInode(path string) (uint64, error) {
	if path == "" {
		path = "/proc/self/ns/net"
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	return st.Ino, nil
}
