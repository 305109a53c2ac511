//go:build linux

// Package scopetest makes systemd-like cgroup trees for tests and watches
// that processes stay inside them.
package scopetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// Scope makes a systemd-like cgroup tree of the test's own,
// <cgroup2>/testN.slice/user-1000.slice/session-1.scope, and returns the
// scope's absolute path and its path relative to the cgroup2 root (as
// /proc/PID/cgroup names it). At cleanup, processes left anywhere in the
// tree are killed and the tree is removed. Make it before whatever may
// leave cgroups in it (a placer), so its cleanup runs after theirs.
func Scope(t testing.TB) (abs, rel string) {
	t.Helper()
	testenv.RequireRoot(t)
	root, err := cgroupv2.Mount()
	if err != nil {
		t.Fatal(err)
	}
	slice := filepath.Join(root, testenv.UniqueName("test")+".slice")
	abs = filepath.Join(slice, "user-1000.slice", "session-1.scope")
	if err := os.MkdirAll(abs, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var dirs []string
		filepath.WalkDir(slice, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := 0; i < 50; i++ {
			left := false
			for _, d := range dirs {
				for _, p := range cgroupv2.Procs(d) {
					syscall.Kill(p, syscall.SIGKILL)
					left = true
				}
			}
			if !left {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		for i := len(dirs) - 1; i >= 0; i-- { // deepest first
			if err := os.Remove(dirs[i]); err != nil {
				t.Errorf("remove test cgroup: %v", err)
			}
		}
	})
	return abs, strings.TrimPrefix(abs, root)
}

// InCgroup returns a command that runs name args in the bed's local
// network namespace from inside the cgroup at dir.
func InCgroup(bed *testenv.Bed, dir, name string, args ...string) *exec.Cmd {
	sh := `d=$0 n=$1; shift; echo $$ > "$d/cgroup.procs" && exec nsenter --net="$n" -- "$@"`
	return exec.Command("sh", append([]string{"-c", sh, dir, testenv.Path(bed.Local), name}, args...)...)
}

// ScopeWatch checks every 50 ms that every process it was told of (Add)
// and every process in a scope's subtree is in the scope or below it.
type ScopeWatch struct {
	mu   sync.Mutex
	pids map[int]bool
	stop chan struct{}
	out  chan string
}

// WatchScope starts watching the scope at dir (rel, as /proc/PID/cgroup
// names it) until End.
func WatchScope(dir, rel string) *ScopeWatch {
	w := &ScopeWatch{pids: map[int]bool{}, stop: make(chan struct{}), out: make(chan string, 1)}
	go func() {
		defer close(w.out)
		for {
			for _, p := range w.all(dir) {
				cg, err := cgroupv2.ProcessCgroup(p)
				if err == nil && cg != rel && !strings.HasPrefix(cg, rel+"/") && !Zombie(p) {
					w.out <- "process " + strconv.Itoa(p) + " moved to " + cg
					return
				}
			}
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *ScopeWatch) all(dir string) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := SubtreeProcs(dir)
	for p := range w.pids {
		out = append(out, p)
	}
	return out
}

// Add has the watch follow pid wherever it goes.
func (w *ScopeWatch) Add(pid int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pids[pid] = true
}

// End stops the watch and fails the test if anyone left the scope.
func (w *ScopeWatch) End(t testing.TB) {
	t.Helper()
	close(w.stop)
	if msg, ok := <-w.out; ok {
		t.Errorf("left its scope: %s", msg)
	}
}

// SubtreeProcs returns the processes in the cgroup at dir and below it.
func SubtreeProcs(dir string) []int {
	var out []int
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			out = append(out, cgroupv2.Procs(path)...)
		}
		return nil
	})
	return out
}

// Zombie reports whether pid has exited and waits to be reaped (it keeps
// the cgroup it died in).
func Zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}
