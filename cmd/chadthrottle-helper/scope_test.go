//go:build linux

package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/scopetest"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// The real helper in placement cgroup, its processes in a systemd-like
// scope (…/testN.slice/user-1000.slice/session-1.scope): a sender and a
// shell that forks all the time, limited by pid over the bus, stay in the
// scope (a child cgroup of it) the whole time, checked every 50 ms; the
// limit bites; the helper killed with SIGKILL mid-limit leaves them in the
// scope, and its next start puts them back exactly and leaves no cgroup of
// its own; unlimit after a limit again puts them back too. With the
// backends auto picks (ebpf_cgroup) and with tc.
func TestRealHelperCgroupPlacementKeepsScope(t *testing.T) {
	testenv.RequireRoot(t)
	for _, v := range []struct {
		name  string
		extra []string
	}{
		{"auto", nil},
		{"tc", []string{"--upload", "tc_htb", "--download", "ifb_tc"}},
	} {
		t.Run(v.name, func(t *testing.T) { cgroupPlacementKeepsScope(t, v.extra) })
	}
}

func cgroupPlacementKeepsScope(t *testing.T, extra []string) {
	bed := testenv.NewBed(t)
	dir, rel := scopetest.Scope(t) // before the helper: cleaned up after it
	bus := bustest.StartBus(t)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	in := realInstance(t, bus, bed, append([]string{"--placement", "cgroup"}, extra...)...)
	load := testenv.StartLoad(t, scopetest.InCgroup(bed, dir, testenv.Ctload(t), "client", "-mode", "send",
		"-connect", bed.PeerIP+":5201", "-duration", "40s", "-interval", "200ms"))
	sh := scopetest.InCgroup(bed, dir, "sh", "-c", "while :; do sleep 0.1; done")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Process.Kill(); sh.Wait() })
	pids := []int{load.PID, sh.Process.Pid}
	for _, p := range pids {
		waitIn(t, p, rel, 2*time.Second)
	}
	w := scopetest.WatchScope(dir, rel)
	for _, p := range pids {
		w.Add(p)
	}
	defer w.End(t)

	h, c := in.startClient(t)
	ctx := context.Background()
	wantPlacement(t, c, cgroupv2.LeafMode)
	const limit = 1_000_000
	for _, p := range pids {
		if err := c.SetProcessLimit(ctx, int32(p), api.Limit{Up: limit}); err != nil {
			t.Fatalf("SetProcessLimit %d: %v", p, err)
		}
		if cg := cgroupOf(t, p); !strings.HasPrefix(cg, rel+"/"+cgroupv2.Prefix+"-") {
			t.Errorf("limited process %d is in %s, want a child of %s", p, cg, rel)
		}
	}
	tcp := testenv.NewTCPCounter(t, bed.Local)
	time.Sleep(time.Second)
	got := tcp.Rate(t, true, 3*time.Second, load.PID)
	testenv.Settles(t, "limited upload in placement cgroup", got, func() float64 {
		return tcp.Rate(t, true, 3*time.Second, load.PID)
	}, limit, 0.75, 1.15)
	t.Logf("limited to %d B/s: %.0f B/s (%.3f)", limit, got, got/limit)

	// SIGKILL mid-limit: still in the scope; the next start puts everyone
	// back exactly (process limits do not persist) and leaves nothing.
	h.stop(t, syscall.SIGKILL)
	h = in.start(t)
	for _, p := range append(pids, scopetest.SubtreeProcs(dir)...) {
		waitIn(t, p, rel, 3*time.Second)
	}
	if k := readKernelState(t, bed, in); len(k.Cgroups) != 0 {
		t.Errorf("after restart the helper's cgroups %v are left", k.Cgroups)
	}
	// Limit again and unlimit: back exactly.
	if err := c.SetProcessLimit(ctx, int32(sh.Process.Pid), api.Limit{Up: limit}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // children are born while limited
	if err := c.RemoveProcessLimit(ctx, int32(sh.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]int{sh.Process.Pid}, scopetest.SubtreeProcs(dir)...) {
		if cg, err := cgroupv2.ProcessCgroup(p); err == nil && cg != rel && !scopetest.Zombie(p) {
			t.Errorf("after unlimit process %d is in %s, want %s", p, cg, rel)
		}
	}
	if code := h.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if k := readKernelState(t, bed, in); !k.empty() {
		t.Errorf("kernel state after SIGTERM: %+v", k)
	}
}

// wantPlacement checks that the helper's active placement is mode.
func wantPlacement(t *testing.T, c *client.Client, mode string) {
	t.Helper()
	bs, err := c.Backends(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Kind == string(backends.KindPlacement) && b.Active && b.Name != mode {
			t.Errorf("active placement %s, want %s", b.Name, mode)
		}
	}
}

// waitIn waits until pid (if it still runs) is in the cgroup rel.
func waitIn(t *testing.T, pid int, rel string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		cg, err := cgroupv2.ProcessCgroup(pid)
		if err != nil || cg == rel || scopetest.Zombie(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is in %s, want %s", pid, cg, rel)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
