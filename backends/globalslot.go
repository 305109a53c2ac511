package backends

import (
	"errors"
	"fmt"
)

// globalSlot is the manager's optional global shaper.
type globalSlot struct {
	g     GlobalShaper
	why   error // why there is none
	limit GlobalLimit
}

// SetGlobalShaper gives the manager a global shaper (nil: the global limit
// is unavailable, why says why). Call it before Init, which initialises
// it.
func (m *Manager) SetGlobalShaper(g GlobalShaper, why error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g == nil && why == nil {
		why = errors.New("no global shaper was selected")
	}
	m.global = globalSlot{g: g, why: why}
}

// GlobalShaper returns the global shaper, or nil and the reason the global
// limit is unavailable.
func (m *Manager) GlobalShaper() (GlobalShaper, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.global.g == nil {
		return nil, m.global.why
	}
	return m.global.g, nil
}

// GlobalBypasser is implemented by a download throttler whose limited
// apps' packets would skip the global limit's download pool (tc_police:
// a conforming packet leaves the interface's ingress before the global
// limit's redirect sees it). While it runs, the manager refuses a global
// download limit with the reason it gives; the global upload limit works.
type GlobalBypasser interface {
	GlobalBypass() string
}

// SetGlobal sets, changes or (zero) removes the global limit.
func (m *Manager) SetGlobal(g GlobalLimit) error {
	if err := g.Check(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.global.g == nil {
		if g.IsZero() {
			return nil
		}
		return fmt.Errorf("%w: %v", ErrGlobalUnavailable, m.global.why)
	}
	if b, ok := m.down.(GlobalBypasser); ok && g.Down > 0 {
		return fmt.Errorf("%w: a global download limit cannot run beside the %s download limiter: %s (a global upload limit can)",
			ErrGlobalUnavailable, m.down.Name(), b.GlobalBypass())
	}
	if err := m.global.g.SetGlobal(g); err != nil {
		return fmt.Errorf("set global limit with %s: %w", m.global.g.Name(), err)
	}
	m.global.limit = g
	return nil
}

// Global returns the global limit in force.
func (m *Manager) Global() GlobalLimit {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.global.limit
}

func (s *globalSlot) init() {
	if s.g == nil {
		if s.why == nil {
			s.why = errors.New("no global shaper was selected")
		}
		return
	}
	if err := s.g.Init(); err != nil {
		s.why = fmt.Errorf("global shaper %s failed to start: %w", s.g.Name(), err)
		_ = s.g.Cleanup()
		s.g = nil
	}
}

// check says whether p can be applied.
func (s *globalSlot) check(p AppPriority) error {
	if !p.Valid() {
		return fmt.Errorf("unknown priority %d", p)
	}
	if p != PriorityNormal && s.g == nil {
		return fmt.Errorf("%w: %v", ErrGlobalUnavailable, s.why)
	}
	return nil
}

// apply sets or removes t's priority and own download limit.
func (s *globalSlot) apply(t Target, p AppPriority, down Rate) error {
	if s.g == nil {
		return nil
	}
	if p == PriorityNormal && down == 0 {
		if err := s.g.RemovePriority(t.ID); err != nil {
			return fmt.Errorf("remove priority of %s with %s: %w", t.ID, s.g.Name(), err)
		}
		return nil
	}
	if err := s.g.SetPriority(t, p, down); err != nil {
		return fmt.Errorf("set priority of %s with %s: %w", t.ID, s.g.Name(), err)
	}
	return nil
}

func (s *globalSlot) cleanup() error {
	if s.g == nil {
		return nil
	}
	s.limit = GlobalLimit{}
	if err := s.g.Cleanup(); err != nil {
		return fmt.Errorf("clean up %s: %w", s.g.Name(), err)
	}
	return nil
}
