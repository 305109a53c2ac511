package engine

import (
	"errors"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/rules"
)

func withoutGlobal() benchOpt { return func(b *bench, _ *Config) { b.glob = nil } }

// TestGlobalLimit: only manage sets the global limit; it reaches the
// shaper, is persisted and restored by a new engine; bad input changes
// nothing.
func TestGlobalLimit(t *testing.T) {
	b := newBench(t, firefoxProcs)
	g := api.GlobalLimit{Down: 10_000_000, Up: 1_000_000}
	if err := b.e.SetGlobalLimit(asUID(1000), g); !errors.Is(err, ErrNeedsManage) {
		t.Errorf("a user set the global limit: %v", err)
	}
	if err := b.e.SetGlobalLimit(admin, api.GlobalLimit{Down: api.MaxRate + 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("above the maximum: %v", err)
	}
	if err := b.e.SetGlobalLimit(admin, g); err != nil {
		t.Fatal(err)
	}
	if got := b.glob.Global(); got.Down != 10_000_000 || got.Up != 1_000_000 {
		t.Errorf("shaper has %+v", got)
	}
	if b.e.GlobalLimit() != g || b.store.Global() != g || b.e.Idle() {
		t.Errorf("engine %+v store %+v idle %v", b.e.GlobalLimit(), b.store.Global(), b.e.Idle())
	}
	if s, err := rules.Open(b.state); err != nil || s.Global() != g {
		t.Errorf("persisted %+v %v", s.Global(), err)
	}
	b.glob.SetErr = errors.New("kernel says no")
	if err := b.e.SetGlobalLimit(admin, api.GlobalLimit{Down: 5}); err == nil || b.store.Global() != g {
		t.Errorf("a refused change: %v, stored %+v", err, b.store.Global())
	}
	b.glob.SetErr = nil
	if err := b.e.RemoveGlobalLimit(admin); err != nil || !b.glob.Global().IsZero() || !b.store.Global().IsZero() {
		t.Errorf("remove: %v, shaper %+v, store %+v", err, b.glob.Global(), b.store.Global())
	}
	nb := newBench(t, firefoxProcs, withoutGlobal())
	if err := nb.e.SetGlobalLimit(admin, g); !errors.Is(err, backends.ErrGlobalUnavailable) {
		t.Errorf("without a shaper: %v", err)
	}
}

// TestAppPriority: a user gives their own app a priority (a rule, with
// its rates kept); normal removes it. (Another user's app needs manage:
// the server checks the owner.)
func TestAppPriority(t *testing.T) {
	b := newBench(t, firefoxProcs)
	user := asUID(1000)
	if err := b.e.SetAppPriority(user, firefox, 1000, "urgent"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown priority: %v", err)
	}
	if err := b.e.SetAppLimit(user, firefox, 1000, api.Limit{Down: 5000}); err != nil {
		t.Fatal(err)
	}
	if err := b.e.SetAppPriority(user, firefox, 1000, "High"); err != nil {
		t.Fatal(err)
	}
	if p := b.glob.PriorityOf(appA); p != backends.PriorityHigh {
		t.Errorf("shaper has %v for %s", p, appA)
	}
	if r, ok := b.store.Get(firefox, 1000); !ok || r.Limit.Priority != "high" || r.Limit.Down != 5000 {
		t.Errorf("rule %+v %v", r, ok)
	}
	if a, _ := b.app("1000:" + firefox); a.Limit.Priority != "high" {
		t.Errorf("snapshot limit %+v", a.Limit)
	}
	if err := b.e.SetAppPriority(user, firefox, 1000, "normal"); err != nil {
		t.Fatal(err)
	}
	if p := b.glob.PriorityOf(appA); p != backends.PriorityNormal {
		t.Errorf("after normal: %v", p)
	}
	if r, _ := b.store.Get(firefox, 1000); r.Limit.Priority != "" || r.Limit.Down != 5000 {
		t.Errorf("rule after normal %+v", r)
	}
	nb := newBench(t, firefoxProcs, withoutGlobal())
	if err := nb.e.SetAppPriority(user, firefox, 1000, "low"); !errors.Is(err, backends.ErrGlobalUnavailable) {
		t.Errorf("without a shaper: %v", err)
	}
}
