//go:build linux

package socktarget_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// The same checks as TestLimitedProcessesStayInScope for placement cgroup
// (the fallback where sockets cannot be tagged): a limited process moves
// into a child of its own scope's cgroup, never out of the scope.

// newLeafManager returns an initialised manager with p's throttlers and the
// cgroup (leaf) placer.
func newLeafManager(t testing.TB, bed *testenv.Bed, p pair) (*backends.Manager, *cgroupv2.Leaf) {
	t.Helper()
	testenv.RequireRoot(t)
	var pl *cgroupv2.Leaf
	m := managerWith(t, bed, p, "leaf", func(o backends.Options) backends.Placer {
		var err error
		if pl, err = cgroupv2.NewLeaf(o); err != nil {
			t.Fatal(err)
		}
		return pl
	})
	return m, pl
}

// scopeWatch checks every 50 ms that every process it was told of (and
// every process in the scope's subtree) is in the scope or below it.
type scopeWatch struct {
	mu   sync.Mutex
	pids map[int]bool
	stop chan struct{}
	out  <-chan string
}

func watchScope(dir, rel string) *scopeWatch {
	w := &scopeWatch{pids: map[int]bool{}, stop: make(chan struct{})}
	w.out = watchCgroup(rel, func() []int {
		w.mu.Lock()
		defer w.mu.Unlock()
		out := subtreeProcs(dir)
		for p := range w.pids {
			out = append(out, p)
		}
		return out
	}, w.stop)
	return w
}

func (w *scopeWatch) add(pid int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pids[pid] = true
}

// end stops the watch and fails the test if anyone left the scope.
func (w *scopeWatch) end(t *testing.T) {
	t.Helper()
	close(w.stop)
	if msg, ok := <-w.out; ok {
		t.Errorf("left its scope: %s", msg)
	}
}

// subtreeProcs returns the processes in the cgroup at dir and below it.
func subtreeProcs(dir string) []int {
	var out []int
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			out = append(out, cgroupv2.Procs(path)...)
		}
		return nil
	})
	return out
}

// TestCgroupPlacementKeepsScope: in placement cgroup a process limited by
// pid (and a child it forks while limited, also once the parent exited) or
// by app rule is in a child of its scope the whole time (polled every
// 50 ms), the limit bites at the receiver (within 10 %), and unlimit puts
// it back in the scope exactly and removes the child cgroup.
func TestCgroupPlacementKeepsScope(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			bed := testenv.NewBed(t)
			dir, rel := scope(t) // before the manager: its cleanup runs after the manager's
			m, pl := newLeafManager(t, bed, p)
			bed.StartServer(bed.Peer, "source", "[::]:5201", false)
			addr := bed.PeerIP + ":5201"
			ctload := copyExe(t, testenv.Ctload(t))
			w := watchScope(dir, rel)
			defer w.end(t)

			const limit = 2_000_000
			pid, load := limitByPID(t, bed, m, dir, rel, ctload, limit,
				func(id string) string { return rel + "/" + pl.ChildName(id) }, w.add)
			backInScope(t, dir, rel, pl, pid, load.PID)
			syscall.Kill(load.PID, syscall.SIGKILL)

			// By app rule: the app's running process (the engine applies
			// a rule to the processes it finds).
			load = testenv.StartLoad(t, inScope(bed, dir, ctload, "client", "-mode", "recv", "-connect", addr, "-duration", "5s", "-interval", "250ms"))
			w.add(load.PID)
			waitCgroup(t, load.PID, rel)
			rid := "app-" + filepath.Base(ctload)
			if err := m.Apply(backends.Target{ID: rid, Kind: backends.TargetApp, Exe: ctload, PIDs: []int{load.PID}},
				backends.Limits{Down: backends.Limit{Rate: limit}}); err != nil {
				t.Fatal(err)
			}
			if cg := cgroupOf(load.PID); cg != rel+"/"+pl.ChildName(rid) {
				t.Errorf("app process %d is in %q, want a child of %q", load.PID, cg, rel)
			}
			time.Sleep(time.Second)
			checkRate(t, "limited by app rule", load, limit)
			if err := m.Remove(rid); err != nil {
				t.Fatal(err)
			}
			backInScope(t, dir, rel, pl, load.PID)
		})
	}
}

// zombie reports whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// backInScope checks that each live pid is in the scope exactly and that
// none of pl's child cgroups (pl may be nil) is left in it.
func backInScope(t *testing.T, dir, rel string, pl *cgroupv2.Leaf, pids ...int) {
	t.Helper()
	for _, p := range pids {
		if zombie(p) {
			continue // exited, not yet reaped: it keeps the cgroup it died in
		}
		if cg := cgroupOf(p); cg != "" && cg != rel {
			t.Errorf("after unlimit process %d is in %s, it started in %s", p, cg, rel)
		}
	}
	if pl == nil {
		return
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && pl.Ours(d.Name()) {
			t.Errorf("cgroup %s is left after unlimit", strings.TrimPrefix(path, dir))
		}
		return nil
	})
}

// crashChildCgroup is the stand-in helper in placement cgroup: it limits
// pid until it is killed.
func crashChildCgroup(o backends.Options, u backends.UploadThrottleBackend, d backends.DownloadThrottleBackend, pid int, fail func(error)) {
	pl, err := cgroupv2.NewLeaf(o)
	if err != nil {
		fail(err)
	}
	m, err := backends.NewManager(u, d, nil, pl)
	if err != nil {
		fail(err)
	}
	if err := m.Init(); err != nil {
		fail(err)
	}
	if err := m.Apply(backends.Target{ID: "pid", Kind: backends.TargetProcess, PIDs: []int{pid}},
		backends.Limits{Down: backends.Limit{Rate: 1_000_000}}); err != nil {
		fail(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// TestHelperKilledCgroupPlacement: a stand-in helper in placement cgroup,
// limiting a process in a scope that forks children while limited, is
// killed with SIGKILL: everyone is still inside the scope (in the child
// cgroup); the next start with the same tag moves them back into the scope
// exactly and leaves no cgroup of ours.
func TestHelperKilledCgroupPlacement(t *testing.T) {
	testenv.RequireRoot(t)
	bed, dir, rel, sh := forkingInScope(t)
	w := watchScope(dir, rel)
	w.add(sh.Process.Pid)
	defer w.end(t)

	pid := strconv.Itoa(sh.Process.Pid)
	child, sc := startStandIn(t, pid+" "+testenv.Path(bed.Local)+" cgroup")
	// The next helper's placer: the stand-in's tag (crashChild's).
	pl, err := cgroupv2.NewLeaf(backends.Options{Tag: "crash" + pid})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Init() }) // nothing of ours left, even on failure
	for sc.Scan() && sc.Text() != "ready" {
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatalf("stand-in helper: %s", sc.Text())
		}
	}
	if cg := cgroupOf(sh.Process.Pid); cg != rel+"/"+pl.ChildName("pid") {
		t.Errorf("limited process is in %q, want a child of %q", cg, rel)
	}
	time.Sleep(300 * time.Millisecond) // children are born while limited
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	time.Sleep(100 * time.Millisecond) // the watch looks at everyone once more
	if err := pl.Init(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	backInScope(t, dir, rel, pl, append(subtreeProcs(dir), sh.Process.Pid)...)
}
