package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/rules"
)

const firefox = "/usr/lib/firefox/firefox"

func firefoxProcs(p *fakeProc) {
	p.add(fp{pid: 1, ppid: 0, uid: 0, exe: "/usr/lib/systemd/systemd"})
	p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: firefox})
	p.add(fp{pid: 101, ppid: 100, uid: 1000, exe: firefox})
	p.add(fp{pid: 200, ppid: 1, uid: 1001, exe: firefox})
}

var (
	appA = appTargetID(appKey{1000, firefox})
	appB = appTargetID(appKey{1001, firefox})
)

func TestAppRuleIsPerUserAndPersisted(t *testing.T) {
	b := newBench(t, firefoxProcs)
	var changes atomic.Int32
	b.e.OnChange(func() { changes.Add(1) })
	if !b.e.Idle() {
		t.Fatal("engine without limits is not idle")
	}
	if err := b.e.SetAppLimit(asUID(1000), firefox, 1000, api.Limit{Down: 2_000_000, Up: 500_000}); err != nil {
		t.Fatal(err)
	}
	if pids, ok := b.target(appA); !ok || !slices.Equal(pids, []int{100, 101}) {
		t.Errorf("uid 1000's firefox target = %v (found %v), want [100 101]", pids, ok)
	}
	if _, ok := b.target(appB); ok {
		t.Error("uid 1000's rule limits uid 1001's firefox")
	}
	if l, ok := b.down.Limit(appA); !ok || l.Rate != 2_000_000 || l.Traffic != backends.TrafficAll {
		t.Errorf("download limit = %+v (found %v)", l, ok)
	}
	if l, ok := b.up.Limit(appA); !ok || l.Rate != 500_000 {
		t.Errorf("upload limit = %+v (found %v)", l, ok)
	}
	if placed := b.place.Placed[appA]; !slices.Equal(placed, []int{100, 101}) {
		t.Errorf("placed %v", placed)
	}
	if changes.Load() != 1 || b.e.Idle() {
		t.Errorf("after SetAppLimit: %d change callbacks, idle %v", changes.Load(), b.e.Idle())
	}
	a, _ := b.app("1000:" + firefox)
	if !a.Rule || a.Limit.Down != 2_000_000 || a.Limit.Traffic != "all" {
		t.Errorf("snapshot app = %+v, want the rule's limit", a)
	}
	if a2, _ := b.app("1001:" + firefox); a2.Rule || a2.Limit.Down != 0 {
		t.Errorf("uid 1001's app shows a limit: %+v", a2)
	}
	// Persisted: a fresh store sees the rule.
	st, err := rules.Open(b.state)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Rule{{Exe: firefox, UID: 1000, Limit: api.Limit{Down: 2_000_000, Up: 500_000, Traffic: "all"}}}
	if got := st.All(); !slices.Equal(got, want) {
		t.Errorf("persisted rules = %+v, want %+v", got, want)
	}
	if got := b.e.Rules(); !slices.Equal(got, want) {
		t.Errorf("Rules() = %+v, want %+v", got, want)
	}
	// The app id form works too and replaces the rule.
	if err := b.e.SetAppLimit(admin, "1000:"+firefox, 1000, api.Limit{Up: 1000, Traffic: "internet"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.down.Limit(appA); ok {
		t.Error("download limit still set after the rule dropped it")
	}
	if l, _ := b.up.Limit(appA); l.Rate != 1000 || l.Traffic != backends.TrafficInternet {
		t.Errorf("upload limit after update = %+v", l)
	}
	if err := b.e.RemoveAppLimit(admin, firefox, 1000); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.target(appA); ok || len(b.mgr.Targets()) != 0 || len(b.place.Placed) != 0 {
		t.Errorf("after RemoveAppLimit: targets %v placed %v", b.mgr.Targets(), b.place.Placed)
	}
	if err := b.e.RemoveAppLimit(admin, firefox, 1000); !errors.Is(err, ErrNotFound) {
		t.Errorf("second RemoveAppLimit: %v, want ErrNotFound", err)
	}
	if st2, _ := rules.Open(b.state); len(st2.All()) != 0 || !b.e.Idle() {
		t.Errorf("rules left after removal: %+v, idle %v", st2.All(), b.e.Idle())
	}
	// Both rates 0 means no limit: removes nothing, fails nothing.
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{}); err != nil {
		t.Errorf("zero limit: %v", err)
	}
}

func TestRuleFollowsProcessesAndSurvivesExit(t *testing.T) {
	b := newBench(t, firefoxProcs)
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	b.proc.add(fp{pid: 102, ppid: 100, uid: 1000, exe: firefox})
	b.scan()
	if pids, _ := b.target(appA); !slices.Equal(pids, []int{100, 101, 102}) {
		t.Errorf("after a new process: target %v, want [100 101 102]", pids)
	}
	for _, pid := range []int{100, 101, 102} {
		b.proc.remove(pid)
	}
	b.scan()
	if _, ok := b.target(appA); ok || len(b.mgr.Targets()) != 0 {
		t.Errorf("target kept after every process exited: %v", b.mgr.Targets())
	}
	if len(b.e.Rules()) != 1 {
		t.Fatal("rule lost when the app exited")
	}
	if a, ok := b.app("1000:" + firefox); !ok || !a.Rule {
		t.Errorf("app with a rule and no process is not listed: %+v", a)
	}
	b.proc.add(fp{pid: 300, ppid: 1, uid: 1000, exe: firefox})
	b.scan()
	if pids, _ := b.target(appA); !slices.Equal(pids, []int{300}) {
		t.Errorf("rule not re-applied to a new process: %v", pids)
	}
}

func TestRuleReachesNewProcessWithinASecond(t *testing.T) {
	b := newBench(t, firefoxProcs)
	if err := b.e.SetAppLimit(admin, firefox, 1001, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for i, pid := range []int{201, 202, 203} {
		start := time.Now()
		b.proc.add(fp{pid: pid, ppid: 200, uid: 1001, exe: firefox})
		for {
			pids, _ := b.target(appB)
			if slices.Contains(pids, pid) {
				t.Logf("process %d (#%d) targeted after %v", pid, i+1, time.Since(start).Round(time.Millisecond))
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("process %d not targeted within 1 s (target %v)", pid, pids)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestRulesRestoredAtStart(t *testing.T) {
	var b *bench
	b = newBench(t, firefoxProcs, func(b *bench, c *Config) {
		st, err := rules.Open(b.state)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []api.Rule{
			{Exe: firefox, UID: 1001, Limit: api.Limit{Down: 5000, Up: 6000}},
			{Exe: "/usr/bin/absent", UID: 1000, Limit: api.Limit{Up: 10}},
		} {
			if err := st.Set(r); err != nil {
				t.Fatal(err)
			}
		}
	}, withoutDownload())
	// Download limiting is unavailable: the restored rule keeps its upload
	// part.
	if pids, ok := b.target(appB); !ok || !slices.Equal(pids, []int{200}) {
		t.Errorf("restored rule not applied: %v (found %v)", pids, ok)
	}
	if l, _ := b.up.Limit(appB); l.Rate != 6000 {
		t.Errorf("restored upload limit = %+v", l)
	}
	if len(b.e.Rules()) != 2 {
		t.Errorf("rules = %+v", b.e.Rules())
	}
	if a, ok := b.app("1000:/usr/bin/absent"); !ok || !a.Rule || a.Name != "absent" {
		t.Errorf("rule of an app not running is not listed: %+v", a)
	}
	// A new download limit is refused with the reason.
	err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Down: 100})
	if !errors.Is(err, backends.ErrDownloadUnavailable) || !strings.Contains(err.Error(), "no download backend") {
		t.Errorf("download limit without a download backend: %v", err)
	}
	if b.e.Status(1000).DownloadReason == "" || b.e.Status(1000).Download != "" {
		t.Errorf("status = %+v", b.e.Status(1000))
	}
}

func TestProcessLimitTakesProcessOutOfApp(t *testing.T) {
	b := newBench(t, firefoxProcs)
	b.proc.add(fp{pid: 105, ppid: 101, uid: 1000, exe: firefox}) // child of 101
	b.scan()
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int32
	b.e.OnChange(func() { changes.Add(1) })
	if err := b.e.SetProcessLimit(admin, 101, 0, api.Limit{Up: 50, Down: 60}); err != nil {
		t.Fatal(err)
	}
	pidID := pidTargetID(101, 1010)
	if pids, ok := b.target(pidID); !ok || !slices.Equal(pids, []int{101, 105}) {
		t.Errorf("process target = %v (found %v), want 101 and its child 105", pids, ok)
	}
	if pids, _ := b.target(appA); !slices.Equal(pids, []int{100}) {
		t.Errorf("app target = %v, want [100] (101 and its child 105 excluded)", pids)
	}
	// A child born later joins its parent's process target, not the app's.
	b.proc.add(fp{pid: 106, ppid: 105, uid: 1000, exe: firefox})
	b.scan()
	if pids, _ := b.target(pidID); !slices.Equal(pids, []int{101, 105, 106}) {
		t.Errorf("process target after a grandchild = %v, want [101 105 106]", pids)
	}
	if pids, _ := b.target(appA); !slices.Equal(pids, []int{100}) {
		t.Errorf("app target after a grandchild = %v, want [100]", pids)
	}
	d, _ := b.e.AppDetails("1000:" + firefox)
	for _, p := range d.Processes {
		if (p.PID == 101) != (p.Limit.Up == 50) {
			t.Errorf("process %d limit %+v", p.PID, p.Limit)
		}
	}
	if err := b.e.RemoveProcessLimit(admin, 101, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.target(pidID); ok {
		t.Error("process target kept after RemoveProcessLimit")
	}
	if pids, _ := b.target(appA); !slices.Equal(pids, []int{100, 101, 105, 106}) {
		t.Errorf("app target after removal = %v, want [100 101 105 106]", pids)
	}
	if err := b.e.RemoveProcessLimit(admin, 101, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("second RemoveProcessLimit: %v", err)
	}
	// A limited process that exits takes its limit with it.
	if err := b.e.SetProcessLimit(admin, 200, 0, api.Limit{Up: 50}); err != nil {
		t.Fatal(err)
	}
	before := changes.Load()
	b.proc.remove(200)
	b.scan()
	if _, ok := b.target(pidTargetID(200, 2000)); ok || changes.Load() != before+1 {
		t.Errorf("exited process keeps its target (changes %d → %d)", before, changes.Load())
	}
	if err := b.e.RemoveProcessLimit(admin, 200, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("limit of an exited process: %v", err)
	}
}

func TestValidation(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		firefoxProcs(p)
		p.add(fp{pid: 2, ppid: 0, uid: 0, comm: "kthreadd", kthread: true})
	})
	b.proc.add(fp{pid: selfPID, ppid: 1, uid: 0, exe: "/usr/bin/chadthrottle-helper"})
	ok := api.Limit{Up: 1000}
	long := "/" + strings.Repeat("a", 4100)
	cases := []struct {
		name string
		call func() error
		want error
		msg  string
	}{
		{"pid 0", func() error { return b.e.SetProcessLimit(admin, 0, 0, ok) }, ErrInvalid, "not a process id"},
		{"pid -5", func() error { return b.e.SetProcessLimit(admin, -5, 0, ok) }, ErrInvalid, "not a process id"},
		{"pid 1", func() error { return b.e.SetProcessLimit(admin, 1, 0, ok) }, ErrInvalid, "init"},
		{"helper", func() error { return b.e.SetProcessLimit(admin, selfPID, 0, ok) }, ErrInvalid, "helper itself"},
		{"kernel thread", func() error { return b.e.SetProcessLimit(admin, 2, 0, ok) }, ErrInvalid, "kernel thread"},
		{"missing pid", func() error { return b.e.SetProcessLimit(admin, 99999, 0, ok) }, ErrNotFound, "no process 99999"},
		{"rate too high", func() error { return b.e.SetProcessLimit(admin, 100, 0, api.Limit{Up: uint64(backends.MaxRate) + 1}) }, ErrInvalid, "maximum"},
		{"down too high", func() error { return b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Down: 1 << 63}) }, ErrInvalid, "maximum"},
		{"traffic", func() error { return b.e.SetProcessLimit(admin, 100, 0, api.Limit{Up: 1, Traffic: "lan"}) }, ErrInvalid, "traffic type"},
		{"traffic on zero", func() error { return b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Traffic: "x"}) }, ErrInvalid, "traffic type"},
		{"relative exe", func() error { return b.e.SetAppLimit(admin, "firefox", 1000, ok) }, ErrInvalid, "not absolute"},
		{"empty exe", func() error { return b.e.SetAppLimit(admin, "", 1000, ok) }, ErrInvalid, "empty"},
		{"unclean exe", func() error { return b.e.SetAppLimit(admin, "/usr/bin/../bin/x", 1000, ok) }, ErrInvalid, "not clean"},
		{"long exe", func() error { return b.e.SetAppLimit(admin, long, 1000, ok) }, ErrInvalid, "bytes long"},
		{"control char", func() error { return b.e.SetAppLimit(admin, "/usr/bin/a\nb", 1000, ok) }, ErrInvalid, "control"},
		{"root dir", func() error { return b.e.SetAppLimit(admin, "/", 1000, ok) }, ErrInvalid, "directory"},
		{"kernel app", func() error { return b.e.SetAppLimit(admin, "0:[kworker]", 0, ok) }, ErrInvalid, "kernel task"},
		{"app id of other uid", func() error { return b.e.SetAppLimit(admin, "1001:"+firefox, 1000, ok) }, ErrInvalid, "belongs to uid 1001"},
		{"app id huge uid", func() error { return b.e.SetAppLimit(admin, "99999999999:/x", 1000, ok) }, ErrInvalid, "bad uid"},
		{"remove bad exe", func() error { return b.e.RemoveAppLimit(admin, "x", 1000) }, ErrInvalid, "not absolute"},
		{"remove no rule", func() error { return b.e.RemoveAppLimit(admin, "/usr/bin/x", 1000) }, ErrNotFound, "no rule"},
		{"remove pid 0", func() error { return b.e.RemoveProcessLimit(admin, 0, 0) }, ErrInvalid, "not a process id"},
		{"uid of pid 0", func() error { _, _, err := b.e.ProcessIdentity(0); return err }, ErrInvalid, "not a process id"},
		{"uid of missing", func() error { _, _, err := b.e.ProcessIdentity(99999); return err }, ErrNotFound, "no process"},
	}
	for _, c := range cases {
		err := c.call()
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
	if len(b.mgr.Targets()) != 0 || len(b.e.Rules()) != 0 {
		t.Errorf("rejected calls left state: targets %v rules %v", b.mgr.Targets(), b.e.Rules())
	}
	// Traffic types the backend cannot do are refused.
	b.up.Caps.TrafficTypes = []backends.TrafficType{backends.TrafficAll}
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 5, Traffic: "local"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cannot limit local") {
		t.Errorf("unsupported traffic type: %v", err)
	}
	// Ownership for authorization.
	b.proc.add(fp{pid: 500, ppid: 1, uid: 1000, exe: "/usr/bin/sudo", setEUID: true, euid: 0})
	for pid, want := range map[int]uint32{100: 1000, 200: 1001, 500: 0, 2: 0} {
		if got, _, err := b.e.ProcessIdentity(pid); err != nil || got != want {
			t.Errorf("ProcessIdentity(%d) = %d, %v; want %d", pid, got, err, want)
		}
	}
}

func TestFailedApplyLeavesNothing(t *testing.T) {
	b := newBench(t, firefoxProcs)
	b.up.SetErr = errors.New("kernel says no")
	err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1000})
	if err == nil || !strings.Contains(err.Error(), "kernel says no") {
		t.Fatalf("SetAppLimit with a failing backend: %v", err)
	}
	if len(b.e.Rules()) != 0 || len(b.mgr.Targets()) != 0 || len(b.place.Placed) != 0 {
		t.Errorf("failed SetAppLimit left rules %v targets %v placed %v", b.e.Rules(), b.mgr.Targets(), b.place.Placed)
	}
	if st, _ := rules.Open(b.state); len(st.All()) != 0 {
		t.Errorf("failed SetAppLimit persisted %v", st.All())
	}
	if err := b.e.SetProcessLimit(admin, 100, 0, api.Limit{Up: 1}); err == nil {
		t.Error("SetProcessLimit with a failing backend succeeded")
	}
	if len(b.mgr.Targets()) != 0 || !b.e.Idle() {
		t.Errorf("failed SetProcessLimit left targets %v", b.mgr.Targets())
	}
	// An update that fails keeps the previous limit.
	b.up.SetErr = nil
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	b.up.SetErr = errors.New("kernel says no")
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 2000}); err == nil {
		t.Fatal("failing update succeeded")
	}
	if l, _ := b.up.Limit(appA); l.Rate != 1000 || b.e.Rules()[0].Limit.Up != 1000 {
		t.Errorf("after a failed update: kernel %+v rule %+v", l, b.e.Rules())
	}
	// A process that exits during the call: clean ErrNotFound, nothing left.
	b.up.SetErr = nil
	b.place.PlaceErr = errors.New("no such process")
	b.proc.remove(200)
	if err := b.e.SetProcessLimit(admin, 200, 0, api.Limit{Up: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("process gone before the call: %v", err)
	}
}

func TestProcessExitingDuringApply(t *testing.T) {
	b := newBench(t, firefoxProcs)
	// The placer fails as the real one does when a process is gone; the
	// process is removed from /proc at that moment.
	gone := &vanishingPlacer{FakePlacer: backends.NewFakePlacer(), proc: b.proc, pid: 101}
	mgr, _ := backends.NewManager(b.up, b.down, nil, gone)
	b.e.mgr = mgr
	mgr.Init()
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1000}); err != nil {
		t.Fatalf("SetAppLimit while a process exits: %v", err)
	}
	if pids, _ := b.target(appA); !slices.Equal(pids, []int{100}) {
		t.Errorf("target = %v, want [100] (101 exited during the call)", pids)
	}
	gone.pid = 100
	if err := b.e.SetProcessLimit(admin, 100, 0, api.Limit{Up: 5}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "exited") {
		t.Errorf("SetProcessLimit on a process that exits during the call: %v", err)
	}
	if _, ok := b.target(pidTargetID(100, 1000)); ok {
		t.Error("target left for a process that exited during the call")
	}
}

type vanishingPlacer struct {
	*backends.FakePlacer
	mu   sync.Mutex
	proc *fakeProc
	pid  int
}

func (v *vanishingPlacer) Place(id string, pids []int) (backends.Cgroup, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if slices.Contains(pids, v.pid) {
		v.proc.remove(v.pid)
		return backends.Cgroup{}, errors.New("move process: no such process")
	}
	return v.FakePlacer.Place(id, pids)
}

func TestPauseAndResume(t *testing.T) {
	b := newBench(t, firefoxProcs)
	for _, uid := range []uint32{1000, 1001} {
		if err := b.e.SetAppLimit(asUID(uid), firefox, uid, api.Limit{Up: 1000}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.e.SetProcessLimit(asUID(1000), 101, 0, api.Limit{Up: 10}); err != nil {
		t.Fatal(err)
	}
	all := []string{appA, appB, pidTargetID(101, 1010)}
	slices.Sort(all)
	if got := b.mgr.Targets(); !slices.Equal(got, all) {
		t.Fatalf("targets %v, want %v", got, all)
	}
	if err := b.e.SetPaused(1000, false, true); err != nil {
		t.Fatal(err)
	}
	if got := b.mgr.Targets(); !slices.Equal(got, []string{appB}) {
		t.Errorf("uid 1000 paused: targets %v, want only %s", got, appB)
	}
	if !b.e.Status(1000).Paused || b.e.Status(1001).Paused || len(b.e.Rules()) != 2 {
		t.Errorf("status 1000 %+v, 1001 %+v, rules %v", b.e.Status(1000), b.e.Status(1001), b.e.Rules())
	}
	// New processes of a paused user are not limited.
	b.proc.add(fp{pid: 102, ppid: 1, uid: 1000, exe: firefox})
	b.scan()
	if got := b.mgr.Targets(); !slices.Equal(got, []string{appB}) {
		t.Errorf("paused rule applied to a new process: %v", got)
	}
	if err := b.e.SetPaused(1000, false, false); err != nil {
		t.Fatal(err)
	}
	if got := b.mgr.Targets(); !slices.Equal(got, all) {
		t.Errorf("resumed: targets %v, want %v", got, all)
	}
	if pids, _ := b.target(appA); !slices.Equal(pids, []int{100, 102}) {
		t.Errorf("resumed app target %v, want [100 102]", pids)
	}
	// Everyone's, then one user resumes alone.
	b.e.SetPaused(0, true, true)
	if got := b.mgr.Targets(); len(got) != 0 || !b.e.Status(4242).Paused {
		t.Errorf("all paused: targets %v", got)
	}
	b.e.SetPaused(1001, false, false)
	if got := b.mgr.Targets(); !slices.Equal(got, []string{appB}) {
		t.Errorf("1001 resumed alone: targets %v", got)
	}
	b.e.SetPaused(0, true, false)
	if got := b.mgr.Targets(); !slices.Equal(got, all) {
		t.Errorf("all resumed: targets %v, want %v", got, all)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	b := newBench(t, firefoxProcs)
	b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1000, Down: 1000})
	b.e.SetProcessLimit(admin, 200, 0, api.Limit{Up: 1})
	if len(b.mgr.Targets()) != 2 {
		t.Fatalf("targets %v", b.mgr.Targets())
	}
	if err := b.e.Close(); err != nil {
		t.Fatal(err)
	}
	if len(b.mgr.Targets()) != 0 || len(b.place.Placed) != 0 {
		t.Errorf("after Close: targets %v placed %v", b.mgr.Targets(), b.place.Placed)
	}
	if _, ok := b.up.Limit(appA); ok {
		t.Error("upload limit left after Close")
	}
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetAppLimit after Close: %v", err)
	}
	if st, _ := rules.Open(b.state); len(st.All()) != 1 {
		t.Errorf("Close lost the rules: %v", st.All())
	}
	if err := b.e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.e.Run(context.Background()); err != nil {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestStatusAndBackends(t *testing.T) {
	b := newBench(t, nil, func(b *bench, c *Config) {
		c.Backends = []backends.Status{
			{Kind: backends.KindMonitor, Name: "fake", Priority: backends.Fallback, Available: true},
			{Kind: backends.KindUpload, Name: "fake_upload", Priority: backends.Fallback, Available: true},
			{Kind: backends.KindUpload, Name: "ebpf", Priority: backends.Best, Available: false, Reason: "no BTF"},
			{Kind: backends.KindDownload, Name: "fake_download", Priority: backends.Fallback, Available: true},
		}
	})
	st := b.e.Status(1000)
	want := api.Status{Version: api.Version, Monitor: "fake", Upload: "fake_upload", Download: "fake_download", Interfaces: "eth0"}
	if st != want {
		t.Errorf("status %+v, want %+v", st, want)
	}
	got := b.e.Backends()
	if len(got) != 5 || !got[0].Active || !got[1].Active || got[2].Active || got[2].Reason != "no BTF" || !got[3].Active || got[2].Priority != 4 {
		t.Errorf("backends %+v", got)
	}
	if bg := got[4]; bg.Kind != KindBudget || !bg.Active {
		t.Errorf("the quotas' byte budgets: %+v, want active (the fake blocker keeps them)", bg)
	}
}

func TestNewFailsCleanly(t *testing.T) {
	up := backends.NewFakeUpload()
	mgr, _ := backends.NewManager(up, nil, nil, nil)
	store, _ := rules.Open(t.TempDir())
	if _, err := New(Config{Manager: mgr, Rules: store, ProcRoot: "/nonexistent/proc"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/proc") {
		t.Errorf("New with a missing proc root: %v", err)
	}
	if _, err := New(Config{Rules: store}); err == nil {
		t.Error("New without a manager succeeded")
	}
	if _, err := New(Config{Manager: mgr}); err == nil {
		t.Error("New without a rules store succeeded")
	}
	up.InitErr = errors.New("no qdisc")
	if _, err := New(Config{Manager: mgr, Rules: store}); err == nil || !strings.Contains(err.Error(), "no qdisc") {
		t.Errorf("New with a failing upload backend: %v", err)
	}
	mon := backends.NewFakeMonitor()
	up.InitErr = nil
	mgr2, _ := backends.NewManager(backends.NewFakeUpload(), nil, nil, nil)
	mon.UpdateErr = errors.New("capture died")
	e, err := New(Config{Manager: mgr2, Rules: store, Monitor: mon, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.tick(time.Now(), true, true) // a monitor error is logged, not fatal
	e.Close()
}

// TestConcurrentCalls runs Run while many goroutines set and remove limits
// and read snapshots (meaningful under -race): every call succeeds or fails
// with a documented error, and the final state matches the last calls.
func TestConcurrentCalls(t *testing.T) {
	b := newBench(t, firefoxProcs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.e.Run(ctx) }()
	var wg sync.WaitGroup
	deadline := time.Now().Add(1500 * time.Millisecond)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				switch g {
				case 0, 1:
					uid := uint32(1000 + g)
					if err := b.e.SetAppLimit(admin, firefox, uid, api.Limit{Up: uint64(1000 + i)}); err != nil {
						t.Errorf("SetAppLimit: %v", err)
						return
					}
					if err := b.e.RemoveAppLimit(admin, firefox, uid); err != nil {
						t.Errorf("RemoveAppLimit: %v", err)
						return
					}
				case 2:
					if err := b.e.SetProcessLimit(admin, 101, 0, api.Limit{Down: uint64(1 + i)}); err != nil {
						t.Errorf("SetProcessLimit: %v", err)
						return
					}
					if err := b.e.RemoveProcessLimit(admin, 101, 0); err != nil {
						t.Errorf("RemoveProcessLimit: %v", err)
						return
					}
				case 3:
					b.e.SetPaused(1000, false, i%2 == 0)
				case 4:
					for _, a := range b.e.Snapshot().Apps {
						if _, err := b.e.AppDetails(a.ID); err != nil && !errors.Is(err, ErrNotFound) {
							t.Errorf("AppDetails: %v", err)
						}
					}
					b.e.Rules()
					b.e.Status(1000)
					b.e.Idle()
				case 5:
					pid := 300 + i%50
					b.proc.add(fp{pid: pid, ppid: 100, uid: 1000, exe: firefox})
					time.Sleep(2 * time.Millisecond)
					b.proc.remove(pid)
				}
			}
		}(g)
	}
	wg.Wait()
	b.e.SetPaused(0, true, false)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(b.e.Rules()) != 0 || !b.e.Idle() {
		t.Errorf("rules left: %v", b.e.Rules())
	}
	b.scan()
	if got := b.mgr.Targets(); len(got) != 0 {
		t.Errorf("targets left: %v", got)
	}
}

// publicTempDir is a t.TempDir that everyone may search.
func publicTempDir(t *testing.T) string {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	return dir
}

func TestRuleThroughSymlink(t *testing.T) {
	dir := publicTempDir(t)
	real := filepath.Join(dir, "lib", "realapp")
	link := filepath.Join(dir, "bin", "app")
	os.MkdirAll(filepath.Dir(real), 0o755)
	os.MkdirAll(filepath.Dir(link), 0o755)
	os.WriteFile(real, []byte("#!/bin/true\n"), 0o755)
	if err := os.Symlink("../lib/realapp", link); err != nil {
		t.Fatal(err)
	}
	// /proc/PID/exe names the real file.
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: real})
	})
	if err := b.e.SetAppLimit(admin, link, 1000, api.Limit{Up: 10}); err != nil {
		t.Fatal(err)
	}
	if r := b.e.Rules(); len(r) != 1 || r[0].Exe != real {
		t.Fatalf("rules %+v, want the rule on %s", r, real)
	}
	if pids, _ := b.target(appTargetID(appKey{1000, real})); !slices.Equal(pids, []int{100}) {
		t.Errorf("target %v", pids)
	}
	if err := b.e.RemoveAppLimit(admin, link, 1000); err != nil {
		t.Errorf("RemoveAppLimit through the symlink: %v", err)
	}
	if len(b.e.Rules()) != 0 || len(b.mgr.Targets()) != 0 {
		t.Errorf("left: %v %v", b.e.Rules(), b.mgr.Targets())
	}
}

// A link is resolved with the caller's credentials: a link in a directory
// the caller may not search stays as given; magic links in /proc are never
// followed.
func TestSymlinkInPrivateDirIsNotResolved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read as another uid") // the helper test covers it in CI
	}
	dir := publicTempDir(t)
	private := filepath.Join(dir, "private")
	os.MkdirAll(private, 0o700)
	os.WriteFile(filepath.Join(private, "secret-target"), nil, 0o755)
	link := filepath.Join(private, "link")
	os.Symlink("secret-target", link)
	if got := resolveExe(link, 1000); got != link {
		t.Errorf("resolveExe as uid 1000 revealed %q", got)
	}
	if got := resolveExe(link, 0); got != filepath.Join(private, "secret-target") {
		t.Errorf("resolveExe as root = %q", got)
	}
	os.Chmod(private, 0o755)
	if got := resolveExe(link, 1000); got != filepath.Join(private, "secret-target") {
		t.Errorf("resolveExe in a public dir = %q", got)
	}
	cwd := filepath.Join(dir, "cwd")
	os.Symlink("/proc/1/cwd", cwd)
	if got := resolveExe(cwd, 0); got != cwd {
		t.Errorf("resolveExe followed a magic link to %q", got)
	}
	if _, err := parseExe("/proc/1/cwd", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("parseExe(/proc/1/cwd): %v", err)
	}
}

// A limit set with manage binds its target: the owner can neither lift,
// change nor pause it; an administrator can.
func TestAdminLimitsAreNotAdvisory(t *testing.T) {
	b := newBench(t, firefoxProcs)
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := b.e.SetProcessLimit(admin, 101, 0, api.Limit{Up: 10}); err != nil {
		t.Fatal(err)
	}
	owner := asUID(1000)
	for name, err := range map[string]error{
		"remove rule":   b.e.RemoveAppLimit(owner, firefox, 1000),
		"change rule":   b.e.SetAppLimit(owner, firefox, 1000, api.Limit{Up: 1_000_000}),
		"zero rule":     b.e.SetAppLimit(owner, firefox, 1000, api.Limit{}),
		"remove limit":  b.e.RemoveProcessLimit(owner, 101, 0),
		"change limit":  b.e.SetProcessLimit(owner, 101, 0, api.Limit{Up: 5_000_000}),
		"other's limit": b.e.SetProcessLimit(owner, 200, 0, api.Limit{Up: 5}),
	} {
		if !errors.Is(err, ErrNeedsManage) {
			t.Errorf("%s by the owner: %v, want ErrNeedsManage", name, err)
		}
	}
	if r := b.e.Rules(); len(r) != 1 || r[0].Limit.Up != 1000 || !r[0].Admin {
		t.Errorf("rules after the owner's attempts: %+v", r)
	}
	all := []string{appA, pidTargetID(101, 1010)}
	slices.Sort(all)
	b.e.SetPaused(1000, false, true) // the owner's pause
	if got := b.mgr.Targets(); !slices.Equal(got, all) {
		t.Errorf("owner's pause lifted admin limits: targets %v", got)
	}
	b.e.SetPaused(0, true, true) // everyone's pause, then the owner resumes
	b.e.SetPaused(1000, false, false)
	if got := b.mgr.Targets(); len(got) != 0 {
		t.Errorf("owner's resume resumed the administrator's pause: targets %v", got)
	}
	b.e.SetPaused(0, true, false)
	if err := b.e.RemoveProcessLimit(admin, 101, 0); err != nil {
		t.Error(err)
	}
	if err := b.e.RemoveAppLimit(admin, firefox, 1000); err != nil {
		t.Error(err)
	}
}

// A user without manage has bounds: rules, process limits and path length.
func TestUserQuotas(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 1, ppid: 0, uid: 0, exe: "/usr/lib/systemd/systemd"})
		for i := 0; i < MaxUserProcessLimits+1; i++ {
			p.add(fp{pid: 1000 + i, ppid: 1, uid: 1000, exe: "/usr/bin/sleep"})
		}
	})
	u := asUID(1000)
	for i := 0; i < MaxUserRules; i++ {
		if err := b.e.SetAppLimit(u, fmt.Sprintf("/opt/app/a%d", i), 1000, api.Limit{Up: 1000}); err != nil {
			t.Fatalf("rule %d: %v", i, err)
		}
	}
	err := b.e.SetAppLimit(u, "/opt/app/one-more", 1000, api.Limit{Up: 1000})
	if !errors.Is(err, ErrQuota) || !strings.Contains(err.Error(), "256") {
		t.Errorf("rule %d: %v, want ErrQuota", MaxUserRules+1, err)
	}
	if err := b.e.SetAppLimit(u, "/opt/app/a0", 1000, api.Limit{Up: 2000}); err != nil {
		t.Errorf("changing an existing rule at the bound: %v", err)
	}
	if err := b.e.SetAppLimit(admin, "/opt/app/by-admin", 1000, api.Limit{Up: 1000}); err != nil {
		t.Errorf("an administrator is not bound: %v", err)
	}
	for i := 0; i < MaxUserProcessLimits; i++ {
		if err := b.e.SetProcessLimit(u, 1000+i, 0, api.Limit{Up: 1000}); err != nil {
			t.Fatalf("process limit %d: %v", i, err)
		}
	}
	if err := b.e.SetProcessLimit(u, 1000+MaxUserProcessLimits, 0, api.Limit{Up: 1000}); !errors.Is(err, ErrQuota) {
		t.Errorf("process limit %d: %v, want ErrQuota", MaxUserProcessLimits+1, err)
	}
	long := "/opt/" + strings.Repeat("x", MaxUserExeLen)
	if err := b.e.SetAppLimit(asUID(1001), long, 1001, api.Limit{Up: 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a %d-byte path without manage: %v", len(long), err)
	}
	if err := b.e.SetAppLimit(admin, long, 1001, api.Limit{Up: 1}); err != nil {
		t.Errorf("a %d-byte path with manage: %v", len(long), err)
	}
}

// A limit a user set ends when its process's credentials change (a setuid
// program), descendants of another owner stay out of it, and a user's rule
// does not bind a setuid program someone else runs.
func TestUserLimitEndsWhenCredentialsChange(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 1, ppid: 0, uid: 0, exe: "/usr/lib/systemd/systemd"})
		p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/bin/bash"})
		p.add(fp{pid: 101, ppid: 100, uid: 1000, exe: "/usr/bin/curl"})
		p.add(fp{pid: 102, ppid: 100, uid: 1000, euid: 0, setEUID: true, exe: "/usr/bin/sudo"}) // setuid child
		p.add(fp{pid: 200, ppid: 1, uid: 1001, euid: 1000, exe: "/usr/bin/bash"})               // someone else's setuid-to-1000 program
	})
	u := asUID(1000)
	if err := b.e.SetProcessLimit(u, 100, 0, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	if pids, _ := b.target(pidTargetID(100, 1000)); !slices.Equal(pids, []int{100, 101}) {
		t.Errorf("target %v, want [100 101] (not the setuid child)", pids)
	}
	if err := b.e.SetAppLimit(u, "/usr/bin/bash", 1000, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.target(appTargetID(appKey{1000, "/usr/bin/bash"})); ok {
		t.Errorf("uid 1000's rule binds uid 1001's setuid process")
	}
	// pid 100 execs a setuid-root program.
	b.proc.add(fp{pid: 100, ppid: 1, uid: 1000, euid: 0, setEUID: true, exe: "/usr/bin/su", start: 1000})
	b.e.execed(100)
	b.e.handleExecs()
	if _, ok := b.target(pidTargetID(100, 1000)); ok {
		t.Errorf("the limit still binds pid 100 after it became setuid root")
	}
	if d, _ := b.e.AppDetails("0:/usr/bin/su"); len(d.Processes) == 1 && d.Processes[0].Limit.Up != 0 {
		t.Errorf("pid 100 still shows a limit: %+v", d.Processes[0])
	}
}

// TestRuleAppliedBeforeProcessWithTags: with a placer that tags sockets in
// the kernel, a rule is applied before any process of its app runs (its
// first socket is then the app's), with the executable and uid that
// recognise the app; without one, a rule waits for a process.
func TestRuleAppliedBeforeProcessWithTags(t *testing.T) {
	absent, err := os.Executable() // installed, not among the fake processes
	if err != nil {
		t.Fatal(err)
	}
	b := newBench(t, firefoxProcs, withTagPlacer())
	if err := b.e.SetAppLimit(admin, absent, 1001, api.Limit{Down: 5000}); err != nil {
		t.Fatal(err)
	}
	id := appTargetID(appKey{uid: 1001, exe: absent})
	tg, ok := b.tags.Target(id)
	if !ok || tg.Kind != backends.TargetApp || tg.Exe != absent || tg.UID != 1001 || len(tg.PIDs) != 0 || tg.Tag == 0 {
		t.Fatalf("rule on an app not running: target %+v (placed %v)", tg, ok)
	}
	if l, ok := b.down.Limit(id); !ok || l.Rate != 5000 {
		t.Errorf("download limit = %+v, %v", l, ok)
	}
	if err := b.e.RemoveAppLimit(admin, absent, 1001); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.tags.Target(id); ok {
		t.Error("target left after the rule was removed")
	}
	const missing = "/usr/bin/not-installed-here"
	if err := b.e.SetAppLimit(admin, missing, 1001, api.Limit{Down: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.tags.Target(appTargetID(appKey{uid: 1001, exe: missing})); ok {
		t.Error("a rule on a program not installed was applied")
	}

	plain := newBench(t, firefoxProcs)
	if err := plain.e.SetAppLimit(admin, absent, 1001, api.Limit{Down: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.down.Limit(id); ok {
		t.Error("without socket tags a rule on an app not running was applied")
	}
}
