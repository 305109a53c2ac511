package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
)

// EachMap calls fn with every BPF map process pid holds a descriptor of
// (found from its fdinfo; "self" for pid 0), each once, with its name. A
// process that is gone holds none. The map is closed after fn returns.
func EachMap(pid int, fn func(name string, m *ebpf.Map)) {
	dir := "/proc/self/fdinfo"
	if pid > 0 {
		dir = fmt.Sprintf("/proc/%d/fdinfo", pid)
	}
	fds, _ := os.ReadDir(dir)
	seen := map[ebpf.MapID]bool{}
	for _, fd := range fds {
		b, _ := os.ReadFile(filepath.Join(dir, fd.Name()))
		var id ebpf.MapID
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "map_id:"); ok {
				fmt.Sscan(strings.TrimSpace(v), &id)
			}
		}
		if id == 0 || seen[id] {
			continue
		}
		seen[id] = true
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		if info, err := m.Info(); err == nil {
			fn(info.Name, m)
		}
		m.Close()
	}
}
