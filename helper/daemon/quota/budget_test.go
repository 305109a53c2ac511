package quota

import (
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestBudget: a quota not reached gives the kernel what is left of its cap,
// given anew only on set/raise, rollover and restart (samples keep it);
// when the kernel uses it up first the quota is reached at once (before
// the samples say so) and its action replaces the budget; raising the cap
// gives a new budget and lifts the action; a cap raised while the kernel
// counts ahead of the samples keeps the kernel's count.
func TestBudget(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 12, 3, 22, 0, 0, 0, loc)}
	fe := &fakeEngine{}
	m, st := setup(t, dir, c, fe)
	q := api.Quota{Exe: exe, UID: 1000, Period: api.QuotaDay, Bytes: 1000, Direction: api.QuotaDown, Action: api.QuotaThrottle, Rate: 500}
	if err := m.SetQuota(api.Caller{UID: 1000}, q); err != nil {
		t.Fatal(err)
	}
	b := fe.budget(exe)
	if !b.On || b.Bytes != 1000 || !b.Down || b.Up || b.Block {
		t.Fatalf("budget of a new quota: %+v", b)
	}
	use(m, c, 300)
	if b2 := fe.budget(exe); b2 != b {
		t.Fatalf("a sample changed the budget: %+v → %+v", b, b2)
	}
	fe.spend(exe, 1000) // the kernel counts faster than the samples
	m.PollBudgets()
	if s := m.Quotas()[0]; s.State != api.QuotaReached || s.Used != 1000 {
		t.Fatalf("after the kernel used the budget up: %+v", s)
	}
	if got := fe.current(); len(got) != 1 || got[0].Limit.Down != 500 || got[0].Budget.On {
		t.Fatalf("after the kernel used the budget up: limits %+v", got)
	}
	q.Bytes = 2000
	if err := m.SetQuota(api.Caller{UID: 1000}, q); err != nil {
		t.Fatal(err)
	}
	b3 := fe.budget(exe)
	if len(fe.current()) != 0 || !b3.On || b3.Bytes != 1700 || b3.Gen == b.Gen {
		t.Fatalf("raised: limits %+v, budget %+v", fe.current(), b3)
	}
	// Restart: what is left of the cap after the history's usage.
	st.Close()
	fe2 := &fakeEngine{}
	m, st = setup(t, dir, c, fe2)
	if b := fe2.budget(exe); !b.On || b.Bytes != 1700 {
		t.Fatalf("budget after restart: %+v", b)
	}
	// Midnight: a new day, the whole cap.
	c.set(time.Date(2026, 12, 4, 0, 0, 1, 0, loc))
	m.Tick()
	if b := fe2.budget(exe); !b.On || b.Bytes != 2000 {
		t.Fatalf("budget after midnight: %+v", b)
	}
	// Raised while the kernel is a sample ahead: what it has left carries.
	fe2.spend(exe, 500)
	q.Bytes = 3000
	if err := m.SetQuota(api.Caller{UID: 1000}, q); err != nil {
		t.Fatal(err)
	}
	if b := fe2.budget(exe); b.Bytes != 2500 {
		t.Fatalf("raised by 1000 with 1500 left in the kernel: budget %+v, want 2500", b)
	}
	q.Action, q.Direction = api.QuotaBlock, api.QuotaBoth
	if err := m.SetQuota(api.Caller{UID: 1000}, q); err != nil {
		t.Fatal(err)
	}
	if b := fe2.budget(exe); !b.Block || !b.Down || !b.Up {
		t.Fatalf("block quota on both directions: budget %+v", b)
	}
	if err := m.RemoveQuota(api.Caller{UID: 1000}, exe, 1000); err != nil || len(fe2.limits) != 0 {
		t.Fatalf("removed: %v, engine holds %+v", err, fe2.limits)
	}
	st.Close()
}
