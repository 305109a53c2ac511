package backends

import (
	"errors"
	"fmt"
	"sync"
)

// KindBlock is the kind of the blocker backend, which refuses a target its
// network instead of limiting it.
const KindBlock Kind = "block"

// ErrBlockUnavailable is wrapped when a block is asked for but no blocker
// is active.
var ErrBlockUnavailable = errors.New("blocking is unavailable")

// Block says whether a target may use the network at all. A zero Block
// blocks nothing.
type Block struct {
	On bool
	// Traffic is what is refused: everything (TrafficAll), internet or
	// local destinations only.
	Traffic TrafficType
}

// Blocker refuses a target its network (the blocker backend kind).
//
// A blocked target's new connections fail at once: connect() and
// sendmsg() return EPERM, so the application reports an error instead of
// waiting for a timeout. Its open connections stop: their packets are
// dropped in both directions. The target is recognised by the same
// identity the throttlers use (its cgroup and its processes' open
// sockets), so a process that joins the target's cgroup is blocked too.
type Blocker interface {
	Backend
	// Block blocks the target's traffic of the given type; called again it
	// updates the type and the target's processes.
	Block(t Target, traffic TrafficType) error
	// Unblock lifts the target's block; unknown IDs are not an error.
	Unblock(id string) error
	// Blocked returns the traffic type the target's block refuses.
	Blocked(id string) (TrafficType, bool)
}

// FakeBlocker is a Blocker for unit tests: it records blocks.
type FakeBlocker struct {
	mu      sync.Mutex
	blocked map[string]Block
	targets map[string]Target
	// BlockErr, when set, is returned by Block.
	BlockErr error
}

// NewFakeBlocker returns a fake blocker named "fake_block".
func NewFakeBlocker() *FakeBlocker {
	return &FakeBlocker{blocked: map[string]Block{}, targets: map[string]Target{}}
}

func (f *FakeBlocker) Name() string       { return "fake_block" }
func (f *FakeBlocker) Priority() Priority { return Fallback - 1 }
func (f *FakeBlocker) Init() error        { return nil }
func (f *FakeBlocker) Capabilities() Capabilities {
	return Capabilities{IPv4: true, IPv6: true, PerProcess: true, PerApp: true,
		TrafficTypes: []TrafficType{TrafficInternet, TrafficLocal}, ExistingConnections: true}
}

// Cleanup forgets every block.
func (f *FakeBlocker) Cleanup() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocked, f.targets = map[string]Block{}, map[string]Target{}
	return nil
}

// Block implements Blocker.
func (f *FakeBlocker) Block(t Target, traffic TrafficType) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.BlockErr != nil {
		return f.BlockErr
	}
	if t.ID == "" {
		return errors.New("target has no id")
	}
	if traffic < TrafficAll || traffic > TrafficLocal {
		return fmt.Errorf("unknown traffic type %d", traffic)
	}
	f.blocked[t.ID] = Block{On: true, Traffic: traffic}
	f.targets[t.ID] = t
	return nil
}

// Unblock implements Blocker.
func (f *FakeBlocker) Unblock(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.blocked, id)
	delete(f.targets, id)
	return nil
}

// Blocked implements Blocker.
func (f *FakeBlocker) Blocked(id string) (TrafficType, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blocked[id]
	return b.Traffic, ok
}

// Target returns the target as last blocked.
func (f *FakeBlocker) Target(id string) (Target, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.targets[id]
	return t, ok
}

// blockSlot is the manager's optional blocker.
type blockSlot struct {
	b   Blocker
	why error // why there is none
}

// SetBlocker gives the manager a blocker (nil: blocking is unavailable,
// why says why). Call it before Init, which initialises it.
func (m *Manager) SetBlocker(b Blocker, why error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b == nil && why == nil {
		why = errors.New("no blocker was selected")
	}
	m.blocks = blockSlot{b: b, why: why}
}

// Blocker returns the blocker, or nil and the reason blocking is
// unavailable.
func (m *Manager) Blocker() (Blocker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blocks.b == nil {
		return nil, m.blocks.why
	}
	return m.blocks.b, nil
}

func (s *blockSlot) init() {
	if s.b == nil {
		if s.why == nil {
			s.why = errors.New("no blocker was selected")
		}
		return
	}
	if err := s.b.Init(); err != nil {
		s.why = fmt.Errorf("blocker %s failed to start: %w", s.b.Name(), err)
		_ = s.b.Cleanup()
		s.b = nil
	}
}

// check says whether b can be applied.
func (s *blockSlot) check(b Block) error {
	if !b.On {
		return nil
	}
	if s.b == nil {
		return fmt.Errorf("%w: %v", ErrBlockUnavailable, s.why)
	}
	if !s.b.Capabilities().Supports(b.Traffic) {
		return fmt.Errorf("blocker %s cannot block %s traffic", s.b.Name(), b.Traffic)
	}
	return nil
}

// apply blocks or unblocks t.
func (s *blockSlot) apply(t Target, b Block) error {
	if s.b == nil {
		return nil
	}
	if !b.On {
		if err := s.b.Unblock(t.ID); err != nil {
			return fmt.Errorf("unblock %s with %s: %w", t.ID, s.b.Name(), err)
		}
		return nil
	}
	if err := s.b.Block(t, b.Traffic); err != nil {
		return fmt.Errorf("block %s with %s: %w", t.ID, s.b.Name(), err)
	}
	return nil
}

func (s *blockSlot) cleanup() error {
	if s.b == nil {
		return nil
	}
	if err := s.b.Cleanup(); err != nil {
		return fmt.Errorf("clean up %s: %w", s.b.Name(), err)
	}
	return nil
}
