//go:build linux

package main

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/daemon/engine"
	"github.com/chadthrottle/chadthrottle/helper/daemon/polkit"
	"github.com/chadthrottle/chadthrottle/helper/daemon/server"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// inProcess runs the helper's engine and server inside the test process
// (so goroutines and fds can be counted), with the real backends working
// in the bed's namespace.
func inProcess(t *testing.T, bus *bustest.Bus, bed *testenv.Bed, cfg *config) (*engine.Engine, *client.Client) {
	t.Helper()
	cfg.netns = testenv.Path(bed.Local)
	cfg.interfaces = []string{bed.LocalDev}
	cfg.stateDir, cfg.runDir = t.TempDir(), t.TempDir()
	cfg.tag = testenv.UniqueName("c")
	if cfg.monitor == "" {
		cfg.monitor, cfg.upload, cfg.download = "auto", "auto", "auto"
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := build(*cfg, log, nil)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; eng.Close() })
	conn := bus.Conn(t)
	auth, err := polkit.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	srv, err := server.New(server.Config{Conn: conn, Engine: eng, Auth: auth, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Export(); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(api.BusName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request name: %v %v", r, err)
	}
	c := connect(t, bus.Address)
	return eng, c
}

func countFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// 1,000 limit/unlimit cycles over the bus (auto-selected backends, then
// tc, then placement cgroup) leave no growth in fds,
// goroutines, cgroups or tc classes.
func TestLimitUnlimitCycles(t *testing.T) {
	testenv.RequireRoot(t)
	for _, v := range []struct {
		name   string
		cfg    config
		cycles int
	}{
		{"auto", config{}, 1000},
		{"tc", config{monitor: "auto", upload: "tc_htb", download: "ifb_tc"}, 1000},
		{"cgroup", config{placement: "cgroup"}, 1000}, // into a child of its cgroup and back
	} {
		t.Run(v.name, func(t *testing.T) {
			bed := testenv.NewBed(t)
			bus := bustest.StartBus(t)
			bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
			load := bed.StartClient(bed.Local, "send", bed.PeerIP+":5201", 110*time.Second, time.Second)
			cfg := v.cfg
			_, c := inProcess(t, bus, bed, &cfg)
			in := &instance{tag: cfg.tag, pid: os.Getpid()}
			ctx := context.Background()
			// An anchor limit stays in place throughout, so the cycles add
			// and remove one target's kernel objects (cgroup, classes, map
			// entries) beside a live one instead of building the whole
			// shaping tree each time.
			anchor := bed.Command(bed.Local, "sleep", "300")
			if err := anchor.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { anchor.Process.Kill(); anchor.Wait() })
			time.Sleep(400 * time.Millisecond)
			if err := c.SetProcessLimit(ctx, int32(anchor.Process.Pid), api.Limit{Up: 10_000_000, Down: 10_000_000}); err != nil {
				t.Fatalf("anchor limit: %v", err)
			}
			cycle := func(i int) {
				if err := c.SetProcessLimit(ctx, int32(load.PID), api.Limit{Up: uint64(1_000_000 + i), Down: uint64(2_000_000 + i)}); err != nil {
					t.Fatalf("cycle %d: set: %v", i, err)
				}
				if err := c.RemoveProcessLimit(ctx, int32(load.PID)); err != nil {
					t.Fatalf("cycle %d: remove: %v", i, err)
				}
			}
			for i := 0; i < 20; i++ { // warm up: lazily made maps, pools, caches
				cycle(i)
			}
			time.Sleep(300 * time.Millisecond)
			runtime.GC()
			fds0, gr0, cl0 := countFDs(t), runtime.NumGoroutine(), countClasses(t, bed)
			// The load sends for 110 s (ctload's bound is 120 s); a loaded
			// machine that cannot finish the cycles by then stops early
			// rather than limiting an exited process (seen once: cycle 927).
			start := time.Now()
			done := 0
			for ; done < v.cycles && time.Since(start) < 95*time.Second; done++ {
				cycle(done)
			}
			took := time.Since(start)
			if done < v.cycles {
				t.Logf("only %d of %d cycles within 95 s (the machine is loaded)", done, v.cycles)
				if done < v.cycles/4 {
					t.Errorf("only %d cycles in %v", done, took.Round(time.Millisecond))
				}
			}
			time.Sleep(300 * time.Millisecond)
			runtime.GC()
			fds1, gr1, cl1 := countFDs(t), runtime.NumGoroutine(), countClasses(t, bed)
			cgs := readKernelState(t, bed, in).targets() - 1 + cgroupChildren(t, bed, load.PID) // minus the anchor
			t.Logf("%d cycles in %v: fds %d→%d, goroutines %d→%d, tc classes %d→%d, cycled targets left %d",
				done, took.Round(time.Millisecond), fds0, fds1, gr0, gr1, cl0, cl1, cgs)
			if fds1 > fds0+3 {
				t.Errorf("fds grew from %d to %d", fds0, fds1)
			}
			if gr1 > gr0+5 {
				t.Errorf("goroutines grew from %d to %d", gr0, gr1)
			}
			if cl1 > cl0 {
				t.Errorf("tc classes grew from %d to %d", cl0, cl1)
			}
			if cgs != 0 {
				t.Errorf("%d targets (cgroups or socket tags) remain after the last unlimit", cgs)
			}
		})
	}
}

// cgroupChildren counts the target cgroups of the in-process helper: the
// process must be back where it was, so its cgroup is not below a
// chadthrottle subtree.
func cgroupChildren(t *testing.T, bed *testenv.Bed, pid int) int {
	t.Helper()
	cg := cgroupOf(t, pid)
	if containsChad(cg) {
		return 1
	}
	return 0
}

func containsChad(p string) bool {
	for _, part := range splitPath(p) {
		if len(part) >= len("chadthrottle") && part[:len("chadthrottle")] == "chadthrottle" {
			return true
		}
	}
	return false
}

func splitPath(p string) []string {
	var out []string
	cur := ""
	for _, r := range p {
		if r == '/' {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
			continue
		}
		cur += string(r)
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}
