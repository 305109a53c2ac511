//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBlockEveryCgroup: in cgroup placement a target can sit in several
// cgroups (its processes came from different leaves); a block covers a
// connect from each of them, not only from the first, and unblock frees
// them all.
func TestBlockEveryCgroup(t *testing.T) {
	bed := testenv.NewBed(t)
	testenv.RequireTool(t, "curl")
	b := newTestBlocker(t, bed)
	port := bed.ServeHTTP(bed.Peer)
	url := fmt.Sprintf("http://%s:%d/", bed.PeerIP, port)

	p := newPlacer(t)
	tg := backends.Target{ID: "blk-many", Kind: backends.TargetProcess}
	for i := range 2 {
		sleeper := bed.Command(bed.Local, "sleep", "30")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
		cg, err := p.Place(fmt.Sprintf("blk-many-%d", i), []int{sleeper.Process.Pid})
		if err != nil {
			t.Fatal(err)
		}
		tg.PIDs = append(tg.PIDs, sleeper.Process.Pid)
		tg.Cgroups = append(tg.Cgroups, cg)
	}
	if tg.Cgroups[0].ID == tg.Cgroups[1].ID {
		t.Fatalf("the two placements share cgroup %s", tg.Cgroups[0].Path)
	}
	tg.Cgroup = tg.Cgroups[0]
	if err := b.Block(tg, backends.TrafficAll); err != nil {
		t.Fatalf("Block: %v", err)
	}
	for i, cg := range tg.Cgroups {
		if f := curlFrom(t, bed, cg.Path, url); !f.refused() {
			t.Errorf("curl from the target's cgroup %d (%s): exit %d %q; want EPERM", i, cg.Path, f.code, f.stderr)
		}
	}
	// FollowSockets (the engine's once-a-second call) keeps every cgroup.
	if err := b.FollowSockets(backends.Target{ID: tg.ID, Kind: tg.Kind, PIDs: tg.PIDs}); err != nil {
		t.Fatal(err)
	}
	if f := curlFrom(t, bed, tg.Cgroups[1].Path, url); !f.refused() {
		t.Errorf("after FollowSockets, curl from the second cgroup: exit %d %q; want EPERM", f.code, f.stderr)
	}
	if err := b.Unblock(tg.ID); err != nil {
		t.Fatal(err)
	}
	for i, cg := range tg.Cgroups {
		if f := curlFrom(t, bed, cg.Path, url); f.code != 0 {
			t.Errorf("curl from cgroup %d after unblock: exit %d %s", i, f.code, f.stderr)
		}
	}
}
