//go:build linux

package cgroupv2

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// leafFixture is a systemd-like tree of the test's own,
// <cgroup2>/ctleaf-TAG.slice/user-1000.slice/session-{1,2}.scope, with the
// fixture's origin standing in for the slice. Processes start in scope 1.
type leafFixture struct {
	*fixture
	scopes [2]string // absolute paths
}

func newLeafFixture(t *testing.T) *leafFixture {
	t.Helper()
	f := &leafFixture{fixture: newFixture(t)}
	user := filepath.Join(f.origin, "user-1000.slice")
	for i := range f.scopes {
		f.scopes[i] = filepath.Join(user, "session-"+string(rune('1'+i))+".scope")
		if err := os.MkdirAll(f.scopes[i], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range f.scopes {
			drainUp(s) // anything left goes up, the scope is removed
		}
		if err := os.Remove(user); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	return f
}

func (f *leafFixture) leaf(t *testing.T) *Leaf {
	t.Helper()
	p, err := NewLeaf(backends.Options{Tag: f.tag})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return p
}

// startIn runs args (sleep 60 by default) in the cgroup at dir.
func (f *leafFixture) startIn(t *testing.T, dir string, args ...string) int {
	t.Helper()
	pid := f.start(t, args...).Process.Pid
	if err := writeProcs(dir, pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// wantIn checks that pid is in the cgroup at abs.
func (f *leafFixture) wantIn(t *testing.T, what string, pid int, abs string) {
	t.Helper()
	want := f.rel(abs)
	if want == "" {
		want = "/"
	}
	if got := cgroupOfPID(t, pid); got != want {
		t.Errorf("%s: process %d is in %s, want %s", what, pid, got, want)
	}
}

// noChildren checks that no cgroup of p's is left below the fixture.
func (f *leafFixture) noChildren(t *testing.T, p *Leaf) {
	t.Helper()
	filepath.WalkDir(f.origin, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && p.Ours(d.Name()) {
			t.Errorf("cgroup %s is left", path)
		}
		return nil
	})
}

// TestLeafPlaceAndRelease: a process moves into a child of its own scope,
// a child it forks is born there, and Release puts both back in the scope
// exactly and removes the child cgroup.
func TestLeafPlaceAndRelease(t *testing.T) {
	f := newLeafFixture(t)
	p := f.leaf(t)
	pid := f.startIn(t, f.scopes[0])
	cgs, err := p.PlaceCgroups("pid-1", []int{pid})
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(f.scopes[0], p.ChildName("pid-1"))
	if len(cgs) != 1 || cgs[0].Path != child || cgs[0].ID == 0 {
		t.Fatalf("cgroups %+v, want one: %s", cgs, child)
	}
	f.wantIn(t, "placed", pid, child)
	kid := f.forkIn(t, child)
	if err := p.Release("pid-1"); err != nil {
		t.Fatal(err)
	}
	f.wantIn(t, "released", pid, f.scopes[0])
	f.wantIn(t, "released child", kid, f.scopes[0])
	if _, err := os.Stat(child); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("child cgroup %s left after Release (%v)", child, err)
	}
}

// forkIn starts a process that is born in the cgroup at dir (its parent
// moves there first, as a limited process's children are).
func (f *leafFixture) forkIn(t *testing.T, dir string) int {
	t.Helper()
	pid := f.startIn(t, dir)
	f.wantIn(t, "born", pid, dir)
	return pid
}

// TestLeafTwoScopes: an app's processes in two scopes get one child each;
// each goes back to its own scope.
func TestLeafTwoScopes(t *testing.T) {
	f := newLeafFixture(t)
	p := f.leaf(t)
	a, b := f.startIn(t, f.scopes[0]), f.startIn(t, f.scopes[1])
	cgs, err := p.PlaceCgroups("app-x", []int{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(cgs) != 2 {
		t.Fatalf("cgroups %+v, want two", cgs)
	}
	f.wantIn(t, "placed", a, filepath.Join(f.scopes[0], p.ChildName("app-x")))
	f.wantIn(t, "placed", b, filepath.Join(f.scopes[1], p.ChildName("app-x")))
	// b is no longer the app's (it exec'd another program): back up, and
	// its scope's child goes.
	cgs, err = p.PlaceCgroups("app-x", []int{a})
	if err != nil || len(cgs) != 1 {
		t.Fatalf("after dropping %d: cgroups %+v, %v", b, cgs, err)
	}
	f.wantIn(t, "dropped", b, f.scopes[1])
	// a moves to another target: a sibling child, and back to its scope.
	if _, err := p.PlaceCgroups("pid-a", []int{a}); err != nil {
		t.Fatal(err)
	}
	f.wantIn(t, "moved to another target", a, filepath.Join(f.scopes[0], p.ChildName("pid-a")))
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	f.wantIn(t, "after cleanup", a, f.scopes[0])
	f.noChildren(t, p)
}

// TestLeafRootCgroup: a process in the root cgroup (no systemd unit: a
// system without systemd) gets a child of the root and goes back there.
func TestLeafRootCgroup(t *testing.T) {
	f := newLeafFixture(t)
	p := f.leaf(t)
	pid := f.startIn(t, f.root)
	if _, err := p.PlaceCgroups("pid-r", []int{pid}); err != nil {
		t.Fatal(err)
	}
	f.wantIn(t, "placed", pid, filepath.Join(f.root, p.ChildName("pid-r")))
	if err := p.Release("pid-r"); err != nil {
		t.Fatal(err)
	}
	f.wantIn(t, "released", pid, f.root)
	if _, err := os.Stat(filepath.Join(f.root, p.ChildName("pid-r"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("child of the root left: %v", err)
	}
}

// TestLeafCrashRestart: a placer that is gone without releasing (SIGKILL)
// leaves its children; the next one with the same tag moves their
// processes up into the scope and removes them, and leaves another tag's
// children alone.
func TestLeafCrashRestart(t *testing.T) {
	f := newLeafFixture(t)
	p := f.leaf(t)
	a, b := f.startIn(t, f.scopes[0]), f.startIn(t, f.scopes[1])
	if _, err := p.PlaceCgroups("app-x", []int{a}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.PlaceCgroups("pid-b", []int{b}); err != nil {
		t.Fatal(err)
	}
	other, err := NewLeaf(backends.Options{Tag: f.tag + "o"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.startIn(t, f.scopes[0])
	if _, err := other.PlaceCgroups("pid-c", []int{c}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Cleanup() })
	kid := f.forkIn(t, filepath.Join(f.scopes[1], p.ChildName("pid-b")))
	f.leaf(t) // restart: Init
	f.wantIn(t, "after restart", a, f.scopes[0])
	f.wantIn(t, "after restart", b, f.scopes[1])
	f.wantIn(t, "child after restart", kid, f.scopes[1])
	f.noChildren(t, p)
	f.wantIn(t, "another helper's process", c, filepath.Join(f.scopes[0], other.ChildName("pid-c")))
}

// TestLeafRefusesThreaded: a process in a threaded cgroup is refused with
// the reason and not moved anywhere.
func TestLeafRefusesThreaded(t *testing.T) {
	f := newLeafFixture(t)
	p := f.leaf(t)
	thr := filepath.Join(f.scopes[0], "threads")
	if err := os.Mkdir(thr, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(thr, "cgroup.type"), []byte("threaded"), 0); err != nil {
		testenv.Skip(t, "kernel lacks threaded cgroups: %v", err)
	}
	pid := f.startIn(t, thr)
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 50 && len(procs(thr)) > 0; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		os.Remove(thr)
	})
	cgs, err := p.PlaceCgroups("pid-t", []int{pid})
	if err == nil || !strings.Contains(err.Error(), "threaded") || len(cgs) != 0 {
		t.Fatalf("placing a process of a threaded cgroup: %+v, %v", cgs, err)
	}
	t.Logf("refused: %v", err)
	f.wantIn(t, "refused", pid, thr)
	f.noChildren(t, p)
}

// TestLeafBadInput: bad ids and pids leave nothing.
func TestLeafBadInput(t *testing.T) {
	f := newLeafFixture(t)
	p := f.leaf(t)
	if _, err := p.PlaceCgroups("", []int{1}); err == nil {
		t.Error("empty id accepted")
	}
	for _, pids := range [][]int{{-1}, {0}, {1 << 30}} {
		if cgs, err := p.PlaceCgroups("pid-bad", pids); err == nil || len(cgs) != 0 {
			t.Errorf("pids %v: %+v, %v", pids, cgs, err)
		}
	}
	if n := p.ChildName(strings.Repeat("x/", 300)); len(n) > 255 || strings.Contains(n, "/") {
		t.Errorf("child name %q", n)
	}
	f.noChildren(t, p)
}
