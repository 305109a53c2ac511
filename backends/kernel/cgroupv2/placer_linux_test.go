//go:build linux

package cgroupv2

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// These tests use the real cgroup2 hierarchy, no network namespace: each
// makes an "origin" cgroup of its own for its processes and a placer with
// a unique tag, and removes both at the end.

type fixture struct {
	root   string
	origin string // cgroup the test's processes start in
	runDir string
	tag    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.RequireRoot(t)
	root, err := Mount()
	if err != nil {
		testenv.Skip(t, "no cgroup2 mount: %v", err)
	}
	f := &fixture{root: root, tag: testenv.UniqueName("cg"), runDir: t.TempDir()}
	f.origin = filepath.Join(root, "ctorigin-"+f.tag)
	if err := os.Mkdir(f.origin, 0o755); err != nil {
		t.Fatalf("create origin cgroup: %v", err)
	}
	t.Cleanup(func() {
		// Whatever is left in the origin goes back to the root first.
		for _, p := range Procs(f.origin) {
			writeProcs(root, p)
		}
		if err := os.Remove(f.origin); err != nil {
			t.Errorf("remove origin cgroup: %v", err)
		}
	})
	return f
}

func (f *fixture) placer(t *testing.T) *Placer {
	t.Helper()
	p, err := New(backends.Options{Tag: f.tag}, f.runDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return p
}

// start runs a process (sleep by default) in the origin cgroup; it is
// killed at the end.
func (f *fixture) start(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if len(args) == 0 {
		args = []string{"sleep", "60"}
	}
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := writeProcs(f.origin, cmd.Process.Pid); err != nil {
		t.Fatalf("move into origin: %v", err)
	}
	return cmd
}

func (f *fixture) rel(abs string) string { return strings.TrimPrefix(abs, f.root) }

func cgroupOfPID(t *testing.T, pid int) string {
	t.Helper()
	cg, err := ProcessCgroup(pid)
	if err != nil {
		t.Fatalf("cgroup of %d: %v", pid, err)
	}
	return cg
}

func TestMountIsCgroup2(t *testing.T) {
	f := newFixture(t)
	var st unix.Statfs_t
	if err := unix.Statfs(f.root, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Fatalf("%s has filesystem magic %#x, not cgroup2", f.root, st.Type)
	}
	if err := Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
}

func TestPlaceAndRelease(t *testing.T) {
	f := newFixture(t)
	p := f.placer(t)
	t.Cleanup(func() { p.Cleanup() })
	a := f.start(t)
	b := f.start(t)
	cg, err := p.Place("app-1000-sleep", []int{a.Process.Pid, b.Process.Pid})
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	if want := filepath.Join(p.Dir(), "app-1000-sleep"); cg.Path != want {
		t.Errorf("cgroup path %s; want %s", cg.Path, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(cg.Path, &st); err != nil || st.Ino != cg.ID {
		t.Errorf("cgroup id %d; the directory's inode is %d (%v)", cg.ID, st.Ino, err)
	}
	for _, c := range []*exec.Cmd{a, b} {
		if got := cgroupOfPID(t, c.Process.Pid); got != f.rel(cg.Path) {
			t.Errorf("process %d is in %s; want %s", c.Process.Pid, got, f.rel(cg.Path))
		}
	}
	// Idempotent.
	if cg2, err := p.Place("app-1000-sleep", []int{a.Process.Pid}); err != nil || cg2 != cg {
		t.Errorf("second Place = %+v, %v; want %+v", cg2, err, cg)
	}
	if err := p.Release("app-1000-sleep"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	for _, c := range []*exec.Cmd{a, b} {
		if got := cgroupOfPID(t, c.Process.Pid); got != f.rel(f.origin) {
			t.Errorf("after Release process %d is in %s; want its origin %s", c.Process.Pid, got, f.rel(f.origin))
		}
	}
	if _, err := os.Stat(cg.Path); !os.IsNotExist(err) {
		t.Errorf("target cgroup still exists after Release (%v)", err)
	}
	if err := p.Release("never-placed"); err != nil {
		t.Errorf("Release of an unknown target: %v", err)
	}
}

// TestChildrenFollowAndGoBack: a child forked inside the target cgroup is
// in it too, and goes back with its parent.
func TestChildrenFollowAndGoBack(t *testing.T) {
	f := newFixture(t)
	p := f.placer(t)
	t.Cleanup(func() { p.Cleanup() })
	flag := filepath.Join(t.TempDir(), "go")
	sh := f.start(t, "sh", "-c", "while [ ! -e "+flag+" ]; do sleep 0.05; done; sleep 60 & wait")
	cg, err := p.Place("pid-sh", []int{sh.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil { // now the shell forks
		t.Fatal(err)
	}
	var child int
	for i := 0; i < 50 && child == 0; i++ {
		time.Sleep(50 * time.Millisecond)
		for _, q := range Procs(cg.Path) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(q), "cmdline"))
			if q != sh.Process.Pid && string(cmdline) == "sleep\x0060\x00" {
				child = q // the long sleep, not one of the loop's short ones
			}
		}
	}
	if child == 0 {
		t.Fatal("the child forked after Place is not in the target's cgroup")
	}
	if err := p.Release("pid-sh"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	for _, q := range []int{sh.Process.Pid, child} {
		if got := cgroupOfPID(t, q); got != f.rel(f.origin) {
			t.Errorf("after Release process %d is in %s; want %s", q, got, f.rel(f.origin))
		}
	}
}

// TestMoveBetweenTargetsKeepsOrigin: a process moved from one target to
// another still goes back to where it was before either.
func TestMoveBetweenTargetsKeepsOrigin(t *testing.T) {
	f := newFixture(t)
	p := f.placer(t)
	t.Cleanup(func() { p.Cleanup() })
	a := f.start(t)
	if _, err := p.Place("pid-a", []int{a.Process.Pid}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Place("app-a", []int{a.Process.Pid}); err != nil {
		t.Fatal(err)
	}
	if err := p.Release("app-a"); err != nil {
		t.Fatal(err)
	}
	if got := cgroupOfPID(t, a.Process.Pid); got != f.rel(f.origin) {
		t.Errorf("process is in %s; want its first origin %s", got, f.rel(f.origin))
	}
}

// TestCrashedPlacerReconciled: a placer that dies without Cleanup leaves
// processes in its cgroups; the next placer's Init moves them back to the
// recorded origin and removes the cgroups.
func TestCrashedPlacerReconciled(t *testing.T) {
	f := newFixture(t)
	dead := f.placer(t)
	a := f.start(t)
	cg, err := dead.Place("pid-a", []int{a.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	// dead is dropped here without Cleanup.
	fresh := f.placer(t)
	t.Cleanup(func() { fresh.Cleanup() })
	if got := cgroupOfPID(t, a.Process.Pid); got != f.rel(f.origin) {
		t.Errorf("after reconcile the process is in %s; want %s", got, f.rel(f.origin))
	}
	if _, err := os.Stat(cg.Path); !os.IsNotExist(err) {
		t.Errorf("leftover target cgroup %s still exists (%v)", cg.Path, err)
	}
}

// TestOriginGoneFallsBack: when the origin cgroup disappeared meanwhile,
// Release puts the process in the placer's parent instead of failing.
func TestOriginGoneFallsBack(t *testing.T) {
	f := newFixture(t)
	p := f.placer(t)
	t.Cleanup(func() { p.Cleanup() })
	tmp := filepath.Join(f.origin, "short-lived")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	a := f.start(t)
	if err := writeProcs(tmp, a.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Place("pid-a", []int{a.Process.Pid}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	if err := p.Release("pid-a"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got := cgroupOfPID(t, a.Process.Pid); got != "/" && got != f.rel(p.parent) {
		t.Errorf("process is in %s; want the placer's parent %s", got, f.rel(p.parent))
	}
}

// TestBadInputLeavesNothing: an empty id or only dead pids are errors and
// leave no cgroup behind; ids cannot escape the subtree.
func TestBadInputLeavesNothing(t *testing.T) {
	f := newFixture(t)
	p := f.placer(t)
	t.Cleanup(func() { p.Cleanup() })
	if _, err := p.Place("", []int{os.Getpid()}); err == nil {
		t.Error("Place with an empty id succeeded")
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Place("pid-gone", []int{gone.Process.Pid}); err == nil {
		t.Error("Place of a pid that does not exist succeeded")
	}
	if _, err := os.Stat(filepath.Join(p.Dir(), "pid-gone")); !os.IsNotExist(err) {
		t.Errorf("a failed Place left its cgroup behind (%v)", err)
	}
	for _, id := range []string{"../escape", "a/b", "..", "."} {
		cg, err := p.Place(id, nil)
		if err != nil {
			t.Errorf("Place(%q): %v", id, err)
			continue
		}
		if filepath.Dir(cg.Path) != p.Dir() {
			t.Errorf("Place(%q) made %s, outside %s", id, cg.Path, p.Dir())
		}
		if err := p.Release(id); err != nil {
			t.Errorf("Release(%q): %v", id, err)
		}
	}
}

func TestCleanupRemovesSubtree(t *testing.T) {
	f := newFixture(t)
	p := f.placer(t)
	a := f.start(t)
	if _, err := p.Place("pid-a", []int{a.Process.Pid}); err != nil {
		t.Fatal(err)
	}
	if err := p.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := os.Stat(p.Dir()); !os.IsNotExist(err) {
		t.Errorf("subtree %s still exists (%v)", p.Dir(), err)
	}
	if got := cgroupOfPID(t, a.Process.Pid); got != f.rel(f.origin) {
		t.Errorf("after Cleanup the process is in %s; want %s", got, f.rel(f.origin))
	}
	if err := p.Cleanup(); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}
