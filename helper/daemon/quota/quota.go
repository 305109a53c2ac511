// Package quota keeps the helper's data quotas: per app (uid, executable)
// a cap of bytes per calendar day, week (starting Monday) or month in the
// machine's local time zone, counting download, upload or both. Usage comes
// from the traffic history (so it survives restarts) plus the bytes the
// engine reports each second; when the cap is reached the quota's action
// starts (a throttle to a rate, or a block, through the engine), and it
// ends at once when the quota is raised or removed
// or its period rolls over. Quotas persist in the history database and,
// like rules, follow the app's new processes.
package quota

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/engine"
	"github.com/chadthrottle/chadthrottle/helper/daemon/history"
)

// Errors of the manager's calls: the contract's kinds (helper/api), which
// the D-Bus server sends as their error names.
var (
	ErrInvalid     = api.ErrInvalid
	ErrNotFound    = api.ErrNoSuch
	ErrNeedsManage = api.ErrNeedsManage
	ErrLimit       = api.ErrQuota
	ErrUnavailable = api.ErrNotHere
)

// Bounds of callers without manage.
const (
	MaxUserQuotas = 256
	MaxQuotas     = 4096
)

// Engine is what the manager needs of the engine.
type Engine interface {
	// ResolveExe checks exe and returns the path a quota matches.
	ResolveExe(c api.Caller, exe string, uid uint32) (string, error)
	// CheckQuotaRate checks that a throttle limit can be enforced.
	CheckQuotaRate(l api.Limit) error
	// BlockAvailable returns nil when apps can be blocked, else why not.
	BlockAvailable() error
	// SetQuotaLimits replaces the limits and budgets of the quotas.
	SetQuotaLimits(ls []engine.QuotaLimit)
	// QuotaBudgetLeft returns the bytes the kernel's budget of an app has
	// left and the budget's Gen, ok when one is in force.
	QuotaBudgetLeft(uid uint32, exe string) (left, gen uint64, ok bool)
	// BudgetAvailable returns nil when the kernel keeps byte budgets.
	BudgetAvailable() error
}

// Config configures a Manager.
type Config struct {
	Store  *history.Store
	Engine Engine
	// Now is the clock (nil: time.Now); Loc the time zone of periods
	// (nil: time.Local).
	Now  func() time.Time
	Loc  *time.Location
	Logf func(format string, args ...any)
}

// Manager keeps the quotas. It is safe for concurrent use.
type Manager struct {
	cfg Config

	mu       sync.Mutex
	quotas   map[history.Key]*entry
	onChange []func()
	lastGen  uint64
}

type entry struct {
	q      api.Quota // Used, State, PeriodStart/End kept current
	rx, tx uint64    // bytes in the period
	start  time.Time
	end    time.Time
	// The kernel's byte budget (budget.go): what was left of the cap when
	// it was given, its generation, and whether the kernel used it up.
	budget, gen uint64
	spent       bool
}

// New loads the persisted quotas and their usage in the current periods,
// and applies the actions of those already reached.
func New(cfg Config) (*Manager, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Loc == nil {
		cfg.Loc = time.Local
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	m := &Manager{cfg: cfg, quotas: map[history.Key]*entry{}}
	if err := cfg.Engine.BudgetAvailable(); err != nil {
		cfg.Logf("quota: %v: quotas act on the helper's one-second samples and may overshoot by a second of traffic", err)
	}
	recs, err := cfg.Store.Quotas()
	if err != nil {
		return nil, err
	}
	now := cfg.Now()
	for _, r := range recs {
		q := fromRecord(r)
		if err := validate(&q); err != nil {
			cfg.Logf("quota: skipping stored quota on %s of uid %d: %v", r.Exe, r.UID, err)
			continue
		}
		e := &entry{q: q}
		if err := m.reload(e, now); err != nil {
			return nil, err
		}
		m.quotas[r.Key] = e
	}
	m.mu.Lock()
	m.evaluateLocked(now)
	m.mu.Unlock()
	return m, nil
}

// OnChange registers fn, called (without the manager's lock) when a
// quota's state changes: 80 %, reached, action started or lifted.
func (m *Manager) OnChange(fn func()) {
	m.mu.Lock()
	m.onChange = append(m.onChange, fn)
	m.mu.Unlock()
}

// Count returns the number of quotas (the helper stays while there are any).
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.quotas)
}

// reload reads e's usage in the period holding now from the history.
func (m *Manager) reload(e *entry, now time.Time) error {
	e.start, e.end = PeriodBounds(e.q.Period, now, m.cfg.Loc)
	rx, tx, err := m.cfg.Store.Usage(history.Key{UID: e.q.UID, Exe: e.q.Exe}, e.start)
	if err != nil {
		return fmt.Errorf("usage of %s: %w", e.q.Exe, err)
	}
	e.rx, e.tx = rx, tx
	m.refreshBudget(e)
	return nil
}

// Add records one second of usage: into the history, and into the
// quotas of the apps it names. It is the engine's Config.Usage.
func (m *Manager) Add(t time.Time, us []engine.AppUsage) {
	ds := make([]history.Delta, 0, len(us))
	for _, u := range us {
		ds = append(ds, history.Delta{Key: history.Key{UID: u.UID, Exe: u.Exe}, Name: u.Name, Rx: u.Rx, Tx: u.Tx})
	}
	m.mu.Lock()
	m.cfg.Store.Add(t, ds) // under mu: a reload sees a delta either in the store or not yet added here
	for _, d := range ds {
		if e := m.quotas[d.Key]; e != nil {
			e.rx += d.Rx
			e.tx += d.Tx
		}
	}
	changed := m.evaluateLocked(m.cfg.Now())
	m.mu.Unlock()
	if changed {
		m.notify()
	}
}

// Tick rolls periods over and re-evaluates; the helper calls it every
// few seconds even when no traffic is reported.
func (m *Manager) Tick() {
	m.mu.Lock()
	changed := m.evaluateLocked(m.cfg.Now())
	m.mu.Unlock()
	if changed {
		m.notify()
	}
}

func (m *Manager) notify() {
	m.mu.Lock()
	fns := append([]func(){}, m.onChange...)
	m.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// evaluateLocked rolls periods over, updates each quota's state and hands
// the engine the limits of reached throttle quotas. It reports whether a
// state changed. Needs mu.
func (m *Manager) evaluateLocked(now time.Time) bool {
	changed := m.budgetsSpentLocked()
	var limits []engine.QuotaLimit
	for _, e := range m.quotas {
		if !now.Before(e.end) || now.Before(e.start) {
			if err := m.reload(e, now); err != nil {
				m.cfg.Logf("quota: %v", err)
			}
		}
		prev := e.q.State
		e.q.Used = used(e.q.Direction, e.rx, e.tx)
		e.q.PeriodStart, e.q.PeriodEnd = e.start.Unix(), e.end.Unix()
		e.q.State = state(e.q.Used, e.q.Bytes)
		if e.spent {
			// The kernel counted the cap before the samples did.
			e.q.Used, e.q.State = max(e.q.Used, e.q.Bytes), api.QuotaReached
		}
		if e.q.State != prev {
			changed = true
			if e.q.State == api.QuotaReached {
				m.cfg.Logf("quota: uid %d %s used %d of %d bytes this %s: %s", e.q.UID, e.q.Exe, e.q.Used, e.q.Bytes, e.q.Period, actionText(e.q))
			} else if prev == api.QuotaReached {
				m.cfg.Logf("quota: uid %d %s: %s lifted (%d of %d bytes this %s)", e.q.UID, e.q.Exe, actionText(e.q), e.q.Used, e.q.Bytes, e.q.Period)
			}
		}
		limits = append(limits, e.limit())
	}
	m.cfg.Engine.SetQuotaLimits(limits)
	return changed
}

func used(dir string, rx, tx uint64) uint64 {
	switch dir {
	case api.QuotaDown:
		return rx
	case api.QuotaUp:
		return tx
	}
	return rx + tx
}

func state(used, capBytes uint64) string {
	switch {
	case used >= capBytes:
		return api.QuotaReached
	case used*5 >= capBytes*4:
		return api.QuotaWarning
	}
	return api.QuotaOK
}

func actionText(q api.Quota) string {
	if q.Action == api.QuotaBlock {
		return "blocked"
	}
	return fmt.Sprintf("throttled to %d B/s", q.Rate)
}

// actionLimit is the limit of a reached quota: all traffic blocked, or the
// counted directions at the quota's rate.
func actionLimit(q api.Quota) api.Limit {
	if q.Action == api.QuotaBlock {
		return api.Limit{Block: api.TrafficAll}
	}
	l := api.Limit{Traffic: api.TrafficAll}
	if q.Direction != api.QuotaUp {
		l.Down = q.Rate
	}
	if q.Direction != api.QuotaDown {
		l.Up = q.Rate
	}
	return l
}

// Quotas returns every quota with its usage, sorted by uid and executable.
func (m *Manager) Quotas() []api.Quota {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.Quota, 0, len(m.quotas))
	for _, e := range m.quotas {
		out = append(out, e.q)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].UID != out[j].UID {
			return out[i].UID < out[j].UID
		}
		return out[i].Exe < out[j].Exe
	})
	return out
}
