package backends

import (
	"errors"
	"strings"
	"testing"
)

func newTestManager(t *testing.T, withDown bool) (*Manager, *FakeUpload, *FakeDownload, *FakePlacer) {
	t.Helper()
	up, down, pl := NewFakeUpload(), NewFakeDownload(), NewFakePlacer()
	var d DownloadThrottleBackend
	var why error
	if withDown {
		d = down
	} else {
		why = errors.New("kernel lacks IFB")
	}
	m, err := NewManager(up, d, why, pl)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(); err != nil {
		t.Fatal(err)
	}
	return m, up, down, pl
}

func TestManagerRequiresUpload(t *testing.T) {
	if _, err := NewManager(nil, NewFakeDownload(), nil, nil); err == nil {
		t.Fatal("NewManager without upload backend succeeded")
	}
}

func TestManagerApplyBothDirections(t *testing.T) {
	m, up, down, pl := newTestManager(t, true)
	target := Target{ID: "app-1000-firefox", Kind: TargetApp, PIDs: []int{10, 11}}
	l := Limits{Down: Limit{Rate: 1_000_000}, Up: Limit{Rate: 100_000, Traffic: TrafficInternet}}
	if err := m.Apply(target, l); err != nil {
		t.Fatal(err)
	}
	if got, _ := up.Limit(target.ID); got != l.Up {
		t.Errorf("upload limit %+v; want %+v", got, l.Up)
	}
	if got, _ := down.Limit(target.ID); got != l.Down {
		t.Errorf("download limit %+v; want %+v", got, l.Down)
	}
	seen, _ := up.TargetOf(target.ID)
	if seen.Cgroup.ID == 0 || seen.Cgroup.Path == "" {
		t.Errorf("backend saw target without cgroup: %+v", seen)
	}
	if len(pl.Placed[target.ID]) != 2 {
		t.Errorf("placer has %v; want the two pids", pl.Placed[target.ID])
	}
	// Removing one direction keeps the other and the placement.
	l.Down.Rate = 0
	if err := m.Apply(target, l); err != nil {
		t.Fatal(err)
	}
	if _, ok := down.Limit(target.ID); ok {
		t.Error("download limit still set after rate 0")
	}
	if _, ok := pl.Placed[target.ID]; !ok {
		t.Error("placement dropped while upload still limited")
	}
	// All zero removes the target and releases the cgroup.
	if err := m.Apply(target, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := up.Limit(target.ID); ok {
		t.Error("upload limit left after Apply(zero)")
	}
	if _, ok := pl.Placed[target.ID]; ok {
		t.Error("cgroup not released after Apply(zero)")
	}
	if len(m.Targets()) != 0 {
		t.Errorf("targets left: %v", m.Targets())
	}
}

func TestManagerFollowSockets(t *testing.T) {
	m, up, down, _ := newTestManager(t, true)
	target := Target{ID: "app-1000-transmission", Kind: TargetApp, PIDs: []int{10}}
	if err := m.Apply(target, Limits{Up: Limit{Rate: 100_000}}); err != nil {
		t.Fatal(err)
	}
	if err := m.FollowSockets(target.ID, []int{10, 12}); err != nil {
		t.Fatal(err)
	}
	if err := m.FollowSockets("no-such-target", []int{1}); err != nil {
		t.Errorf("unknown target: %v", err)
	}
	if got := up.Followed[target.ID]; len(got) != 1 || len(got[0]) != 2 || got[0][1] != 12 {
		t.Errorf("upload backend followed %v; want one call with pids [10 12]", got)
	}
	if len(down.Followed) != 0 {
		t.Errorf("download backend followed %v with no download limit", down.Followed)
	}
	if _, ok := up.Followed["no-such-target"]; ok {
		t.Error("an unknown target reached the backend")
	}
}

func TestManagerDegradesWithoutDownload(t *testing.T) {
	m, up, _, pl := newTestManager(t, false)
	d, why := m.Download()
	if d != nil || why == nil || !strings.Contains(why.Error(), "IFB") {
		t.Fatalf("Download() = %v, %v; want nil and the reason", d, why)
	}
	target := Target{ID: "pid-5", PIDs: []int{5}}
	err := m.Apply(target, Limits{Down: Limit{Rate: 1000}})
	if !errors.Is(err, ErrDownloadUnavailable) || !strings.Contains(err.Error(), "IFB") {
		t.Fatalf("download limit without backend: err = %v; want ErrDownloadUnavailable with reason", err)
	}
	if len(pl.Placed) != 0 {
		t.Errorf("failed Apply left a placement: %v", pl.Placed)
	}
	if err := m.Apply(target, Limits{Up: Limit{Rate: 1000}}); err != nil {
		t.Fatalf("upload-only limit: %v", err)
	}
	if _, ok := up.Limit("pid-5"); !ok {
		t.Fatal("upload limit not set")
	}
}

func TestManagerDownloadInitFailureDegrades(t *testing.T) {
	up, down := NewFakeUpload(), NewFakeDownload()
	down.InitErr = errors.New("cannot create ifb device")
	m, _ := NewManager(up, down, nil, nil)
	if err := m.Init(); err != nil {
		t.Fatalf("Init must degrade, not fail: %v", err)
	}
	if _, why := m.Download(); why == nil || !strings.Contains(why.Error(), "cannot create ifb device") {
		t.Fatalf("reason = %v", why)
	}
}

func TestManagerRollsBack(t *testing.T) {
	m, up, down, pl := newTestManager(t, true)
	target := Target{ID: "pid-7", PIDs: []int{7}}
	old := Limits{Up: Limit{Rate: 5000}, Down: Limit{Rate: 6000}}
	if err := m.Apply(target, old); err != nil {
		t.Fatal(err)
	}
	down.SetErr = errors.New("kernel said no")
	if err := m.Apply(target, Limits{Up: Limit{Rate: 1}, Down: Limit{Rate: 2}}); err == nil {
		t.Fatal("Apply succeeded despite download failure")
	}
	down.SetErr = nil
	if got, _ := m.Limits("pid-7"); got != old {
		t.Errorf("manager limits after failed update = %+v; want old %+v", got, old)
	}
	if got, _ := up.Limit("pid-7"); got != old.Up {
		t.Errorf("upload limit after failed update = %+v; want old %+v", got, old.Up)
	}
	// A failing new target leaves nothing.
	down.SetErr = errors.New("kernel said no")
	if err := m.Apply(Target{ID: "pid-8", PIDs: []int{8}}, Limits{Up: Limit{Rate: 1}, Down: Limit{Rate: 2}}); err == nil {
		t.Fatal("Apply succeeded despite failure")
	}
	if _, ok := up.Limit("pid-8"); ok {
		t.Error("upload limit left behind by failed new target")
	}
	if _, ok := pl.Placed["pid-8"]; ok {
		t.Error("placement left behind by failed new target")
	}
	pl.PlaceErr = errors.New("no such process")
	down.SetErr = nil
	if err := m.Apply(Target{ID: "pid-9", PIDs: []int{9}}, Limits{Up: Limit{Rate: 1}}); err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Fatalf("placement failure: err = %v", err)
	}
}

func TestManagerValidates(t *testing.T) {
	m, _, _, _ := newTestManager(t, true)
	for _, l := range []Limits{
		{Up: Limit{Rate: MaxRate + 1}},
		{Down: Limit{Rate: 1, Traffic: TrafficType(7)}},
	} {
		if err := m.Apply(Target{ID: "x", PIDs: []int{1}}, l); err == nil {
			t.Errorf("Apply(%+v) succeeded", l)
		}
	}
	if err := m.Apply(Target{}, Limits{Up: Limit{Rate: 1}}); err == nil {
		t.Error("Apply without target id succeeded")
	}
}

func TestManagerCleanup(t *testing.T) {
	m, up, down, pl := newTestManager(t, true)
	for _, id := range []string{"a", "b"} {
		if err := m.Apply(Target{ID: id, PIDs: []int{1}}, Limits{Up: Limit{Rate: 10}, Down: Limit{Rate: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Cleanup(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, ok := up.Limit(id); ok {
			t.Errorf("upload %s left", id)
		}
		if _, ok := down.Limit(id); ok {
			t.Errorf("download %s left", id)
		}
	}
	if len(pl.Placed) != 0 || len(m.Targets()) != 0 {
		t.Errorf("left: placed %v targets %v", pl.Placed, m.Targets())
	}
}

func TestTrafficTypes(t *testing.T) {
	for _, s := range []string{"", "all", "ALL", " internet ", "local"} {
		if _, err := ParseTrafficType(s); err != nil {
			t.Errorf("ParseTrafficType(%q): %v", s, err)
		}
	}
	if _, err := ParseTrafficType("lan"); err == nil {
		t.Error("ParseTrafficType(lan) succeeded")
	}
}

// bypassDownload is a download throttler whose apps' packets skip the
// global pool, as tc_police's do.
type bypassDownload struct{ *FakeDownload }

func (bypassDownload) GlobalBypass() string { return "policed packets skip the pool" }

// TestManagerRefusesGlobalDownloadBesideBypass: with a download throttler
// that bypasses the global pool, a global download limit is refused with
// the reason and changes nothing; a global upload limit still works.
func TestManagerRefusesGlobalDownloadBesideBypass(t *testing.T) {
	m, err := NewManager(NewFakeUpload(), bypassDownload{NewFakeDownload()}, nil, NewFakePlacer())
	if err != nil {
		t.Fatal(err)
	}
	g := NewFakeGlobal()
	m.SetGlobalShaper(g, nil)
	if err := m.Init(); err != nil {
		t.Fatal(err)
	}
	err = m.SetGlobal(GlobalLimit{Down: 10_000_000})
	if !errors.Is(err, ErrGlobalUnavailable) || !strings.Contains(err.Error(), "policed packets skip the pool") {
		t.Fatalf("global download limit beside a bypassing throttler: %v, want ErrGlobalUnavailable with the reason", err)
	}
	if got := m.Global(); !got.IsZero() || !g.Global().IsZero() {
		t.Fatalf("a refused global limit changed the limit in force: manager %+v, shaper %+v", got, g.Global())
	}
	if err := m.SetGlobal(GlobalLimit{Up: 1_000_000}); err != nil {
		t.Fatalf("global upload limit beside a bypassing download throttler: %v", err)
	}
	if got := g.Global(); got.Up != 1_000_000 || got.Down != 0 {
		t.Fatalf("shaper holds %+v, want the upload limit only", got)
	}
}
