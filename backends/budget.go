package backends

import (
	"errors"
	"fmt"
)

// Budget is a byte budget the kernel keeps for a target: a data quota's hard
// stop. The target's bytes in the counted directions (what the application
// sees) are counted against Bytes; once they are used up every packet of
// the target is dropped and, with Refuse, its new connections are refused
// like a block's, at once, without waiting for the helper's next sample.
// The blocker keeps budgets (a Blocker that is a Budgeter); the zero Budget
// is none.
type Budget struct {
	On       bool
	Bytes    uint64 // what the target may still move
	Down, Up bool   // which directions count
	Refuse   bool   // once used up, refuse new connections (the block action)
	// Gen tells a new budget from the same one applied again (a target's
	// processes changed): the count restarts at Bytes only when Bytes or
	// Gen changes.
	Gen uint64
}

// Budgeter is a Blocker that also keeps byte budgets.
type Budgeter interface {
	// SetBudget gives target t budget b (b.On); applied again with the
	// same Bytes and Gen it only updates the target's processes and keeps
	// the count.
	SetBudget(t Target, b Budget) error
	// RemoveBudget removes the target's budget; unknown IDs are not an
	// error.
	RemoveBudget(id string) error
	// BudgetLeft returns the bytes the target may still move and whether
	// it has a budget.
	BudgetLeft(id string) (left uint64, ok bool)
}

// FakeBudgeter is a FakeBlocker that also keeps budgets, for unit tests:
// Spend uses them up.
type FakeBudgeter struct {
	*FakeBlocker
	budgets map[string]Budget
	left    map[string]uint64
}

// NewFakeBudgeter returns a fake blocker with budgets.
func NewFakeBudgeter() *FakeBudgeter {
	return &FakeBudgeter{FakeBlocker: NewFakeBlocker(), budgets: map[string]Budget{}, left: map[string]uint64{}}
}

// SetBudget implements Budgeter.
func (f *FakeBudgeter) SetBudget(t Target, b Budget) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.BlockErr != nil {
		return f.BlockErr
	}
	if old, ok := f.budgets[t.ID]; !ok || old.Bytes != b.Bytes || old.Gen != b.Gen {
		f.left[t.ID] = b.Bytes
	}
	f.budgets[t.ID] = b
	f.targets[t.ID] = t
	return nil
}

// RemoveBudget implements Budgeter.
func (f *FakeBudgeter) RemoveBudget(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.budgets, id)
	delete(f.left, id)
	if _, blocked := f.blocked[id]; !blocked {
		delete(f.targets, id)
	}
	return nil
}

// BudgetLeft implements Budgeter.
func (f *FakeBudgeter) BudgetLeft(id string) (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.budgets[id]
	return f.left[id], ok
}

// Budget returns the target's budget as last set.
func (f *FakeBudgeter) Budget(id string) (Budget, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.budgets[id]
	return b, ok
}

// Spend counts n bytes against the target's budget.
func (f *FakeBudgeter) Spend(id string, n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left[id] -= min(n, f.left[id])
}

// budgeter returns the slot's blocker as a Budgeter, or why there is none.
func (s *blockSlot) budgeter() (Budgeter, error) {
	if s.b == nil {
		return nil, fmt.Errorf("%w: %v", ErrBlockUnavailable, s.why)
	}
	bg, ok := s.b.(Budgeter)
	if !ok {
		return nil, fmt.Errorf("blocker %s keeps no byte budgets", s.b.Name())
	}
	return bg, nil
}

// applyBudget sets or removes t's budget.
func (s *blockSlot) applyBudget(t Target, b Budget) error {
	bg, err := s.budgeter()
	if err != nil {
		if b.On {
			return err
		}
		return nil
	}
	if !b.On {
		if err := bg.RemoveBudget(t.ID); err != nil {
			return fmt.Errorf("remove budget of %s with %s: %w", t.ID, s.b.Name(), err)
		}
		return nil
	}
	if err := bg.SetBudget(t, b); err != nil {
		return fmt.Errorf("set budget of %s with %s: %w", t.ID, s.b.Name(), err)
	}
	return nil
}

// ErrBudgetUnavailable is wrapped when the kernel keeps no byte budgets
// here: data quotas then act on the helper's samples alone.
var ErrBudgetUnavailable = errors.New("byte budgets in the kernel are unavailable")

// BudgetAvailable returns nil when the blocker keeps byte budgets, else why
// not (wrapping ErrBudgetUnavailable).
func (m *Manager) BudgetAvailable() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.blocks.budgeter(); err != nil {
		return fmt.Errorf("%w: %v", ErrBudgetUnavailable, err)
	}
	return nil
}

// BudgetLeft returns the bytes target id may still move under its budget,
// and whether it has one.
func (m *Manager) BudgetLeft(id string) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bg, err := m.blocks.budgeter()
	if err != nil {
		return 0, false
	}
	return bg.BudgetLeft(id)
}

// Cleanup forgets every block and budget.
func (f *FakeBudgeter) Cleanup() error {
	f.mu.Lock()
	f.budgets, f.left = map[string]Budget{}, map[string]uint64{}
	f.mu.Unlock()
	return f.FakeBlocker.Cleanup()
}
