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

// Clamps a helper leaves behind. A clamp is a socket option, not a BPF
// object: it stays on the connection when the helper that set it dies, and
// the record of it (rwnd_socks) went with the helper's maps, so a helper
// killed with SIGKILL left its downloads' connections with a window and a
// locked receive buffer sized for the old limit until they closed — even
// after the limit was removed by the next helper, which had no record of
// them. So the record map is pinned in the BPF file system while clamps
// exist; a helper that starts and finds a pin of its tag undoes every
// clamp recorded there (walking all processes' sockets once, bounded) and
// removes the pin; a helper that stops undoes the clamps left on sockets
// its targets' processes no longer list (passed to another process, or a
// process the engine never reported) the same way, then unpins.

// PinRoot is the BPF file system the record map is pinned in: /sys/fs/bpf
// when a bpffs is mounted there (systemd mounts it at boot), else "" (no
// pin: clamps of a killed helper stay until their connections close).
var PinRoot = defaultPinRoot()

// Bounds of a walk over every process's sockets.
const (
	maxRecoverSockets = 1 << 16
	maxRecoverTime    = 5 * time.Second
)

func defaultPinRoot() string {
	const dir = "/sys/fs/bpf"
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Type != unix.BPF_FS_MAGIC {
		return ""
	}
	return dir
}

// pinPath is where tag's record map is pinned ("" = nowhere).
func pinPath(tag string) string {
	if PinRoot == "" {
		return ""
	}
	name := "chadthrottle_rwnd"
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

// recoverClamps undoes the clamps recorded in a pinned record map of tag
// (a helper of that tag was killed while clamps existed) and removes the
// pin. It returns how many it undid.
func recoverClamps(tag string) (int, error) {
	path := pinPath(tag)
	if path == "" {
		return 0, nil
	}
	m, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open the clamp records of a killed helper (%s): %w", path, err)
	}
	defer m.Close()
	n, err := unclampEverywhere(m)
	if uerr := m.Unpin(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("remove %s: %w", path, uerr))
	}
	return n, err
}

// unclampEverywhere undoes every clamp recorded in m, on whichever process
// holds the socket.
func unclampEverywhere(m *ebpf.Map) (int, error) {
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
	return eachClamped(m, others, maxRecoverSockets, time.Now().Add(maxRecoverTime), func(dup int, s *rwndRwndSock) (bool, error) {
		return true, adjustSocket(m, dup, s, 0)
	})
}

// pinRwndLocked pins the record map of a newly loaded clamp.
func (t *Tagger) pinRwndLocked() {
	if path := pinPath(t.tag); path != "" {
		_ = os.Remove(path) // a stale pin recoverClamps could not read
		if err := t.rw.objs.RwndSocks.Pin(path); err != nil {
			t.rw.pinErr = err
		}
	}
}

// RecoveredClamps returns how many receive window clamps of a killed
// helper were undone when this tagger was loaded, and what went wrong.
func (t *Tagger) RecoveredClamps() (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.recovered, t.recoverErr
}
