//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"os"
	"testing"
	"time"

	cilium "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

const crashEnv = "CHADTHROTTLE_EBPF_CRASH_CHILD"

// TestMain lets TestCrashLeavesNothing run the test binary again as a
// stand-in helper (crashEnv set) that holds limits and a monitor until it
// is killed.
func TestMain(m *testing.M) {
	if os.Getenv(crashEnv) != "" {
		crashChild()
	}
	if os.Getenv(sendtoEnv) != "" {
		sendtoChild() // block_linux_test.go
	}
	if v := os.Getenv(paceCrashEnv); v != "" {
		paceCrashChild(v) // pacecrash_linux_test.go
	}
	os.Exit(m.Run())
}

func crashChild() {
	up := NewUpload(backends.Options{}).(uploadThrottler)
	down := NewDownload(backends.Options{}).(downloadThrottler)
	mon := NewMonitor(backends.Options{}).(*monitorBackend)
	for _, b := range []backends.Backend{up, down, mon} {
		if err := b.Init(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	tg := backends.Target{ID: "pid-self", PIDs: []int{os.Getpid()}}
	for _, b := range []backends.Throttler{up, down} {
		if err := b.SetLimit(tg, backends.Limit{Rate: 1000}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	for _, p := range []*cilium.Program{up.objs.CtThrottleEgress, down.objs.CtThrottleIngress,
		mon.objs.CtCountEgress, mon.objs.CtCountIngress, mon.objs.CtSockCreate, mon.objs.CtSockRelease} {
		info, err := p.Info()
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		id, _ := info.ID()
		fmt.Println("prog", id)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// TestCrashLeavesNothing kills a process that holds limits and a monitor
// with SIGKILL: the kernel must detach and free every program it loaded, so
// nothing of a crashed helper stays in the cgroup hooks.
func TestCrashLeavesNothing(t *testing.T) {
	requireEBPF(t)
	cmd, lines := testenv.StandIn(t, crashEnv, "1")
	var ids []cilium.ProgramID
	for _, line := range lines {
		var id cilium.ProgramID
		if _, err := fmt.Sscanf(line, "prog %d", &id); err == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) != 6 {
		t.Fatalf("child reported programs %v", ids)
	}
	root, err := cgroupv2.Mount()
	if err != nil {
		t.Fatal(err)
	}
	attached := func() map[cilium.ProgramID]bool {
		f, err := os.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m := map[cilium.ProgramID]bool{}
		for _, at := range []cilium.AttachType{cilium.AttachCGroupInetEgress, cilium.AttachCGroupInetIngress,
			cilium.AttachCGroupInetSockCreate, cilium.AttachCgroupInetSockRelease} {
			r, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: at})
			if err != nil {
				t.Fatalf("query %s programs of %s: %v", at, root, err)
			}
			for _, p := range r.Programs {
				m[p.ID] = true
			}
		}
		return m
	}
	before := attached()
	for _, id := range ids {
		if !before[id] {
			t.Fatalf("program %d of the child is not attached to %s (attached: %v)", id, root, before)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := attached()
		var left []cilium.ProgramID
		for _, id := range ids {
			if now[id] {
				left = append(left, id)
			} else if p, err := cilium.NewProgramFromID(id); err == nil {
				p.Close()
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("programs %v of the killed process are still loaded or attached", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var _ = testenv.InCI
