//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// realInstance is the production helper (real registry, auto selection
// unless extra says otherwise) running in the bed's local namespace.
// realBed makes a namespace bed with a ctload server (kind, listening on
// addr) in its peer namespace, a bus, and a real helper instance for them,
// not started yet.
func realBed(t *testing.T, kind, addr string, extra ...string) (*testenv.Bed, *bustest.Bus, *instance) {
	t.Helper()
	bed := testenv.NewBed(t)
	bus := bustest.StartBus(t)
	bed.StartServer(bed.Peer, kind, addr, false)
	return bed, bus, realInstance(t, bus, bed, extra...)
}

func realInstance(t *testing.T, bus *bustest.Bus, bed *testenv.Bed, extra ...string) *instance {
	t.Helper()
	testenv.RequireTool(t, "nsenter", "tc", "ip")
	in := &instance{
		bin:      bustest.BuildBinary(t, "./cmd/chadthrottle-helper"),
		bus:      bus,
		stateDir: t.TempDir(),
		runDir:   t.TempDir(),
		tag:      testenv.UniqueName("k"),
		extra:    append([]string{"--interface", bed.LocalDev}, extra...),
		wrap:     []string{"nsenter", "--net=" + testenv.Path(bed.Local), "--"},
	}
	in.removeCgroupsAtCleanup(t)
	return in
}

// kernelState is what the helper leaves in the kernel, as tc, ip and the
// cgroup tree show it.
type kernelState struct {
	Qdiscs  []string // product qdiscs (htb, ingress, clsact) on the bed's devices
	IFBs    []string // the product's IFB devices in the bed
	Cgroups []string // the helper's child cgroups, chadthrottle-TAG.<target> (placement cgroup)
	// Tags are the target numbers in the socket tagger's maps the helper
	// holds (placement socket_tags: a target is a tag, not a cgroup).
	Tags []uint32
}

func (k kernelState) empty() bool {
	return len(k.Qdiscs) == 0 && len(k.IFBs) == 0 && len(k.Cgroups) == 0 && len(k.Tags) == 0
}

// targets counts the helper's targets in the kernel, in either placement.
func (k kernelState) targets() int { return len(k.Cgroups) + len(k.Tags) }

func readKernelState(t *testing.T, bed *testenv.Bed, in *instance) kernelState {
	t.Helper()
	var k kernelState
	out, err := bed.Command(bed.Local, "tc", "qdisc", "show").Output()
	if err != nil {
		t.Fatalf("tc qdisc show: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (f[1] == "htb" || f[1] == "ingress" || f[1] == "clsact" || f[1] == "tbf") {
			k.Qdiscs = append(k.Qdiscs, strings.Join(f[:min(len(f), 6)], " "))
		}
	}
	out, err = bed.Command(bed.Local, "ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "ctifb") {
			k.IFBs = append(k.IFBs, strings.TrimSuffix(f[1], ":"))
		}
	}
	pl, err := cgroupv2.NewLeaf(backends.Options{Tag: in.tag})
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := pl.Find()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		k.Cgroups = append(k.Cgroups, filepath.Base(d))
	}
	sort.Strings(k.Cgroups)
	k.Tags = taggedTargets(in.pid)
	return k
}

// taggedTargets returns the target numbers in the socket tagger maps
// (exe_targets, pid_targets) that process pid holds, found from its
// fdinfo: the helper's targets in placement socket_tags. A process that
// is gone holds none.
func taggedTargets(pid int) []uint32 {
	if pid <= 0 {
		return nil
	}
	nums := map[uint32]bool{}
	testenv.EachMap(pid, func(name string, m *ebpf.Map) {
		if name == "exe_targets" || name == "pid_targets" {
			var k []byte
			var v uint32
			for it := m.Iterate(); it.Next(&k, &v); {
				nums[v] = true
			}
		}
	})
	out := make([]uint32, 0, len(nums))
	for n := range nums {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "0::") {
			return strings.TrimPrefix(line, "0::")
		}
	}
	t.Fatalf("pid %d has no cgroup v2 line: %s", pid, b)
	return ""
}

// The real helper in a namespace bed, with the backends auto selection
// picks, limits a running upload through the bus, lifts it, and on SIGTERM
// removes every kernel object and moves the process back.
func TestRealHelperLimitsInBed(t *testing.T) {
	testenv.RequireRoot(t)
	bed, _, in := realBed(t, "sink", "[::]:5201")
	h, c := in.startClient(t)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backends: monitor %s, upload %s, download %s %s", st.Monitor, st.Upload, st.Download, st.DownloadReason)

	load := bed.StartClient(bed.Local, "send", bed.PeerIP+":5201", 30*time.Second, 200*time.Millisecond)
	origin := cgroupOf(t, load.PID)
	// Acknowledged bytes from tcp_info: the sender's own write count runs
	// ahead by what its send buffer takes after the clamp (CI: 1.51×).
	tcp := testenv.NewTCPCounter(t, bed.Local)
	free := tcp.Rate(t, true, time.Second, load.PID)
	const limit = 1_000_000
	if err := c.SetProcessLimit(ctx, int32(load.PID), api.Limit{Up: limit}); err != nil {
		t.Fatalf("SetProcessLimit: %v", err)
	}
	time.Sleep(time.Second)
	got := tcp.Rate(t, true, 3*time.Second, load.PID)
	t.Logf("unlimited %.0f B/s; limited to %d B/s: %.0f B/s (%.3f)", free, limit, got, got/limit)
	testenv.Settles(t, "limited upload 1–4 s after SetProcessLimit", got, func() float64 {
		return tcp.Rate(t, true, 3*time.Second, load.PID)
	}, limit, 0.75, 1.15)
	k := readKernelState(t, bed, in)
	if k.targets() != 1 {
		t.Errorf("one limited process, targets: cgroups %v, socket tags %v", k.Cgroups, k.Tags)
	}
	if cg := cgroupOf(t, load.PID); len(k.Tags) > 0 && cg != origin {
		t.Errorf("limited with socket tags, the process is in %s, want %s (where it started)", cg, origin)
	}
	snap, err := c.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range snap.Apps {
		for _, p := range a.PIDs {
			if int(p) == load.PID {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("GetApps does not list the sending process %d", load.PID)
	}
	if err := c.RemoveProcessLimit(ctx, int32(load.PID)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if after := tcp.Rate(t, true, time.Second, load.PID); after < 3*limit {
		t.Errorf("after RemoveProcessLimit: %.0f B/s, still limited", after)
	}
	if cg := cgroupOf(t, load.PID); cg != origin {
		t.Errorf("after RemoveProcessLimit the process is in %s, want %s", cg, origin)
	}
	// Limit again, then SIGTERM: everything goes.
	if err := c.SetProcessLimit(ctx, int32(load.PID), api.Limit{Up: limit}); err != nil {
		t.Fatal(err)
	}
	if code := h.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, h.out.String())
	}
	if k := readKernelState(t, bed, in); !k.empty() {
		t.Errorf("kernel state after SIGTERM: %+v", k)
	}
	if cg := cgroupOf(t, load.PID); cg != origin {
		t.Errorf("after SIGTERM the process is in %s, want %s", cg, origin)
	}
}

// Kill -9 the helper in the middle of applying limits, 20 times: each
// restart reconciles the leftovers and re-applies the rules; no rule that
// was acknowledged is lost; at the end SIGTERM leaves nothing behind.
func TestKill9WhileApplying(t *testing.T) {
	testenv.RequireRoot(t)
	for _, variant := range []struct {
		name  string
		extra []string
	}{
		{"auto", nil},
		{"tc", []string{"--upload", "tc_htb", "--download", "ifb_tc"}},
		{"cgroup", []string{"--placement", "cgroup"}},
	} {
		t.Run(variant.name, func(t *testing.T) { kill9(t, variant.extra) })
	}
}

func kill9(t *testing.T, extra []string) {
	bed := testenv.NewBed(t)
	bus := bustest.StartBus(t)
	sink := bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	in := realInstance(t, bus, bed, extra...)
	load := bed.StartClient(bed.Local, "send", bed.PeerIP+":5201", 120*time.Second, 500*time.Millisecond)
	origin := cgroupOf(t, load.PID)
	// The sink runs to the end and is placed by the ctload rule too.
	sinkOrigin := cgroupOf(t, sink.Process.Pid)
	ctload := testenv.Ctload(t)
	c := connect(t, bus.Address)
	ctx := context.Background()

	acked := map[string]api.Limit{} // rules the helper acknowledged
	rng := rand.New(rand.NewSource(1))
	// The ctload rule exists from the start, so every restart has one
	// target to re-apply.
	h := in.start(t)
	if err := c.SetAppLimit(ctx, ctload, 0, api.Limit{Up: 500_000, Down: 2_000_000}); err != nil {
		t.Fatal(err)
	}
	h.stop(t, syscall.SIGTERM)
	classes := 0
	for i := 0; i < 20; i++ {
		h = in.start(t)
		// Every acknowledged rule came back.
		rules, err := c.Rules(ctx)
		if err != nil {
			t.Fatalf("round %d: rules: %v", i, err)
		}
		have := map[string]api.Limit{}
		for _, r := range rules {
			have[r.Exe] = r.Limit
		}
		for exe, l := range acked {
			if got, ok := have[exe]; !ok || got.Up != l.Up {
				t.Fatalf("round %d: rule %s lost or changed after kill -9: %+v (have %v)", i, exe, got, have)
			}
		}
		// The leftovers of the killed run are gone once the helper is up:
		// only the ctload app rule has a target (process limits do not
		// persist).
		if i > 0 {
			deadline := time.Now().Add(3 * time.Second)
			for {
				k := readKernelState(t, bed, in)
				if k.targets() == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: after restart cgroups %v, socket tags %v, want exactly the ctload rule's", i, k.Cgroups, k.Tags)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// tc state does not grow from one crash to the next.
			n := countClasses(t, bed)
			if i == 1 {
				classes = n
			} else if n != classes {
				t.Fatalf("round %d: %d tc classes after restart, %d after the first", i, n, classes)
			}
		}
		// Apply limits in a burst and kill the helper somewhere inside it.
		var wg sync.WaitGroup
		var mu sync.Mutex
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				exe := fmt.Sprintf("/opt/chadthrottle-test/app-%d-%d", i, j)
				l := api.Limit{Up: uint64(100_000 + 1000*j)}
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				err1 := c.SetAppLimit(cctx, exe, 0, l)
				err2 := c.SetAppLimit(cctx, ctload, 0, api.Limit{Up: uint64(500_000 + 1000*j), Down: 2_000_000})
				err3 := c.SetProcessLimit(cctx, int32(load.PID), api.Limit{Up: uint64(300_000 + 1000*j)})
				cancel()
				if err1 == nil {
					mu.Lock()
					acked[exe] = l
					mu.Unlock()
				}
				if err1 != nil || err2 != nil || err3 != nil {
					return // the helper is gone
				}
			}
		}()
		time.Sleep(time.Duration(50+rng.Intn(400)) * time.Millisecond)
		h.cmd.Process.Signal(syscall.SIGKILL)
		h.wait(t, 10*time.Second)
		close(stop)
		wg.Wait()
	}
	t.Logf("%d rules acknowledged over 20 kills; %d tc classes in the bed after each restart", len(acked), classes)
	h = in.start(t)
	rules, err := c.Rules(ctx)
	if err != nil || len(rules) < len(acked) {
		t.Fatalf("final rules: %d (%v), acknowledged %d", len(rules), err, len(acked))
	}
	if code := h.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if k := readKernelState(t, bed, in); !k.empty() {
		t.Errorf("kernel state after the final SIGTERM: %+v", k)
	}
	if cg := cgroupOf(t, sink.Process.Pid); cg != sinkOrigin {
		t.Errorf("the sink is in %s after the final SIGTERM, want %s", cg, sinkOrigin)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", load.PID)); err != nil {
		t.Logf("the 120 s sender ended before the last check (slow machine); its cgroup is not checked")
	} else if cg := cgroupOf(t, load.PID); cg != origin {
		t.Errorf("the limited process is in %s after the final SIGTERM, want %s", cg, origin)
	}
}

// countClasses counts the tc classes on every device of the bed's local
// namespace.
func countClasses(t *testing.T, bed *testenv.Bed) int {
	t.Helper()
	out, err := bed.Command(bed.Local, "ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		dev := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		cls, err := bed.Command(bed.Local, "tc", "class", "show", "dev", dev).Output()
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(cls), "\n") {
			if strings.HasPrefix(l, "class ") {
				n++
			}
		}
	}
	return n
}
