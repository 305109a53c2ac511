package engine

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

func withoutBlocker() benchOpt { return func(b *bench, _ *Config) { b.block = nil } }

// clock is an injected local-time clock for schedules.
type clock struct{ t time.Time }

func withClock(c *clock) benchOpt {
	return func(_ *bench, cfg *Config) { cfg.Now = func() time.Time { return c.t } }
}

func (b *bench) blocked(id string) (backends.TrafficType, []int, bool) {
	tt, ok := b.block.Blocked(id)
	t, _ := b.block.Target(id)
	return tt, t.PIDs, ok
}

// TestAppBlock: a user blocks their own app (a rule, persisted), its rates
// and its block are set and lifted independently, and a block an
// administrator set binds the user.
func TestAppBlock(t *testing.T) {
	b := newBench(t, firefoxProcs)
	user := asUID(1000)
	if err := b.e.SetAppBlock(user, firefox, 1000, "internet", ""); err != nil {
		t.Fatal(err)
	}
	if tt, pids, ok := b.blocked(appA); !ok || tt != backends.TrafficInternet || !slices.Equal(pids, []int{100, 101}) {
		t.Fatalf("blocker holds %v %v %v, want internet on [100 101]", tt, pids, ok)
	}
	if r, ok := b.store.Get(firefox, 1000); !ok || r.Limit.Block != "internet" {
		t.Errorf("persisted rule %+v %v, want block internet", r, ok)
	}
	if a, _ := b.app("1000:" + firefox); a.Limit.Block != "internet" || !a.Rule {
		t.Errorf("snapshot limit %+v rule %v", a.Limit, a.Rule)
	}
	// Rates join the block and leave it in place.
	if err := b.e.SetAppLimit(user, firefox, 1000, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := b.blocked(appA); !ok {
		t.Error("a limit lifted the block")
	}
	if err := b.e.RemoveAppLimit(user, firefox, 1000); err != nil {
		t.Fatal(err)
	}
	if r, ok := b.store.Get(firefox, 1000); !ok || r.Limit.Up != 0 || r.Limit.Block != "internet" {
		t.Errorf("after unlimit: rule %+v %v, want the block alone", r, ok)
	}
	if err := b.e.RemoveAppBlock(user, firefox, 1000); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := b.blocked(appA); ok {
		t.Error("still blocked after RemoveAppBlock")
	}
	if _, ok := b.store.Get(firefox, 1000); ok {
		t.Error("a rule limiting nothing was kept")
	}
	if err := b.e.RemoveAppBlock(user, firefox, 1000); !errors.Is(err, ErrNotFound) {
		t.Errorf("second RemoveAppBlock: %v, want ErrNotFound", err)
	}
	// An administrator's block binds the user.
	if err := b.e.SetAppBlock(admin, firefox, 1000, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := b.e.RemoveAppBlock(user, firefox, 1000); !errors.Is(err, ErrNeedsManage) {
		t.Errorf("user lifting an admin block: %v, want ErrNeedsManage", err)
	}
	if tt, _, ok := b.blocked(appA); !ok || tt != backends.TrafficAll {
		t.Errorf("admin block: %v %v, want all", tt, ok)
	}
	for _, bad := range []struct{ traffic, when string }{{"lan", ""}, {"all", "Mon 25:00-26:00"}} {
		if err := b.e.SetAppBlock(admin, firefox, 1000, bad.traffic, bad.when); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetAppBlock(%q, %q) = %v, want ErrInvalid", bad.traffic, bad.when, err)
		}
	}
}

// TestProcessBlock: a process block holds the process and its children,
// and goes with RemoveProcessBlock while a rate limit stays.
func TestProcessBlock(t *testing.T) {
	b := newBench(t, firefoxProcs)
	user := asUID(1000)
	if err := b.e.SetProcessBlock(user, 200, 0, "all", ""); !errors.Is(err, ErrNeedsManage) {
		t.Errorf("blocking another user's process: %v, want ErrNeedsManage", err)
	}
	if err := b.e.SetProcessLimit(user, 101, 0, api.Limit{Down: 500}); err != nil {
		t.Fatal(err)
	}
	if err := b.e.SetProcessBlock(user, 101, 0, "local", ""); err != nil {
		t.Fatal(err)
	}
	id := pidTargetID(101, 1010)
	if tt, pids, ok := b.blocked(id); !ok || tt != backends.TrafficLocal || !slices.Equal(pids, []int{101}) {
		t.Fatalf("blocker holds %v %v %v, want local on [101]", tt, pids, ok)
	}
	if err := b.e.RemoveProcessBlock(user, 101, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := b.blocked(id); ok {
		t.Error("still blocked")
	}
	if l, ok := b.down.Limit(id); !ok || l.Rate != 500 {
		t.Errorf("the rate limit went with the block: %v %v", l, ok)
	}
}

func TestBlockUnavailable(t *testing.T) {
	b := newBench(t, firefoxProcs, withoutBlocker())
	if err := b.e.SetAppBlock(admin, firefox, 1000, "", ""); !errors.Is(err, backends.ErrBlockUnavailable) {
		t.Errorf("SetAppBlock without a blocker: %v, want ErrBlockUnavailable", err)
	}
	if err := b.e.BlockAvailable(); err == nil {
		t.Error("BlockAvailable without a blocker")
	}
}

// TestScheduleSwitches: with an injected clock, a scheduled limit and a
// scheduled block switch on and off at their boundaries on the next scan
// (Run scans every 250 ms).
func TestScheduleSwitches(t *testing.T) {
	// Monday 2026-11-30 08:59:59 local time.
	c := &clock{t: time.Date(2026, 11, 30, 8, 59, 59, 0, time.Local)}
	b := newBench(t, firefoxProcs, withClock(c))
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Up: 1000, When: "Mon-Fri 09:00-17:00"}); err != nil {
		t.Fatal(err)
	}
	if err := b.e.SetAppBlock(admin, firefox, 1000, "all", "Mon 22:00-06:00"); err != nil {
		t.Fatal(err)
	}
	scheduleTimeline(t, b, c, appA)
}

// TestBlockBeforeItRuns: a block on an app that does not run is handed to
// the blocker at once with the program and owner (so its first process is
// refused before it is placed); rates wait for a process.
func TestBlockBeforeItRuns(t *testing.T) {
	b := newBench(t, firefoxProcs)
	const exe = "/usr/bin/updater"
	id := appTargetID(appKey{1000, exe})
	if err := b.e.SetAppLimit(asUID(1000), exe, 1000, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.up.Limit(id); ok {
		t.Error("a rate limit was applied to an app with no process")
	}
	if err := b.e.SetAppBlock(asUID(1000), exe, 1000, "", ""); err != nil {
		t.Fatal(err)
	}
	tg, ok := b.block.Target(id)
	if !ok || tg.Exe != exe || tg.UID != 1000 || len(tg.PIDs) != 0 {
		t.Fatalf("blocker target %+v (%v), want %s of uid 1000 without processes", tg, ok, exe)
	}
	if _, ok := b.up.Limit(id); ok {
		t.Error("a rate limit was applied to an app with no process")
	}
	b.proc.add(fp{pid: 300, ppid: 1, uid: 1000, exe: exe})
	b.scan()
	if tg, _ := b.block.Target(id); !slices.Equal(tg.PIDs, []int{300}) {
		t.Errorf("after the first process: blocker pids %v", tg.PIDs)
	}
	if l, ok := b.up.Limit(id); !ok || l.Rate != 1000 {
		t.Errorf("after the first process: upload limit %v %v", l, ok)
	}
}
