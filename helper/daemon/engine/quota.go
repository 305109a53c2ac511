package engine

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Data quotas reach the engine in three ways: the engine reports every
// app's bytes (Config.Usage); a quota whose cap is reached puts its action
// on the app (SetQuotaLimits: a throttle or a block), kept apart from the
// app's rule (per direction the stricter rate of the two applies, a rule's
// rate only while its schedule is in force, and lifting the quota's limit
// leaves the rule as it was); and a quota not reached yet gives the app a
// byte budget in the kernel (QuotaBudget), the hard stop that acts at once
// when the cap is reached between two of the helper's samples.

// AppUsage is one app's bytes since the previous sample.
type AppUsage struct {
	UID    uint32
	Exe    string
	Name   string
	Rx, Tx uint64
}

// QuotaLimit is the limit a reached quota puts on an app (uid, exe): rates
// (a throttle) or Block (the block action).
type QuotaLimit struct {
	UID   uint32
	Exe   string
	Limit api.Limit
	// Admin: the quota was set with manage (the owner's pause does not
	// pause it).
	Admin bool
	// Budget is the kernel's byte budget of a quota not reached yet.
	Budget QuotaBudget
}

// QuotaBudget is what a quota not reached yet may still move: the kernel
// counts the app's bytes in the quota's directions against Bytes and, once
// they are used up, drops the app's packets (and with Block refuses its new
// connections) until the quota's action is in place. The count restarts
// at Bytes only when Bytes or Gen changes (the quota set, raised, rolled
// over or the helper restarted), not on every sample.
type QuotaBudget struct {
	On       bool
	Bytes    uint64
	Down, Up bool
	Block    bool
	Gen      uint64
}

// usageLocked returns each app's bytes since it was last reported. Needs
// stateMu.
func (e *Engine) usageLocked() []AppUsage {
	var out []AppUsage
	for _, a := range e.st.apps {
		if less(a.total, a.fed) {
			a.fed = a.total
		}
		d := sub(a.total, a.fed)
		a.fed = a.total
		if d.RxBytes == 0 && d.TxBytes == 0 {
			continue
		}
		out = append(out, AppUsage{UID: a.key.uid, Exe: a.key.exe, Name: a.name, Rx: d.RxBytes, Tx: d.TxBytes})
	}
	return out
}

// SetQuotaLimits replaces the limits of reached quotas and applies the
// change at once (a quota raised or removed lifts its limit at once).
func (e *Engine) SetQuotaLimits(ls []QuotaLimit) {
	next := make(map[appKey]QuotaLimit, len(ls))
	for _, l := range ls {
		next[appKey{l.UID, l.Exe}] = l
	}
	e.limMu.Lock()
	e.boundBudgetsLocked(next)
	if e.closed.Load() || maps.EqualFunc(next, e.lim.quotas, func(a, b QuotaLimit) bool { return a == b }) {
		e.limMu.Unlock()
		return
	}
	e.lim.quotas = next
	e.reconcileLocked()
	e.publishLimitsLocked()
	e.limMu.Unlock()
	e.notify()
}

// boundBudgetsLocked keeps the targets users' quotas add (a budget on an
// app with no rule) within the room users' limits leave of the kernel's
// tables (targetCapacity less adminReserve): beyond it a quota acts on the
// samples alone. Needs limMu.
func (e *Engine) boundBudgetsLocked(next map[appKey]QuotaLimit) {
	_, _, all := e.lim.userLimitsLocked(0)
	room := targetCapacity - adminReserve - all
	keys := slices.SortedFunc(maps.Keys(next), func(a, b appKey) int {
		return cmp.Or(cmp.Compare(a.uid, b.uid), cmp.Compare(a.exe, b.exe))
	})
	dropped := 0
	for _, k := range keys {
		q := next[k]
		if _, ruled := e.lim.rules[k]; !q.Budget.On || q.Admin || ruled {
			continue
		}
		if room > 0 {
			room--
			continue
		}
		q.Budget = QuotaBudget{}
		next[k] = q
		dropped++
	}
	if dropped > 0 {
		e.logOnce("quota budgets", fmt.Errorf("%d users' quotas have no byte budget in the kernel: users' limits fill the room kept for them", dropped))
	}
}

// ResolveExe checks exe (an absolute path or an app id "<uid>:<exe>") as
// SetAppLimit does and returns the path a rule or quota for c matches.
func (e *Engine) ResolveExe(c api.Caller, exe string, uid uint32) (string, error) {
	return ruleExe(c, exe, uid)
}

// CheckQuotaRate checks that a throttle action's limit l can be enforced
// by the active backends.
func (e *Engine) CheckQuotaRate(l api.Limit) error {
	_, err := e.checkLimit(l)
	return err
}

// appLimitsLocked returns the rule of each app that has a rule or a quota
// (a placeholder without limits for a quota alone); appQuotaLimitsLocked
// adds the quota's part. Needs limMu.
func (e *Engine) appLimitsLocked() map[appKey]api.Rule {
	if len(e.lim.quotas) == 0 {
		return e.lim.rules
	}
	out := maps.Clone(e.lim.rules)
	for k, q := range e.lim.quotas {
		r, ok := out[k]
		if !ok {
			out[k] = api.Rule{Exe: k.exe, UID: k.uid, Admin: q.Admin}
			continue
		}
		if q.Limit != (api.Limit{}) {
			r.Admin = r.Admin || q.Admin
			out[k] = r
		}
	}
	return out
}

// appQuotaLimitsLocked returns the limits of app key with rule r in force
// now: the rule's, with a reached quota's action (per direction the
// stricter rate; a block) and a quota's byte budget. Needs limMu.
func (e *Engine) appQuotaLimitsLocked(key appKey, r api.Rule) backends.Limits {
	bl := e.effective(r.Limit)
	q, ok := e.lim.quotas[key]
	if !ok {
		return bl
	}
	ql := e.effective(q.Limit)
	bl.Down = stricterLimit(bl.Down, ql.Down)
	bl.Up = stricterLimit(bl.Up, ql.Up)
	if ql.Block.On {
		bl.Block = ql.Block
	}
	if b := q.Budget; b.On && e.mgr.BudgetAvailable() == nil {
		bl.Budget = backends.Budget{On: true, Bytes: b.Bytes, Down: b.Down, Up: b.Up, Refuse: b.Block, Gen: b.Gen}
	}
	return bl
}

// stricterLimit returns the limit of a direction under a rule's limit r and
// a quota's q (all traffic): q unless r is stricter, a zoned r at its rate
// for all traffic (one limit per direction cannot hold both).
func stricterLimit(r, q backends.Limit) backends.Limit {
	if q.Rate == 0 {
		return r
	}
	if r.Rate == 0 || r.Rate >= q.Rate {
		return q
	}
	return backends.Limit{Rate: r.Rate, Traffic: backends.TrafficAll}
}

// QuotaBudgetLeft returns the bytes the kernel's budget of uid's app exe
// has left and the budget's Gen, ok when one is in force.
func (e *Engine) QuotaBudgetLeft(uid uint32, exe string) (left, gen uint64, ok bool) {
	id := appTargetID(appKey{uid, exe})
	l, ok := e.mgr.Limits(id)
	if !ok || !l.Budget.On {
		return 0, 0, false
	}
	left, ok = e.mgr.BudgetLeft(id)
	return left, l.Budget.Gen, ok
}

// BudgetAvailable returns nil when the kernel keeps quotas' byte budgets,
// else why not (quotas then act on the one-second samples alone).
func (e *Engine) BudgetAvailable() error { return e.mgr.BudgetAvailable() }

// KindBudget lists the quotas' byte budgets with the backends (they are
// the blocker's): active when the kernel keeps them, else the reason quotas
// act on the samples alone.
const KindBudget = "budget"

func (e *Engine) budgetBackend() api.Backend {
	b := api.Backend{Kind: KindBudget, Name: "kernel_budget", Priority: int32(backends.Best), Available: true, Active: true}
	if err := e.BudgetAvailable(); err != nil {
		b.Available, b.Active, b.Reason = false, false, err.Error()+"; quotas act on 1 s samples"
	}
	return b
}
