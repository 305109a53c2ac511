//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Byte budgets (backends.Budgeter, budget.h): a target's entry in the
// blocks map carries, beside its block, a budget and the bytes the programs
// counted against it. The entry is rewritten only when what it says
// changes; a new budget (other Bytes or Gen) starts its count at 0, any
// other change keeps it.

// Entry flags; they mirror budget.h.
const (
	flagBlock        = 1
	flagBudget       = 2
	flagBudgetDown   = 4
	flagBudgetUp     = 8
	flagBudgetRefuse = 16
)

func (t *blockedTarget) flags() uint32 {
	var f uint32
	if t.blocked {
		f |= flagBlock
	}
	if bg := t.budget; bg.On {
		f |= flagBudget
		for _, x := range []struct {
			on   bool
			flag uint32
		}{{bg.Down, flagBudgetDown}, {bg.Up, flagBudgetUp}, {bg.Refuse, flagBudgetRefuse}} {
			if x.on {
				f |= x.flag
			}
		}
	}
	return f
}

// newBudget reports whether cur's budget starts a new count against old's.
func newBudget(cur, old *blockedTarget) bool {
	return old == nil || !old.budget.On || old.budget.Bytes != cur.budget.Bytes || old.budget.Gen != cur.budget.Gen
}

// putEntryLocked writes cur's entry when it differs from old's (nil: a new
// target).
func (b *blocker) putEntryLocked(cur, old *blockedTarget) error {
	if old != nil && old.flags() == cur.flags() && old.traffic == cur.traffic && !newBudget(cur, old) {
		return nil
	}
	var v blockBlock
	if old != nil {
		_ = b.objs.Blocks.Lookup(cur.idx, &v)
	}
	v.Traffic, v.Flags = uint32(cur.traffic), cur.flags()
	if cur.budget.On && newBudget(cur, old) {
		v.Budget, v.Spent = cur.budget.Bytes, 0
	}
	if err := b.objs.Blocks.Put(cur.idx, &v); err != nil {
		return fmt.Errorf("write block %d: %w", cur.idx, err)
	}
	return nil
}

// SetBudget implements backends.Budgeter.
func (b *blocker) SetBudget(t backends.Target, bg backends.Budget) error {
	if !bg.On {
		return b.RemoveBudget(t.ID)
	}
	return b.upsert(t, func(cur *blockedTarget) { cur.budget = bg })
}

// RemoveBudget implements backends.Budgeter; a block the target has stays.
func (b *blocker) RemoveBudget(id string) error {
	return b.lift(id, func(cur *blockedTarget) { cur.budget = backends.Budget{} })
}

// BudgetLeft implements backends.Budgeter.
func (b *blocker) BudgetLeft(id string) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.targets[id]
	if !ok || !cur.budget.On || b.objs == nil {
		return 0, false
	}
	var v blockBlock
	if err := b.objs.Blocks.Lookup(cur.idx, &v); err != nil {
		return 0, true
	}
	return v.Budget - min(v.Spent, v.Budget), true
}
