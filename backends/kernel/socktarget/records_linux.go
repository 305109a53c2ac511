//go:build linux

package socktarget

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// Settings a helper leaves on sockets. A receive window clamp (rwnd.c) or
// a pacing rate (ebpf_cgroup upload) is a socket option, not a BPF object:
// it stays on the connection when the helper that set it dies, and the
// record of it (a socket storage map) would go with the helper, so a
// helper killed with SIGKILL left connections clamped or paced for the old
// limit until they closed — even after the next helper removed the limit,
// having no record of them. So each record map is pinned in the BPF file
// system while it exists; a helper that starts and finds a pin undoes every
// setting recorded there (walking all processes' sockets once, bounded)
// and removes the pin; a helper that stops undoes what is still recorded
// (sockets passed to a process no target listed) the same way and unpins.

// PinRoot is the BPF file system record maps are pinned in: /sys/fs/bpf
// when a bpffs is mounted there (systemd mounts it at boot), else "" (no
// pin: a killed helper's settings stay until their connections close).
var PinRoot = defaultPinRoot()

// Bounds of a walk over every process's sockets.
const (
	maxRecoverSockets = 1 << 16
	maxRecoverTime    = 5 * time.Second
)

// Undo undoes what the socket dup (a copy of some process's descriptor)
// got, when m records something for it, and says whether it did.
type Undo func(m *ebpf.Map, dup int) (bool, error)

func defaultPinRoot() string {
	const dir = "/sys/fs/bpf"
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Type != unix.BPF_FS_MAGIC {
		return ""
	}
	return dir
}

// PinPath is where the record map name of instance tag is pinned ("" =
// nowhere).
func PinPath(name, tag string) string {
	if PinRoot == "" {
		return ""
	}
	name = "chadthrottle_" + name
	if tag != "" {
		name += "_" + strings.Map(func(r rune) rune {
			if r == '/' || r == '.' {
				return '_'
			}
			return r
		}, tag)
	}
	return filepath.Join(PinRoot, name)
}

// Pin pins m at PinPath(name, tag), replacing a stale pin; it does
// nothing without a PinRoot.
func Pin(m *ebpf.Map, name, tag string) error {
	path := PinPath(name, tag)
	if path == "" {
		return nil
	}
	_ = os.Remove(path) // one Recover could not read
	return m.Pin(path)
}

// Release undoes every setting still recorded in m (on sockets no target
// listed any more) and removes m's pin, if it has one; the caller closes
// m.
func Release(m *ebpf.Map, undo Undo) error {
	_, err := UndoEverywhere(m, undo)
	if uerr := m.Unpin(); uerr != nil { // nothing to do when not pinned
		err = errors.Join(err, fmt.Errorf("unpin %v: %w", m, uerr))
	}
	return err
}

// Recover undoes every setting recorded in the pinned record map name of
// instance tag (a helper was killed while settings existed) and removes
// the pin. It returns how many sockets it undid.
func Recover(name, tag string, undo Undo) (int, error) {
	path := PinPath(name, tag)
	if path == "" {
		return 0, nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); errors.Is(err, unix.ENOENT) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("look at %s: %w", path, err)
	} else if st.Uid != 0 {
		// Only root pins there; anything else is not the helper's record.
		return 0, fmt.Errorf("%s is owned by uid %d, not root: not the helper's records", path, st.Uid)
	}
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return 0, fmt.Errorf("open what a killed helper set (%s): %w", path, err)
	}
	defer m.Close()
	if m.Type() != ebpf.SkStorage { // a record is socket storage, looked up by descriptor
		return 0, fmt.Errorf("%s is a %v map, not the helper's socket records", path, m.Type())
	}
	n, err := UndoEverywhere(m, undo)
	if uerr := m.Unpin(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("remove %s: %w", path, uerr))
	}
	return n, err
}

// UndoEverywhere calls undo with a copy of every socket every other
// process holds (bounded), and returns how many it undid.
func UndoEverywhere(m *ebpf.Map, undo Undo) (int, error) {
	pids, err := procnet.PIDs()
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	others := pids[:0]
	for _, p := range pids {
		if p != self {
			others = append(others, p)
		}
	}
	return eachSocket(others, maxRecoverSockets, time.Now().Add(maxRecoverTime), func(dup int) (bool, error) {
		return undo(m, dup)
	})
}

// eachSocket calls fn with a copy of each socket held by pids, looking at
// most limit sockets and (unless deadline is zero) stopping at deadline;
// it returns how many calls fn counted (true).
func eachSocket(pids []int, limit int, deadline time.Time, fn func(dup int) (bool, error)) (int, error) {
	seen := map[uint64]bool{}
	n := 0
	var errs []error
	for _, pid := range pids {
		if len(seen) >= limit || (!deadline.IsZero() && time.Now().After(deadline)) {
			errs = append(errs, fmt.Errorf("stopped after %d sockets", len(seen)))
			break
		}
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		_ = procnet.EachSocketFD(pid, func(fd int, ino uint64) {
			if seen[ino] || len(seen) >= limit {
				return
			}
			seen[ino] = true
			dup, err := unix.PidfdGetfd(pidfd, fd, 0)
			if err != nil {
				return // closed meanwhile
			}
			defer unix.Close(dup)
			counted, err := fn(dup)
			if err != nil {
				errs = append(errs, fmt.Errorf("socket %d of pid %d: %w", fd, pid, err))
				return
			}
			if counted {
				n++
			}
		})
		unix.Close(pidfd)
	}
	return n, errors.Join(errs...)
}
