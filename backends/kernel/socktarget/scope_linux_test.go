//go:build linux

package socktarget_test

import (
	"os"
	"os/exec"
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

// scope makes a systemd-like tree of the test's own (testenv.Scope).
func scope(t testing.TB) (abs, rel string) { return scopetest.Scope(t) }

// inScope returns a command that runs name args in the bed's local network
// namespace from inside the cgroup at dir.
func inScope(bed *testenv.Bed, dir, name string, args ...string) *exec.Cmd {
	return scopetest.InCgroup(bed, dir, name, args...)
}

// cgroupOf returns pid's cgroup v2 path; "" once it has exited.
func cgroupOf(pid int) string {
	cg, err := cgroupv2.ProcessCgroup(pid)
	if err != nil {
		return ""
	}
	return cg
}

// TestLimitedProcessesStayInScope: a process limited by pid (and a child it
// forks while limited, also once the parent exited) or by app rule keeps its scope in /proc/PID/cgroup
// the whole time, the limit bites at the receiver (within 10 %), and
// unlimit leaves it where it started; a process that execs another program
// leaves the first program's rule for the second's.
func TestLimitedProcessesStayInScope(t *testing.T) {
	requireTagger(t)
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			bed, m, ctload := sourceBed(t, p)
			dir, rel := scope(t)
			w := scopetest.WatchScope(dir, rel)
			defer w.End(t)

			// By pid: a shell, limited, forks the download afterwards.
			const limit = 2_000_000
			pid, load := limitByPID(t, bed, m, dir, rel, ctload, limit, func(string) string { return rel }, w.Add)
			backInScope(t, dir, rel, nil, pid, load.PID)

			syscall.Kill(load.PID, syscall.SIGKILL) // unlimited now: not to crowd the next part

			// By app rule, before the program starts.
			rid := appRule(t, m, ctload, backends.Limits{Down: backends.Limit{Rate: limit}})
			load = testenv.StartLoad(t, inScope(bed, dir, ctload, "client", "-mode", "recv", "-connect", bed.PeerIP+":5201", "-duration", "5s", "-interval", "250ms"))
			time.Sleep(time.Second)
			checkRate(t, "limited by app rule", load, limit)
			if err := m.Remove(rid); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// limitByPID starts a shell in the scope at dir (rel), limits it by pid
// (download, limit) with m, has it fork a download from the bed's peer
// (port 5201) and checks: the shell and then its child are in want(target
// id) once limited, the limit bites on the child (also after the parent is
// killed), and the child stays in want. Then it removes the limit and
// returns both pids' shell and the child's load. seen (may be nil) is told
// each pid.
func limitByPID(t *testing.T, bed *testenv.Bed, m *backends.Manager, dir, rel, ctload string, limit float64,
	want func(id string) string, seen func(int)) (int, *testenv.Load) {
	t.Helper()
	if seen == nil {
		seen = func(int) {}
	}
	gate := filepath.Join(t.TempDir(), "gate")
	shPID := filepath.Join(t.TempDir(), "pid")
	sh := inScope(bed, dir, "sh", "-c", `echo $$ > "$2"; while [ ! -e "$3" ]; do sleep 0.02; done; "$0" client -mode recv -connect "$1" -duration 7s -interval 250ms`, ctload, bed.PeerIP+":5201", shPID, gate)
	loaded := make(chan *testenv.Load, 1)
	go func() { loaded <- testenv.StartLoad(t, sh) }()
	pid := readPID(t, shPID)
	waitCgroup(t, pid, rel)
	seen(pid)
	id := "pid-" + strconv.Itoa(pid)
	if err := m.Apply(backends.Target{ID: id, Kind: backends.TargetProcess, PIDs: []int{pid}},
		backends.Limits{Down: backends.Limit{Rate: backends.Rate(limit)}}); err != nil {
		t.Fatal(err)
	}
	if cg := cgroupOf(pid); cg != want(id) {
		t.Errorf("limited process %d is in %q, want %q", pid, cg, want(id))
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	load := <-loaded // the child's
	seen(load.PID)
	if load.PID == pid {
		t.Fatalf("the download runs in the limited process %d itself, not in a child", pid)
	}
	if cg := cgroupOf(load.PID); cg != want(id) {
		t.Errorf("child %d born while limited is in %q, want %q", load.PID, cg, want(id))
	}
	time.Sleep(time.Second)
	checkRate(t, "limited by pid", load, limit)
	// The parent exits before unlimit: the child stays limited and in the
	// scope.
	syscall.Kill(pid, syscall.SIGKILL)
	checkRate(t, "child of an exited limited parent", load, limit)
	if cg := cgroupOf(load.PID); cg != want(id) {
		t.Errorf("child %d of an exited limited parent is in %q, not %q", load.PID, cg, want(id))
	}
	if err := m.Remove(id); err != nil {
		t.Fatal(err)
	}
	return pid, load
}

// readPID waits for a pid in file.
func readPID(t *testing.T, file string) int {
	t.Helper()
	for i := 0; i < 500; i++ {
		if b, err := os.ReadFile(file); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", file)
	return 0
}

// waitCgroup waits until pid reports cgroup want.
func waitCgroup(t *testing.T, pid int, want string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if cgroupOf(pid) == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d is in %q, not %q", pid, cgroupOf(pid), want)
}

// checkRate checks the load's rate over the next 2 s against limit
// (receiver side, within 10 %, a second look allowed for a transient: the
// eBPF download policer swings by ±20 % over single seconds here).
func checkRate(t *testing.T, what string, load *testenv.Load, limit float64) {
	t.Helper()
	got := load.RateOver(t, 2*time.Second)
	testenv.Settles(t, what, got, func() float64 { return load.RateOver(t, 2*time.Second) }, limit, 0.85, 1.10)
	t.Logf("%s: %s (limit %s)", what, mb(got), mb(limit))
}
