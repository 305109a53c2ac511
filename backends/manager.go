package backends

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrDownloadUnavailable is wrapped when a download limit is asked for but no
// download backend is active.
var ErrDownloadUnavailable = errors.New("download limiting is unavailable")

// Limits are a target's limits in both directions; a zero Rate means that
// direction is unlimited.
type Limits struct {
	Down Limit
	Up   Limit
	// Block refuses the target's network (see Blocker); it applies beside
	// the rates.
	Block Block
	// Budget is a byte budget the blocker keeps (see Budget).
	Budget Budget
	// Priority is the target's share of the global limit (GlobalShaper);
	// normal needs nothing applied.
	Priority AppPriority
}

// IsZero reports whether neither direction is limited and nothing is
// blocked.
func (l Limits) IsZero() bool {
	return l.Down.Rate == 0 && l.Up.Rate == 0 && !l.Block.On && !l.Budget.On && l.Priority == PriorityNormal
}

// Validate checks rates against MaxRate (0 is no limit here).
func (l Limits) Validate() error {
	for _, x := range []struct {
		dir string
		l   Limit
	}{{"download", l.Down}, {"upload", l.Up}} {
		if x.l.Rate == 0 {
			continue
		}
		if err := x.l.Check(); err != nil {
			return fmt.Errorf("%s limit: %w", x.dir, err)
		}
	}
	if l.Block.Traffic < TrafficAll || l.Block.Traffic > TrafficLocal {
		return fmt.Errorf("block has unknown traffic type %d", l.Block.Traffic)
	}
	return nil
}

// Check is the one check of a limit a throttler is given: a rate above 0
// and at most MaxRate, and a known traffic type.
func (l Limit) Check() error {
	if l.Rate == 0 {
		return errors.New("rate 0 is not a limit (remove the limit instead)")
	}
	if l.Rate > MaxRate {
		return fmt.Errorf("rate %d B/s is above the maximum of %d B/s (100 Gbit/s)", l.Rate, MaxRate)
	}
	if l.Traffic < TrafficAll || l.Traffic > TrafficLocal {
		return fmt.Errorf("unknown traffic type %d", l.Traffic)
	}
	return nil
}

// Manager is the throttle manager: it coordinates a required upload
// backend with an optional download backend and the Placer that gives every
// limited target its own cgroup. It is safe for concurrent use.
type Manager struct {
	mu       sync.Mutex
	up       UploadThrottleBackend
	down     DownloadThrottleBackend
	downWhy  error
	placer   Placer
	blocks   blockSlot
	global   globalSlot
	targets  map[string]*managedTarget
	initDone bool
}

type managedTarget struct {
	target Target
	limits Limits
}

// NewManager returns a manager. up is required; down may be nil, in which
// case downWhy says why download limiting is unavailable. placer may be nil
// for backends that need no cgroups (fakes).
func NewManager(up UploadThrottleBackend, down DownloadThrottleBackend, downWhy error, placer Placer) (*Manager, error) {
	if up == nil {
		return nil, errors.New("throttle manager: an upload backend is required")
	}
	if down == nil && downWhy == nil {
		downWhy = errors.New("no download backend was selected")
	}
	return &Manager{up: up, down: down, downWhy: downWhy, placer: placer, targets: map[string]*managedTarget{}}, nil
}

// Init initialises the placer and the backends (each removes leftovers of a
// previous run). If the download backend fails to initialise the manager
// degrades to upload-only and records why.
func (m *Manager) Init() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.placer != nil {
		if err := m.placer.Init(); err != nil {
			return fmt.Errorf("init cgroup placement: %w", err)
		}
	}
	if err := m.up.Init(); err != nil {
		return fmt.Errorf("init upload backend %s: %w", m.up.Name(), err)
	}
	if m.down != nil {
		if err := m.down.Init(); err != nil {
			m.downWhy = fmt.Errorf("download backend %s failed to start: %w", m.down.Name(), err)
			_ = m.down.Cleanup()
			m.down = nil
		}
	}
	m.blocks.init()
	m.global.init()
	m.initDone = true
	return nil
}

// Upload returns the upload backend.
func (m *Manager) Upload() UploadThrottleBackend { return m.up }

// Download returns the download backend, or nil and the reason it is
// unavailable.
func (m *Manager) Download() (DownloadThrottleBackend, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down == nil {
		return nil, m.downWhy
	}
	return m.down, nil
}

// Apply sets the target's limits, placing its processes in its cgroup first.
// A zero rate removes that direction; all-zero limits remove the target. On
// error nothing the call created is left behind: a new target is removed, an
// existing one keeps its previous limits.
func (m *Manager) Apply(t Target, l Limits) error {
	if t.ID == "" {
		return errors.New("target has no id")
	}
	if err := l.Validate(); err != nil {
		return err
	}
	if l.IsZero() {
		return m.Remove(t.ID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l.Down.Rate > 0 && m.down == nil {
		return fmt.Errorf("%w: %v", ErrDownloadUnavailable, m.downWhy)
	}
	if l.Up.Rate > 0 && !m.up.Capabilities().Supports(l.Up.Traffic) {
		return fmt.Errorf("upload backend %s cannot limit %s traffic", m.up.Name(), l.Up.Traffic)
	}
	if l.Down.Rate > 0 && !m.down.Capabilities().Supports(l.Down.Traffic) {
		return fmt.Errorf("download backend %s cannot limit %s traffic", m.down.Name(), l.Down.Traffic)
	}
	if err := m.blocks.check(l.Block); err != nil {
		return err
	}
	if _, err := m.blocks.budgeter(); err != nil && l.Budget.On {
		return err
	}
	if err := m.global.check(l.Priority); err != nil {
		return err
	}
	prev, existed := m.targets[t.ID]
	if m.placer != nil {
		placed, err := m.place(t)
		if err != nil {
			if !existed {
				_ = m.placer.Release(t.ID)
			}
			return fmt.Errorf("place target %s: %w", t.ID, err)
		}
		t = placed
	}
	if err := m.applyLocked(t, l); err != nil {
		// Roll back to what was there before.
		if existed {
			_ = m.applyLocked(prev.target, prev.limits)
		} else {
			_ = m.up.RemoveLimit(t.ID)
			if m.down != nil {
				_ = m.down.RemoveLimit(t.ID)
			}
			_ = m.blocks.apply(t, Block{})
			_ = m.blocks.applyBudget(t, Budget{})
			_ = m.global.apply(t, PriorityNormal, 0)
			if m.placer != nil {
				_ = m.placer.Release(t.ID)
			}
		}
		return err
	}
	m.targets[t.ID] = &managedTarget{target: t, limits: l}
	return nil
}

// place has the placer mark t (TargetPlacer) or move its processes into
// the target's cgroup (Placer).
func (m *Manager) place(t Target) (Target, error) {
	if tp, ok := m.placer.(TargetPlacer); ok {
		return tp.PlaceTarget(t)
	}
	if cp, ok := m.placer.(CgroupsPlacer); ok {
		cgs, err := cp.PlaceCgroups(t.ID, t.PIDs)
		t.Cgroups, t.Cgroup = cgs, Cgroup{}
		if len(cgs) > 0 {
			t.Cgroup = cgs[0]
		}
		return t, err
	}
	cg, err := m.placer.Place(t.ID, t.PIDs)
	t.Cgroup = cg
	return t, err
}

// TagsAtCreation reports whether the placer marks targets in the kernel
// (a TargetPlacer): then an app target is worth applying before any of its
// processes runs, since its first socket is recognised.
func (m *Manager) TagsAtCreation() bool {
	_, ok := m.placer.(TargetPlacer)
	return ok
}

// PlacementMode names how the manager's placer recognises targets: the
// TargetPlacer's Mode, or "cgroup" for a placer that moves processes.
func (m *Manager) PlacementMode() string {
	if tp, ok := m.placer.(TargetPlacer); ok {
		return tp.Mode()
	}
	if cp, ok := m.placer.(CgroupsPlacer); ok {
		return cp.Mode()
	}
	if m.placer == nil {
		return ""
	}
	return "cgroup"
}

func (m *Manager) applyLocked(t Target, l Limits) error {
	if err := m.blocks.apply(t, l.Block); err != nil {
		return err
	}
	if err := m.global.apply(t, l.Priority, l.Down.Rate); err != nil {
		return err
	}
	if l.Up.Rate > 0 {
		if err := m.up.SetLimit(t, l.Up); err != nil {
			return fmt.Errorf("set upload limit on %s with %s: %w", t.ID, m.up.Name(), err)
		}
	} else if err := m.up.RemoveLimit(t.ID); err != nil {
		return fmt.Errorf("remove upload limit on %s with %s: %w", t.ID, m.up.Name(), err)
	}
	if m.down == nil {
		return m.blocks.applyBudget(t, l.Budget)
	}
	if l.Down.Rate > 0 {
		if err := m.down.SetLimit(t, l.Down); err != nil {
			return fmt.Errorf("set download limit on %s with %s: %w", t.ID, m.down.Name(), err)
		}
	} else if err := m.down.RemoveLimit(t.ID); err != nil {
		return fmt.Errorf("remove download limit on %s with %s: %w", t.ID, m.down.Name(), err)
	}
	// After the rates: a used-up budget drops the target's packets until
	// the rate that follows it is in place.
	return m.blocks.applyBudget(t, l.Budget)
}

// FollowSockets has the active throttlers that implement SocketFollower
// match the sockets the target's processes (pids) hold now; see
// SocketFollower. Unknown IDs are not an error.
func (m *Manager) FollowSockets(id string, pids []int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, ok := m.targets[id]
	if !ok {
		return nil
	}
	t := mt.target
	t.PIDs = pids
	var errs []error
	for _, b := range []struct {
		th Backend
		on bool
	}{{m.up, mt.limits.Up.Rate > 0}, {m.down, mt.limits.Down.Rate > 0}, {m.blocks.b, mt.limits.Block.On || mt.limits.Budget.On},
		{m.global.g, mt.limits.Priority != PriorityNormal || mt.limits.Down.Rate > 0}} {
		if f, ok := b.th.(SocketFollower); ok && b.on {
			if err := f.FollowSockets(t); err != nil {
				errs = append(errs, fmt.Errorf("follow sockets of %s with %s: %w", id, b.th.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Remove removes the target's limits in both directions and moves its
// processes back where they came from. Unknown IDs are not an error.
func (m *Manager) Remove(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removeLocked(id)
}

func (m *Manager) removeLocked(id string) error {
	var errs []error
	if err := m.up.RemoveLimit(id); err != nil {
		errs = append(errs, fmt.Errorf("remove upload limit on %s: %w", id, err))
	}
	if m.down != nil {
		if err := m.down.RemoveLimit(id); err != nil {
			errs = append(errs, fmt.Errorf("remove download limit on %s: %w", id, err))
		}
	}
	if err := m.blocks.apply(Target{ID: id}, Block{}); err != nil {
		errs = append(errs, fmt.Errorf("unblock %s: %w", id, err))
	}
	if err := m.blocks.applyBudget(Target{ID: id}, Budget{}); err != nil {
		errs = append(errs, err)
	}
	if err := m.global.apply(Target{ID: id}, PriorityNormal, 0); err != nil {
		errs = append(errs, err)
	}
	if m.placer != nil {
		if err := m.placer.Release(id); err != nil {
			errs = append(errs, fmt.Errorf("release cgroup of %s: %w", id, err))
		}
	}
	delete(m.targets, id)
	return errors.Join(errs...)
}

// Limits returns the target's current limits.
func (m *Manager) Limits(id string) (Limits, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.targets[id]
	if !ok {
		return Limits{}, false
	}
	return t.limits, true
}

// Targets returns the IDs of limited targets, sorted.
func (m *Manager) Targets() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.targets))
	for id := range m.targets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Cleanup removes every limit and all kernel state, then cleans up the
// backends and the placer.
func (m *Manager) Cleanup() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for id := range m.targets {
		if err := m.removeLocked(id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.up.Cleanup(); err != nil {
		errs = append(errs, fmt.Errorf("clean up %s: %w", m.up.Name(), err))
	}
	if m.down != nil {
		if err := m.down.Cleanup(); err != nil {
			errs = append(errs, fmt.Errorf("clean up %s: %w", m.down.Name(), err))
		}
	}
	if err := m.blocks.cleanup(); err != nil {
		errs = append(errs, err)
	}
	if err := m.global.cleanup(); err != nil {
		errs = append(errs, err)
	}
	if m.placer != nil {
		if err := m.placer.Cleanup(); err != nil {
			errs = append(errs, fmt.Errorf("clean up cgroups: %w", err))
		}
	}
	return errors.Join(errs...)
}
