package backends

import (
	"errors"
	"fmt"
	"strings"
)

// KindGlobal is the kind of the global shaper, which caps the whole
// machine's traffic and shares it among apps by priority.
const KindGlobal Kind = "global"

// ErrGlobalUnavailable is wrapped when a global limit or an app priority
// is asked for but no global shaper is active.
var ErrGlobalUnavailable = errors.New("the global limit is unavailable")

// AppPriority is an app's share of the global limit (NetLimiter's
// priorities). The zero value is normal: an app without a priority.
type AppPriority int

// The four priorities; their weights are 2, 1, 4 and 8.
const (
	PriorityNormal AppPriority = iota
	PriorityLow
	PriorityHigh
	PriorityCritical
)

// Priorities lists the priorities, lowest first.
var Priorities = []AppPriority{PriorityLow, PriorityNormal, PriorityHigh, PriorityCritical}

func (p AppPriority) String() string {
	switch p {
	case PriorityNormal:
		return "normal"
	case PriorityLow:
		return "low"
	case PriorityHigh:
		return "high"
	case PriorityCritical:
		return "critical"
	}
	return fmt.Sprintf("priority(%d)", int(p))
}

// Weight is the priority's share of the global limit relative to the
// others: low 1, normal 2, high 4, critical 8.
func (p AppPriority) Weight() int {
	switch p {
	case PriorityLow:
		return 1
	case PriorityHigh:
		return 4
	case PriorityCritical:
		return 8
	}
	return 2
}

// Valid reports whether p is one of the four priorities.
func (p AppPriority) Valid() bool { return p >= PriorityNormal && p <= PriorityCritical }

// ParseAppPriority parses "low", "normal", "high" or "critical" ("" is
// normal).
func ParseAppPriority(s string) (AppPriority, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return PriorityNormal, nil
	}
	for _, p := range Priorities {
		if p.String() == s {
			return p, nil
		}
	}
	return PriorityNormal, fmt.Errorf("unknown priority %q (want low, normal, high or critical)", s)
}

// GlobalLimit caps the machine's traffic: one download and one upload
// rate (payload bytes per second; 0 leaves that direction uncapped) for the
// interfaces the helper shapes, or for one named interface.
type GlobalLimit struct {
	Down, Up  Rate
	Interface string
}

// IsZero reports whether neither direction is capped.
func (g GlobalLimit) IsZero() bool { return g.Down == 0 && g.Up == 0 }

// Check checks the rates against MaxRate and the interface name.
func (g GlobalLimit) Check() error {
	for _, x := range []struct {
		dir string
		r   Rate
	}{{"download", g.Down}, {"upload", g.Up}} {
		if x.r > MaxRate {
			return fmt.Errorf("global %s limit %d B/s is above the maximum of %d B/s (100 Gbit/s)", x.dir, x.r, MaxRate)
		}
	}
	if len(g.Interface) > 15 || strings.ContainsAny(g.Interface, "/ \t\n\x00") {
		return fmt.Errorf("bad interface name %q", g.Interface)
	}
	return nil
}

// GlobalShaper caps the machine's traffic and shares the cap among apps by
// priority: each priority gets at least its weight's share of the limit
// while it has traffic and borrows what the others leave (critical first,
// the rest in proportion to their weights). Traffic of no prioritised
// target is normal. An app's own limit (the throttlers) applies inside its
// share. It works beside any throttler pair.
type GlobalShaper interface {
	Backend
	// SetGlobal sets, changes or (zero) removes the global limit.
	SetGlobal(g GlobalLimit) error
	// Global returns the global limit in force.
	Global() GlobalLimit
	// SetPriority gives the target a priority and tells the shaper the
	// target's own download limit (down, 0: none), which a download
	// throttler enforces after the global shaper has passed the packets:
	// the shaper limits the target to it in its own tree too, so the pool
	// is not spent on packets the throttler then drops. PriorityNormal
	// with down 0 removes the target; called again it updates the
	// priority, the limit and the target's processes.
	SetPriority(t Target, p AppPriority, down Rate) error
	// RemovePriority forgets the target; unknown IDs are not an error.
	RemovePriority(id string) error
}
