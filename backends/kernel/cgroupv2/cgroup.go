//go:build linux

// Package cgroupv2 reads the cgroup v2 hierarchy (the mount found in
// /proc/self/mountinfo, a process's cgroup, a cgroup's processes and id)
// and places throttled targets in cgroups where sockets cannot be tagged
// at creation: Leaf moves a limited process into a child cgroup of its own
// cgroup, so it never leaves the unit systemd gave it (docs/placement.md).
package cgroupv2

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Prefix names everything this package creates in the cgroup tree.
const Prefix = "chadthrottle"

// Mount returns the cgroup2 mount point from /proc/self/mountinfo.
func Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options ... - fstype source superopts
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		post := strings.Fields(line[sep+3:])
		pre := strings.Fields(line[:sep])
		if len(post) > 0 && post[0] == "cgroup2" && len(pre) >= 5 {
			return unescape(pre[4]), nil
		}
	}
	return "", backends.Unavailable("no cgroup2 filesystem is mounted (see /proc/self/mountinfo)")
}

func unescape(s string) string {
	// mountinfo escapes space, tab, newline and backslash as \ooo.
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Probe checks that cgroup v2 is mounted and writable.
func Probe() error {
	m, err := Mount()
	if err != nil {
		return err
	}
	if err := syscall.Access(m, 2 /* W_OK */); err != nil {
		return backends.Unavailable("cgroup2 mount %s is not writable: %v", m, err)
	}
	return nil
}

func writeProcs(dir string, pid int) error {
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(strconv.Itoa(pid))
	return err
}

func procs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Procs returns the pids in the cgroup at dir.
func Procs(dir string) []int { return procs(dir) }

func cgroupOf(dir string) (backends.Cgroup, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return backends.Cgroup{}, fmt.Errorf("stat cgroup %s: %w", dir, err)
	}
	return backends.Cgroup{Path: dir, ID: st.Ino}, nil
}

// ID returns the cgroup id of the cgroup directory dir.
func ID(dir string) (uint64, error) {
	cg, err := cgroupOf(dir)
	return cg.ID, err
}

// ProcessCgroup returns the cgroup v2 path of pid relative to the cgroup2
// root ("/user.slice/…"), from /proc/PID/cgroup.
func ProcessCgroup(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no such process: %w", syscall.ESRCH)
		}
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "0::") {
			return strings.TrimSuffix(strings.TrimPrefix(line, "0::"), " (deleted)"), nil
		}
	}
	return "", errors.New("process has no cgroup v2 membership")
}
