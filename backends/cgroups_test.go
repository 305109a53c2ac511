package backends

import (
	"slices"
	"testing"
)

// leafPlacer is a CgroupsPlacer that gives every pid a cgroup of its own
// (as cgroupv2.Leaf does for processes in different cgroups).
type leafPlacer struct{ *FakePlacer }

func (p leafPlacer) PlaceCgroups(id string, pids []int) ([]Cgroup, error) {
	var out []Cgroup
	for _, pid := range pids {
		out = append(out, Cgroup{Path: "/leaf/" + id, ID: uint64(pid)})
	}
	return out, nil
}

func (leafPlacer) Mode() string { return "cgroup" }

// TestManagerCgroupsPlacer: with a CgroupsPlacer the throttlers see every
// cgroup of a target (Cgroups; Cgroup is the first) and the mode is the
// placer's.
func TestManagerCgroupsPlacer(t *testing.T) {
	up := NewFakeUpload()
	m, err := NewManager(up, nil, nil, leafPlacer{NewFakePlacer()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Target{ID: "app-x", Kind: TargetApp, PIDs: []int{7, 9}}, Limits{Up: Limit{Rate: 1000}}); err != nil {
		t.Fatal(err)
	}
	seen, _ := up.TargetOf("app-x")
	if len(seen.Cgroups) != 2 || seen.Cgroup != seen.Cgroups[0] || !slices.Equal(seen.CgroupIDs(), []uint64{7, 9}) {
		t.Errorf("throttler saw %+v", seen)
	}
	if m.PlacementMode() != "cgroup" || m.TagsAtCreation() {
		t.Errorf("mode %q, tags at creation %v", m.PlacementMode(), m.TagsAtCreation())
	}
	if got := (Target{Cgroup: Cgroup{ID: 3}}).CgroupIDs(); !slices.Equal(got, []uint64{3}) {
		t.Errorf("one cgroup: ids %v", got)
	}
}
