//go:build linux

package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
	"github.com/chadthrottle/chadthrottle/backends/monitor/capture"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/backends/throttle/tc"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/rules"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// copyExe copies a program to a unique path, so a rule on it matches only
// the test's processes.
func copyExe(t *testing.T, src, name string) string {
	t.Helper()
	return bustest.CopyExe(t, src, filepath.Join(t.TempDir(), name))
}

// startProc starts a command and kills it at cleanup.
func startProc(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func cgroupOfPID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "0::"); ok {
			return rest
		}
	}
	t.Fatalf("process %d has no cgroup v2 line: %q", pid, b)
	return ""
}

// waitFor polls cond every 5 ms for up to d and returns how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func newPlacer(t *testing.T, tag string) *cgroupv2.Leaf {
	t.Helper()
	if err := cgroupv2.Probe(); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			testenv.KernelLacks(t, "a writable cgroup v2 mount", err)
		}
		t.Fatal(err)
	}
	p, err := cgroupv2.NewLeaf(backends.Options{Tag: tag})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRealProcessesAndCgroups runs the engine on the real /proc with the
// real cgroup v2 placer (fake throttlers): a rule on an executable reaches
// its running processes at once and new ones (also fork + exec) within a
// second, they land in the app's cgroup, a process limit moves one into a
// cgroup of its own, and Close moves everything back where it was.
func TestRealProcessesAndCgroups(t *testing.T) {
	testenv.RequireRoot(t)
	tag := testenv.UniqueName("eng")
	placer := newPlacer(t, tag)
	up, down := backends.NewFakeUpload(), backends.NewFakeDownload()
	mgr, err := backends.NewManager(up, down, nil, placer)
	if err != nil {
		t.Fatal(err)
	}
	store, err := rules.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		testenv.Skip(t, "needs sleep: %v", err)
	}
	exe := copyExe(t, sleepBin, "ct-sleep-"+tag)
	p1 := startProc(t, exe, "30")
	p2 := startProc(t, exe, "30")
	origin := cgroupOfPID(t, p1.Process.Pid)

	e, err := New(Config{Manager: mgr, Rules: store, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			e.Close()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { cancel(); <-done }) }
	defer stop()

	if err := e.SetAppLimit(admin, exe, 0, api.Limit{Up: 1_000_000, Down: 2_000_000}); err != nil {
		t.Fatal(err)
	}
	id := appTargetID(appKey{0, exe})
	tgt, ok := up.TargetOf(id)
	want := []int{p1.Process.Pid, p2.Process.Pid}
	slices.Sort(want)
	if !ok || !slices.Equal(tgt.PIDs, want) {
		t.Fatalf("target %+v (found %v), want pids %v", tgt, ok, want)
	}
	appCg := strings.TrimPrefix(tgt.Cgroup.Path, placer.Root())
	if want := filepath.Join(origin, placer.ChildName(id)); appCg != want {
		t.Fatalf("app cgroup %q, want %q (a child of the processes' own cgroup)", appCg, want)
	}
	for _, pid := range want {
		if got := cgroupOfPID(t, pid); got != appCg {
			t.Errorf("process %d in cgroup %s, want %s", pid, got, appCg)
		}
	}
	a, ok := func() (api.App, bool) {
		for _, a := range e.Snapshot().Apps {
			if a.Exe == exe {
				return a, true
			}
		}
		return api.App{}, false
	}()
	if !ok || !a.Rule || a.ID != "0:"+exe || a.Name != filepath.Base(exe) {
		t.Errorf("snapshot app = %+v (found %v)", a, ok)
	}

	// New processes: started directly, and by a shell that forks and then
	// execs the program.
	inTarget := func(pid int) func() bool {
		return func() bool {
			tg, _ := up.TargetOf(id)
			return slices.Contains(tg.PIDs, pid)
		}
	}
	p3 := startProc(t, exe, "30")
	took := waitFor(t, time.Second, "new process joins the rule", inTarget(p3.Process.Pid))
	t.Logf("new process targeted after %v", took.Round(time.Millisecond))
	sh := startProc(t, "/bin/sh", "-c", "sleep 0.3; exec "+exe+" 30")
	took = waitFor(t, 1500*time.Millisecond, "fork+exec joins the rule", inTarget(sh.Process.Pid))
	t.Logf("fork+exec process targeted %v after start (0.3 s of it before exec)", took.Round(time.Millisecond))
	if got := cgroupOfPID(t, p3.Process.Pid); got != appCg {
		t.Errorf("new process in cgroup %s, want %s", got, appCg)
	}

	// A process limit takes p2 out of the app.
	if err := e.SetProcessLimit(admin, p2.Process.Pid, 0, api.Limit{Up: 5000}); err != nil {
		t.Fatal(err)
	}
	_, _, _, start, _ := procFS{"/proc"}.stat(p2.Process.Pid)
	pidTgt, ok := up.TargetOf(pidTargetID(p2.Process.Pid, start))
	if !ok || !slices.Equal(pidTgt.PIDs, []int{p2.Process.Pid}) {
		t.Fatalf("process target %+v (found %v)", pidTgt, ok)
	}
	if got := cgroupOfPID(t, p2.Process.Pid); got != strings.TrimPrefix(pidTgt.Cgroup.Path, placer.Root()) {
		t.Errorf("limited process in cgroup %s, want %s", got, pidTgt.Cgroup.Path)
	}
	if tg, _ := up.TargetOf(id); slices.Contains(tg.PIDs, p2.Process.Pid) {
		t.Errorf("app target still holds the process-limited pid: %v", tg.PIDs)
	}

	// All processes of the app exit: the kernel state goes, the rule stays.
	for _, c := range []*exec.Cmd{p1, p3, sh} {
		c.Process.Kill()
		c.Wait()
	}
	waitFor(t, time.Second, "app target removed after its processes exited", func() bool {
		_, ok := up.TargetOf(id)
		return !ok && !slices.Contains(mgr.Targets(), id)
	})
	if _, err := os.Stat(tgt.Cgroup.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("app cgroup %s left after its processes exited: %v", tgt.Cgroup.Path, err)
	}
	if len(e.Rules()) != 1 {
		t.Errorf("rule lost: %v", e.Rules())
	}
	p4 := startProc(t, exe, "30")
	waitFor(t, time.Second, "rule re-applied to a new process", inTarget(p4.Process.Pid))
	execAway(t, e, placer, origin, sleepBin, tag)

	// Close: everything back where it came from.
	stop()
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	for _, pid := range []int{p2.Process.Pid, p4.Process.Pid} {
		if got := cgroupOfPID(t, pid); got != origin {
			t.Errorf("after Close process %d is in %s, want %s", pid, got, origin)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(placer.Root(), origin))
	for _, d := range entries {
		if placer.Ours(d.Name()) {
			t.Errorf("cgroup %s left in %s after Close", d.Name(), origin)
		}
	}
}

// execAway: a process of a ruled app (a copy of sh) that execs another
// program leaves the app's cgroup for the cgroup it came from, while the
// app's other process stays limited.
func execAway(t *testing.T, e *Engine, placer *cgroupv2.Leaf, origin, sleepBin, tag string) {
	t.Helper()
	shExe := copyExe(t, "/bin/sh", "ct-sh-"+tag)
	if err := e.SetAppLimit(admin, shExe, 0, api.Limit{Up: 1_000_000}); err != nil {
		t.Fatal(err)
	}
	stays := startProc(t, shExe, "-c", sleepBin+" 30; exit 0")
	leaves := startProc(t, shExe, "-c", sleepBin+" 0.7; exec "+sleepBin+" 30")
	child := filepath.Join(origin, placer.ChildName(appTargetID(appKey{0, shExe})))
	waitFor(t, 600*time.Millisecond, "both processes of the sh copy in its cgroup", func() bool {
		return cgroupOfPID(t, stays.Process.Pid) == child && cgroupOfPID(t, leaves.Process.Pid) == child
	})
	took := waitFor(t, 3*time.Second, "the process that exec'd sleep back in its own cgroup", func() bool {
		return cgroupOfPID(t, leaves.Process.Pid) == origin
	})
	t.Logf("back %v after start (0.7 s of it before exec)", took.Round(time.Millisecond))
	if got := cgroupOfPID(t, stays.Process.Pid); got != child {
		t.Errorf("the app's other process is in %s, want %s", got, child)
	}
}

// newRealEngine runs an engine with the capture monitor and the tc_htb
// upload backend in a new test bed's local namespace.
func newRealEngine(t *testing.T) (*testenv.Bed, *Engine, backends.UploadThrottleBackend, *backends.Manager, string) {
	t.Helper()
	testenv.RequireRoot(t)
	if tc.HTBUpload == nil || capture.Monitor == nil {
		t.Skip("tc_htb or capture left out of this build by tags")
	}
	bed := testenv.NewBed(t)
	tag := testenv.UniqueName("eng")
	opts := backends.Options{NetNS: testenv.Path(bed.Local), Interfaces: []string{bed.LocalDev}, Tag: tag}
	for _, probe := range []struct {
		name string
		fn   func(backends.Options) error
	}{{"tc_htb", tc.HTBUpload.Probe}, {"capture", capture.Monitor.Probe}} {
		if err := probe.fn(opts); err != nil {
			if errors.Is(err, errors.ErrUnsupported) {
				testenv.KernelLacks(t, probe.name, err)
			}
			t.Fatalf("probe %s: %v", probe.name, err)
		}
	}
	up, err := tc.HTBUpload.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mon, err := capture.Monitor.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := backends.NewManager(up, nil, errors.New("download is not under test"), newPlacer(t, tag))
	if err != nil {
		t.Fatal(err)
	}
	store, err := rules.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Monitor: mon, Manager: mgr, Rules: store, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	return bed, e, up, mgr, tag
}

// TestRealServerLimitedAfterStart: a server that was listening before its
// rule existed accepts a connection afterwards. The connection carries the
// listener's cgroup, not the app's, so only the engine's once-a-second
// FollowSockets brings it under the limit.
func TestRealServerLimitedAfterStart(t *testing.T) {
	bed, e, up, mgr, tag := newRealEngine(t)
	exe := copyExe(t, testenv.Ctload(t), "ct-serve-"+tag)
	srv := bed.Command(bed.Local, exe, "serve", "-mode", "source", "-listen", "[::]:5231")
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.Contains(line, "listening") {
		t.Fatalf("server did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, out)
	const limit = 1_000_000
	if err := e.SetAppLimit(admin, exe, 0, api.Limit{Up: limit}); err != nil {
		t.Fatal(err)
	}
	id := appTargetID(appKey{0, exe})
	waitFor(t, 3*time.Second, "the running server joins the rule", func() bool {
		_, ok := up.Limit(id)
		return ok && slices.Contains(mgr.Targets(), id)
	})
	load := bed.StartClient(bed.Peer, "recv", testenv.LocalIP+":5231", 10*time.Second, 100*time.Millisecond)
	time.Sleep(4 * time.Second)
	samples := load.Samples()
	last := samples[len(samples)-1].T
	got := testenv.RateBetween(samples, last-2, last)
	t.Logf("connection accepted after the rule: %.0f B/s 2–4 s after connecting (limit %d B/s)", got, limit)
	if got < 0.5*limit || got > 1.35*limit {
		t.Errorf("a connection the limited server accepted runs at %.0f B/s under a %d B/s rule (want 0.5–1.35 ×)", got, limit)
	}
}

// TestRealRuleLimitsNewSender is the whole path on the real kernel: the
// capture monitor and the tc_htb upload backend in a test bed's namespace,
// a rule set before its program runs, then a sender started from that
// program. The sender is limited within a second of starting, the engine's
// rates for its app agree with what the sender measured, and removing the
// rule frees it.
func TestRealRuleLimitsNewSender(t *testing.T) {
	bed, e, up, mgr, tag := newRealEngine(t)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	exe := copyExe(t, testenv.Ctload(t), "ct-send-"+tag)
	const limit = 1_000_000 // 1 MB/s
	if err := e.SetAppLimit(admin, exe, 0, api.Limit{Up: limit}); err != nil {
		t.Fatal(err)
	}
	id := appTargetID(appKey{0, exe})
	load := testenv.StartLoad(t, bed.Command(bed.Local, exe, "client", "-mode", "send",
		"-connect", testenv.PeerIP+":5201", "-duration", "14s", "-interval", "100ms"))
	took := waitFor(t, time.Second, "sender joins the rule", func() bool {
		_, ok := up.Limit(id)
		return ok && slices.Contains(mgr.Targets(), id)
	})
	t.Logf("sender limited %v after it started", took.Round(time.Millisecond))

	time.Sleep(6 * time.Second)
	samples := load.Samples()
	last := samples[len(samples)-1].T
	// The sender counts what it writes into its socket: lumpy over short
	// windows, so take the last 4 s.
	limited := testenv.RateBetween(samples, last-4, last)
	var app api.App
	for _, a := range e.Snapshot().Apps {
		if a.Exe == exe {
			app = a
		}
	}
	d, _ := e.AppDetails(app.ID)
	var hist []uint64
	for _, s := range d.History {
		hist = append(hist, s.TxRate)
	}
	t.Logf("limit %d B/s: sender measured %.0f B/s over 4 s; engine app %s tx %d B/s, %d bytes; history %v",
		limit, limited, app.ID, app.TxRate, app.TxBytes, hist[max(0, len(hist)-5):])
	if limited < 0.6*limit || limited > 1.35*limit {
		t.Errorf("sender rate %.0f B/s with a %d B/s rule (want 0.6–1.35 ×)", limited, limit)
	}
	// The engine's own rate for the app (the monitor's view of the same
	// traffic) over its last 3 samples.
	var recent float64
	n := 0
	for _, s := range d.History[max(0, len(d.History)-3):] {
		recent += float64(s.TxRate)
		n++
	}
	if n > 0 {
		recent /= float64(n)
	}
	if recent < 0.7*limit || recent > 1.2*limit {
		t.Errorf("engine tx rate for the app %.0f B/s with a %d B/s rule (want 0.7–1.2 ×)", recent, limit)
	}
	if !slices.Contains(app.PIDs, int32(load.PID)) || !app.Rule {
		t.Errorf("app %+v does not hold the sender %d", app, load.PID)
	}

	if err := e.RemoveAppLimit(admin, exe, 0); err != nil {
		t.Fatal(err)
	}
	t0 := samples[len(samples)-1].T
	time.Sleep(2500 * time.Millisecond)
	free := testenv.RateBetween(load.Samples(), t0+0.5, t0+2.5)
	t.Logf("after RemoveAppLimit: %.0f B/s", free)
	if free < 5*limit {
		t.Errorf("sender still slow after the rule was removed: %.0f B/s", free)
	}
	load.Cmd.Process.Signal(syscall.SIGTERM)
}

// TestExecEventsFromAnotherNetns: the proc connector answers only in the
// initial network namespace; a helper running in another one (as the
// helper's own tests do) still gets exec events.
func TestExecEventsFromAnotherNetns(t *testing.T) {
	testenv.RequireRoot(t)
	ns := testenv.UniqueName("ctw")
	testenv.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { testenv.Output("ip", "netns", "del", ns) })
	got := make(chan int, 1024)
	stop := make(chan struct{})
	defer close(stop)
	err := func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer orig.Close()
		h, err := netns.GetFromPath(testenv.Path(ns))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Fatal(err)
		}
		defer netns.Set(orig)
		if _, err := procnet.WatchProcesses(); err == nil {
			t.Log("the proc connector answered inside a network namespace")
		}
		return watchExecs(func(pid int) {
			select {
			case got <- pid:
			default:
			}
		}, stop)
	}()
	if err != nil {
		t.Fatalf("watchExecs from a non-initial network namespace: %v", err)
	}
	cmd := startProc(t, "/bin/sh", "-c", "exec sleep 5")
	deadline := time.After(3 * time.Second)
	for {
		select {
		case pid := <-got:
			if pid == cmd.Process.Pid {
				return
			}
		case <-deadline:
			t.Fatalf("no exec event for process %d within 3 s", cmd.Process.Pid)
		}
	}
}
