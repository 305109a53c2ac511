package backends

import (
	"errors"
	"sync"
)

// FakeGlobal is a GlobalShaper for unit tests: it records the global limit
// and the priorities.
type FakeGlobal struct {
	mu    sync.Mutex
	limit GlobalLimit
	prios map[string]AppPriority
	// SetErr, when set, is returned by SetGlobal.
	SetErr error
}

// NewFakeGlobal returns a fake global shaper named "fake_global".
func NewFakeGlobal() *FakeGlobal { return &FakeGlobal{prios: map[string]AppPriority{}} }

func (f *FakeGlobal) Name() string       { return "fake_global" }
func (f *FakeGlobal) Priority() Priority { return Fallback - 1 }
func (f *FakeGlobal) Init() error        { return nil }
func (f *FakeGlobal) Capabilities() Capabilities {
	return Capabilities{IPv4: true, IPv6: true, PerApp: true}
}

// Cleanup forgets everything.
func (f *FakeGlobal) Cleanup() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit, f.prios = GlobalLimit{}, map[string]AppPriority{}
	return nil
}

// SetGlobal implements GlobalShaper.
func (f *FakeGlobal) SetGlobal(g GlobalLimit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.SetErr != nil {
		return f.SetErr
	}
	if err := g.Check(); err != nil {
		return err
	}
	f.limit = g
	return nil
}

// Global implements GlobalShaper.
func (f *FakeGlobal) Global() GlobalLimit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limit
}

// SetPriority implements GlobalShaper.
func (f *FakeGlobal) SetPriority(t Target, p AppPriority, _ Rate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.ID == "" || !p.Valid() {
		return errors.New("bad target or priority")
	}
	if p == PriorityNormal {
		delete(f.prios, t.ID)
	} else {
		f.prios[t.ID] = p
	}
	return nil
}

// RemovePriority implements GlobalShaper.
func (f *FakeGlobal) RemovePriority(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.prios, id)
	return nil
}

// PriorityOf returns the target's recorded priority.
func (f *FakeGlobal) PriorityOf(id string) AppPriority {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prios[id]
}
