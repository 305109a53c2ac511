//go:build linux

package socktarget_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/scopetest"
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
			w := scopetest.WatchScope(dir, rel)
			defer w.End(t)

			const limit = 2_000_000
			pid, load := limitByPID(t, bed, m, dir, rel, ctload, limit,
				func(id string) string { return rel + "/" + pl.ChildName(id) }, w.Add)
			backInScope(t, dir, rel, pl, pid, load.PID)
			syscall.Kill(load.PID, syscall.SIGKILL)

			// By app rule: the app's running process (the engine applies
			// a rule to the processes it finds).
			load = testenv.StartLoad(t, inScope(bed, dir, ctload, "client", "-mode", "recv", "-connect", addr, "-duration", "5s", "-interval", "250ms"))
			w.Add(load.PID)
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

// backInScope checks that each live pid is in the scope exactly and that
// none of pl's child cgroups (pl may be nil) is left in it.
func backInScope(t *testing.T, dir, rel string, pl *cgroupv2.Leaf, pids ...int) {
	t.Helper()
	for _, p := range pids {
		if scopetest.Zombie(p) {
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
	w := scopetest.WatchScope(dir, rel)
	w.Add(sh.Process.Pid)
	defer w.End(t)

	pid := strconv.Itoa(sh.Process.Pid)
	// The next helper's placer: the stand-in's tag (crashChild's).
	pl, err := cgroupv2.NewLeaf(backends.Options{Tag: "crash" + pid})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Init() }) // nothing of ours left, even on failure
	child, _ := testenv.StandIn(t, crashEnv, pid+" "+testenv.Path(bed.Local)+" cgroup")
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
	backInScope(t, dir, rel, pl, append(scopetest.SubtreeProcs(dir), sh.Process.Pid)...)
}
