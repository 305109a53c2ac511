//go:build linux

package socktarget_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

const crashEnv = "CHADTHROTTLE_SOCKTARGET_CRASH_CHILD" // "PID NETNS [cgroup]"

// TestMain lets TestHelperKilledLeavesEveryoneInScope run the test binary
// again as a stand-in helper (crashEnv set) that limits a process until it
// is killed.
func TestMain(m *testing.M) {
	if v := os.Getenv(crashEnv); v != "" {
		crashChild(v)
	}
	if v := os.Getenv(clampCrashEnv); v != "" {
		clampCrashChild(v)
	}
	os.Exit(m.Run())
}

func crashChild(arg string) {
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	f := strings.Fields(arg)
	pid, err := strconv.Atoi(f[0])
	if err != nil || len(f) < 2 || len(f) > 3 {
		fail(fmt.Errorf("bad %s %q", crashEnv, arg))
	}
	o := backends.Options{NetNS: f[1], Tag: "crash" + f[0]}
	up, down := pairs[0].up, pairs[0].down
	u, err := up.New(o)
	if err != nil {
		fail(err)
	}
	d, err := down.New(o)
	if err != nil {
		fail(err)
	}
	if len(f) == 3 {
		crashChildCgroup(o, u, d, pid, fail)
	}
	pl := socktarget.NewPlacer(o)
	m, err := backends.NewManager(u, d, nil, pl)
	if err != nil {
		fail(err)
	}
	if err := m.Init(); err != nil {
		fail(err)
	}
	l := backends.Limits{Down: backends.Limit{Rate: 1_000_000}}
	if err := m.Apply(backends.Target{ID: "pid", Kind: backends.TargetProcess, PIDs: []int{pid}}, l); err != nil {
		fail(err)
	}
	if err := m.Apply(backends.Target{ID: "app-sleep", Kind: backends.TargetApp, Exe: "/bin/sleep"}, l); err != nil {
		fail(err)
	}
	for _, id := range pl.Tagger().ProgramIDs() {
		fmt.Println("prog", id)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// TestHelperKilledLeavesEveryoneInScope: a stand-in helper limiting a
// process in a scope (and its children) is killed with SIGKILL: the
// process and its children are still in their scope, the tagger's programs
// are gone, and a new helper limits them again without moving them.
func TestHelperKilledLeavesEveryoneInScope(t *testing.T) {
	requireTagger(t)
	bed, dir, rel, sh := forkingInScope(t)

	child, lines := testenv.StandIn(t, crashEnv, strconv.Itoa(sh.Process.Pid)+" "+testenv.Path(bed.Local))
	var ids []ebpf.ProgramID
	for _, line := range lines {
		var id ebpf.ProgramID
		if _, err := fmt.Sscanf(line, "prog %d", &id); err == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) != 5 { // the tagger's 4 and the receive window clamp (a download limit)
		t.Fatalf("stand-in helper reported programs %v", ids)
	}
	time.Sleep(300 * time.Millisecond) // children are born while limited
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	checkScope(t, dir, rel, sh.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for _, id := range ids {
		for {
			p, err := ebpf.NewProgramFromID(id)
			if err != nil {
				break
			}
			p.Close()
			if time.Now().After(deadline) {
				t.Fatalf("program %d of the killed helper is still loaded", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A new helper limits the same process: nobody moves.
	m, _ := newManager(t, bed, pairs[0])
	if err := m.Apply(backends.Target{ID: "pid", Kind: backends.TargetProcess, PIDs: []int{sh.Process.Pid}},
		backends.Limits{Down: backends.Limit{Rate: 1_000_000}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	checkScope(t, dir, rel, sh.Process.Pid)
	if err := m.Remove("pid"); err != nil {
		t.Fatal(err)
	}
	checkScope(t, dir, rel, sh.Process.Pid)
}

// forkingInScope makes a bed and a scope with a shell in it that forks
// children all the time (killed at cleanup).
func forkingInScope(t *testing.T) (bed *testenv.Bed, dir, rel string, sh *exec.Cmd) {
	t.Helper()
	bed = testenv.NewBed(t)
	dir, rel = scope(t)
	sh = inScope(bed, dir, "sh", "-c", "while :; do sleep 0.1; done")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Process.Kill(); sh.Wait() })
	waitCgroup(t, sh.Process.Pid, rel)
	return bed, dir, rel, sh
}

// checkScope checks that pid and every process in the scope's cgroup are in
// the scope, and that pid is among them.
func checkScope(t *testing.T, dir, rel string, pid int) {
	t.Helper()
	if cg := cgroupOf(pid); cg != rel {
		t.Errorf("process %d is in %q, it started in %q", pid, cg, rel)
	}
	for _, p := range cgroupv2.Procs(dir) {
		if cg := cgroupOf(p); cg != "" && cg != rel {
			t.Errorf("process %d is in %q, not in its scope %q", p, cg, rel)
		}
	}
}
