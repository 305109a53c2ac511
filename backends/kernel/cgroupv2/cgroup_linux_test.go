//go:build linux

package cgroupv2

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// These tests use the real cgroup2 hierarchy, no network namespace: each
// makes an "origin" cgroup of its own for its processes and a placer with
// a unique tag, and removes both at the end.

type fixture struct {
	root   string
	origin string // cgroup the test's processes start in
	tag    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.RequireRoot(t)
	root, err := Mount()
	if err != nil {
		testenv.Skip(t, "no cgroup2 mount: %v", err)
	}
	f := &fixture{root: root, tag: testenv.UniqueName("cg")}
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
