package quota

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/engine"
	"github.com/chadthrottle/chadthrottle/helper/daemon/history"
)

// fakeEngine records the quota limits it is given (unit tests of the
// manager's logic; the kernel test is in cmd/chadthrottle-helper).
type fakeEngine struct {
	noBlock  error
	noBudget error
	mu       sync.Mutex
	limits   []engine.QuotaLimit
	budgets  map[string]*fakeBudget // by exe
}

type fakeBudget struct{ left, gen uint64 }

func (f *fakeEngine) ResolveExe(c api.Caller, exe string, uid uint32) (string, error) {
	return exe, nil
}
func (f *fakeEngine) CheckQuotaRate(api.Limit) error { return nil }
func (f *fakeEngine) BlockAvailable() error          { return f.noBlock }
func (f *fakeEngine) BudgetAvailable() error         { return f.noBudget }
func (f *fakeEngine) SetQuotaLimits(ls []engine.QuotaLimit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = ls
	next := map[string]*fakeBudget{}
	for _, l := range ls {
		if !l.Budget.On || f.noBudget != nil {
			continue
		}
		if b := f.budgets[l.Exe]; b != nil && b.gen == l.Budget.Gen {
			next[l.Exe] = b
		} else {
			next[l.Exe] = &fakeBudget{left: l.Budget.Bytes, gen: l.Budget.Gen}
		}
	}
	f.budgets = next
}
func (f *fakeEngine) QuotaBudgetLeft(uid uint32, exe string) (uint64, uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b := f.budgets[exe]; b != nil {
		return b.left, b.gen, true
	}
	return 0, 0, false
}

// spend has the kernel count n bytes against exe's budget.
func (f *fakeEngine) spend(exe string, n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b := f.budgets[exe]; b != nil {
		b.left -= min(n, b.left)
	}
}

// current returns the limits of the quotas whose action is in force.
func (f *fakeEngine) current() []engine.QuotaLimit {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.QuotaLimit
	for _, l := range f.limits {
		if l.Limit != (api.Limit{}) {
			out = append(out, l)
		}
	}
	return out
}

// budget returns the budget the engine was given for exe.
func (f *fakeEngine) budget(exe string) engine.QuotaBudget {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.limits {
		if l.Exe == exe {
			return l.Budget
		}
	}
	return engine.QuotaBudget{}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var loc = time.FixedZone("UTC+2", 2*3600)

func setup(t *testing.T, dir string, c *clock, fe *fakeEngine) (*Manager, *history.Store) {
	t.Helper()
	st, err := history.Open(history.Config{Dir: dir, Now: c.now, Loc: loc, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Store: st, Engine: fe, Now: c.now, Loc: loc, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

const exe = "/usr/bin/steam"

func use(m *Manager, c *clock, rx uint64) {
	m.Add(c.now(), []engine.AppUsage{{UID: 1000, Exe: exe, Rx: rx, Tx: 1}})
}

// TestDailyQuotaThrottlesAndRollsOver: 80 % warns, 100 % throttles the
// download at the quota's rate, a restart keeps usage and the action, the
// next local midnight lifts it, raising the cap lifts it at once.
func TestDailyQuotaThrottlesAndRollsOver(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 12, 3, 22, 0, 0, 0, loc)} // a Thursday
	fe := &fakeEngine{}
	m, st := setup(t, dir, c, fe)
	q := api.Quota{Exe: exe, UID: 1000, Period: api.QuotaDay, Bytes: 1000, Direction: api.QuotaDown, Action: api.QuotaThrottle, Rate: 500}
	if err := m.SetQuota(api.Caller{UID: 1000}, q); err != nil {
		t.Fatal(err)
	}
	use(m, c, 850)
	if s := m.Quotas()[0]; s.State != api.QuotaWarning || s.Used != 850 {
		t.Fatalf("at 85 %%: %+v", s)
	}
	use(m, c, 200)
	got := fe.current()
	if len(got) != 1 || got[0].Limit.Down != 500 || got[0].Limit.Up != 0 || m.Quotas()[0].State != api.QuotaReached {
		t.Fatalf("after the cap: limits %+v, quota %+v", got, m.Quotas()[0])
	}
	// Restart: the history and the quota survive, the action is back at once.
	st.Close()
	fe2 := &fakeEngine{}
	m, st = setup(t, dir, c, fe2)
	if s := m.Quotas()[0]; s.Used != 1050 || s.State != api.QuotaReached || len(fe2.current()) != 1 {
		t.Fatalf("after restart: %+v, limits %+v", s, fe2.current())
	}
	// Midnight (local): a new day, the action ends.
	c.set(time.Date(2026, 12, 4, 0, 0, 1, 0, loc))
	m.Tick()
	if s := m.Quotas()[0]; s.Used != 0 || s.State != api.QuotaOK || len(fe2.current()) != 0 {
		t.Fatalf("after midnight: %+v, limits %+v", s, fe2.current())
	}
	// Reached again, then the cap raised: lifted at once.
	use(m, c, 1000)
	if len(fe2.current()) != 1 {
		t.Fatal("not throttled after the cap")
	}
	q.Bytes = 5000
	if err := m.SetQuota(api.Caller{UID: 1000}, q); err != nil {
		t.Fatal(err)
	}
	if len(fe2.current()) != 0 || m.Quotas()[0].Used != 1000 {
		t.Fatalf("raised: limits %+v, quota %+v", fe2.current(), m.Quotas()[0])
	}
	q.Bytes = 10
	m.SetQuota(api.Caller{UID: 1000}, q)
	if err := m.RemoveQuota(api.Caller{UID: 1000}, exe, 1000); err != nil || len(fe2.current()) != 0 {
		t.Fatalf("removed: %v, limits %+v", err, fe2.current())
	}
	st.Close()
}

// TestPeriods: weeks start on Monday, months on the first, in local time.
func TestPeriods(t *testing.T) {
	at := time.Date(2026, 12, 3, 1, 0, 0, 0, loc) // Thursday 01:00 local, Wednesday in UTC
	for _, tc := range []struct {
		per        string
		start, end time.Time
	}{
		{api.QuotaDay, time.Date(2026, 12, 3, 0, 0, 0, 0, loc), time.Date(2026, 12, 4, 0, 0, 0, 0, loc)},
		{api.QuotaWeek, time.Date(2026, 11, 30, 0, 0, 0, 0, loc), time.Date(2026, 12, 7, 0, 0, 0, 0, loc)},
		{api.QuotaMonth, time.Date(2026, 12, 1, 0, 0, 0, 0, loc), time.Date(2027, 1, 1, 0, 0, 0, 0, loc)},
	} {
		s, e := PeriodBounds(tc.per, at, loc)
		if !s.Equal(tc.start) || !e.Equal(tc.end) {
			t.Errorf("%s: %v – %v, want %v – %v", tc.per, s, e, tc.start, tc.end)
		}
	}
	// A Monday is the first day of its own week.
	s, _ := PeriodBounds(api.QuotaWeek, time.Date(2026, 11, 30, 12, 0, 0, 0, loc), loc)
	if s.Day() != 30 {
		t.Errorf("week of Monday 30 Nov starts %v", s)
	}
}

// TestValidationAndBounds: bad input is refused with a clear error and
// changes nothing; block is not available yet; admin quotas bind users.
func TestValidationAndBounds(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, loc)}
	m, st := setup(t, t.TempDir(), c, &fakeEngine{noBlock: errors.New("no blocker here")})
	defer st.Close()
	user := api.Caller{UID: 1000}
	good := api.Quota{Exe: exe, UID: 1000, Period: api.QuotaWeek, Bytes: 10, Action: api.QuotaThrottle, Rate: 1}
	for _, bad := range []func(q *api.Quota){
		func(q *api.Quota) { q.Period = "year" },
		func(q *api.Quota) { q.Bytes = 0 },
		func(q *api.Quota) { q.Direction = "sideways" },
		func(q *api.Quota) { q.Rate = 0 },
		func(q *api.Quota) { q.Action = "explode" },
	} {
		q := good
		bad(&q)
		if err := m.SetQuota(user, q); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", q, err)
		}
	}
	q := good
	q.Action = api.QuotaBlock
	if err := m.SetQuota(user, q); !errors.Is(err, ErrUnavailable) {
		t.Errorf("block: %v, want ErrUnavailable", err)
	}
	if len(m.Quotas()) != 0 {
		t.Fatalf("refused quotas stored: %+v", m.Quotas())
	}
	if err := m.SetQuota(api.Caller{UID: 0, Admin: true}, good); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveQuota(user, exe, 1000); !errors.Is(err, ErrNeedsManage) {
		t.Errorf("user removing an admin's quota: %v", err)
	}
	for i := 0; i < MaxUserQuotas; i++ {
		q := good
		q.Exe = exe + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if err := m.SetQuota(user, q); err != nil {
			t.Fatalf("quota %d: %v", i, err)
		}
	}
	q = good
	q.Exe = "/one/too/many"
	if err := m.SetQuota(user, q); !errors.Is(err, ErrLimit) {
		t.Errorf("quota %d: %v, want ErrLimit", MaxUserQuotas+1, err)
	}
}

// TestBlockAction: a reached block quota blocks all the app's traffic
// until the next period.
func TestBlockAction(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 6, 23, 0, 0, 0, loc)} // a Sunday
	fe := &fakeEngine{}
	m, st := setup(t, t.TempDir(), c, fe)
	defer st.Close()
	q := api.Quota{Exe: exe, UID: 1000, Period: api.QuotaWeek, Bytes: 100, Action: api.QuotaBlock}
	if err := m.SetQuota(api.Caller{UID: 1000}, q); err != nil {
		t.Fatal(err)
	}
	use(m, c, 99) // 99 down + 1 up: both count
	if got := fe.current(); len(got) != 1 || got[0].Limit.Block != api.TrafficAll || got[0].Limit.Down != 0 {
		t.Fatalf("limits %+v, want a block", got)
	}
	c.set(time.Date(2026, 12, 7, 0, 0, 0, 0, loc)) // Monday: a new week
	m.Tick()
	if got := fe.current(); len(got) != 0 {
		t.Fatalf("after the week rolled over: %+v", got)
	}
}
