package quota

import (
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/engine"
)

// The kernel's byte budget of a quota: the samples the engine reports each
// second come too late for an app at line rate (a second of traffic at
// several Gbit/s overshoots a cap by gigabytes), so a quota not reached yet
// gives the kernel what is left of its cap, and the kernel counts the app's
// packets against it and acts the moment it is used up (engine.QuotaBudget).
// The budget is given anew only when the quota is set or raised, its period
// rolls over or the helper starts (reload), never on a sample: the kernel's
// count runs ahead of the samples. The history and the usage shown stay
// those of the samples; when the kernel used its budget up first the quota
// reads reached all the same, until it is refreshed.

// refreshBudget gives e a new budget: what is left of its cap now.
func (m *Manager) refreshBudget(e *entry) {
	m.lastGen++
	e.gen, e.spent = m.lastGen, false
	u := used(e.q.Direction, e.rx, e.tx)
	e.budget = e.q.Bytes - min(u, e.q.Bytes)
}

// limit is what e puts on its app now: its action once reached, else its
// budget.
func (e *entry) limit() engine.QuotaLimit {
	l := engine.QuotaLimit{UID: e.q.UID, Exe: e.q.Exe, Admin: e.q.Admin}
	if e.q.State == api.QuotaReached {
		l.Limit = actionLimit(e.q)
		return l
	}
	l.Budget = engine.QuotaBudget{On: true, Bytes: e.budget, Gen: e.gen, Block: e.q.Action == api.QuotaBlock,
		Down: e.q.Direction != api.QuotaUp, Up: e.q.Direction != api.QuotaDown}
	return l
}

// budgetsSpentLocked marks the quotas whose budget the kernel used up and
// reports whether there was one. Needs mu.
func (m *Manager) budgetsSpentLocked() bool {
	any := false
	for _, e := range m.quotas {
		if e.spent || e.q.State == api.QuotaReached {
			continue
		}
		if left, gen, ok := m.cfg.Engine.QuotaBudgetLeft(e.q.UID, e.q.Exe); ok && gen == e.gen && left == 0 {
			e.spent, any = true, true
		}
	}
	return any
}

// PollBudgets applies the action of every quota whose budget the kernel
// used up since the last look; the helper calls it several times a second,
// so a throttle action follows its budget within a fraction of a second
// (the kernel drops the app's packets meanwhile).
func (m *Manager) PollBudgets() {
	m.mu.Lock()
	if !m.budgetsSpentLocked() {
		m.mu.Unlock()
		return
	}
	changed := m.evaluateLocked(m.cfg.Now())
	m.mu.Unlock()
	if changed {
		m.notify()
	}
}

// carryBudget lowers e's new budget (a quota set again over prev) to what
// the kernel has left of prev's plus the change of the cap, when prev
// counted the same period and directions: the kernel's count runs up to a
// sample ahead of the usage the new budget was computed from, and a
// changed cap must not forgive those bytes. Needs mu.
func (m *Manager) carryBudget(e, prev *entry) {
	if prev == nil || prev.spent || prev.q.State == api.QuotaReached || prev.q.Period != e.q.Period ||
		prev.q.Direction != e.q.Direction || !prev.start.Equal(e.start) {
		return
	}
	left, gen, ok := m.cfg.Engine.QuotaBudgetLeft(prev.q.UID, prev.q.Exe)
	if !ok || gen != prev.gen {
		return
	}
	carried := left + e.q.Bytes
	if carried < prev.q.Bytes {
		carried = 0
	} else {
		carried -= prev.q.Bytes
	}
	e.budget = min(e.budget, carried)
}
