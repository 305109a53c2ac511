package api

import (
	"context"
	"strings"
)

// The global limit and app priorities (issue #16): one download and one
// upload cap for the whole machine (or one interface), shared among apps by
// priority. Setting or removing the global limit needs manage; an app's
// priority is part of its rule (Limit.Priority), limit-own for the
// caller's own apps, manage for others'.
const (
	MethodGetGlobalLimit    = "GetGlobalLimit"    // () → GlobalLimit
	MethodSetGlobalLimit    = "SetGlobalLimit"    // (down t, up t, iface s) → ()
	MethodRemoveGlobalLimit = "RemoveGlobalLimit" // () → ()
	MethodSetAppPriority    = "SetAppPriority"    // (exe s, uid u, priority s) → ()
)

// Priorities of an app's share of the global limit; their weights are 1,
// 2, 4 and 8, and critical borrows first.
const (
	PriorityLow      = "low"
	PriorityNormal   = "normal"
	PriorityHigh     = "high"
	PriorityCritical = "critical"
)

// Priorities lists the priorities, lowest first.
var Priorities = []string{PriorityLow, PriorityNormal, PriorityHigh, PriorityCritical}

func init() {
	Methods = append(Methods,
		Method{MethodGetGlobalLimit, ActionMonitor, false},
		Method{MethodSetGlobalLimit, ActionManage, false},
		Method{MethodRemoveGlobalLimit, ActionManage, false},
		Method{MethodSetAppPriority, ActionLimitOwn, true},
	)
}

// GlobalLimiter is the client side of the global limit and app priorities
// (helper/client implements it): the window's global limit dialog and
// priority selector and the CLI's limit --global, unlimit --global and
// priority use it.
type GlobalLimiter interface {
	// GlobalLimit returns the machine's global limit (zero: none).
	GlobalLimit(ctx context.Context) (GlobalLimit, error)
	// SetGlobalLimit sets it (manage).
	SetGlobalLimit(ctx context.Context, g GlobalLimit) error
	// RemoveGlobalLimit removes it (manage).
	RemoveGlobalLimit(ctx context.Context) error
	// SetAppPriority sets an app's share of the global limit: low, normal,
	// high or critical (limit-own for the caller's own apps, else manage).
	SetAppPriority(ctx context.Context, exe string, uid uint32, priority string) error
}

// GlobalLimit is the machine's cap: payload bytes per second, 0 = that
// direction uncapped; Interface "" = the interfaces the helper shapes.
type GlobalLimit struct {
	Down      uint64 `json:"down"`
	Up        uint64 `json:"up"`
	Interface string `json:"interface,omitempty"`
}

// IsZero reports whether neither direction is capped.
func (g GlobalLimit) IsZero() bool { return g.Down == 0 && g.Up == 0 }

// NormalPriority returns a priority spelled out ("" is normal).
func NormalPriority(p string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(p))
	if s == "" {
		return PriorityNormal, nil
	}
	for _, x := range Priorities {
		if x == s {
			return x, nil
		}
	}
	return "", Errorf(ErrInvalid, "unknown priority %q (want low, normal, high or critical)", p)
}

// ValidateGlobalLimit checks a global limit's rates and interface name.
func ValidateGlobalLimit(g GlobalLimit) (GlobalLimit, error) {
	if g.Down > MaxRate || g.Up > MaxRate {
		return g, Errorf(ErrInvalid, "global limit above the maximum of %d B/s (100 Gbit/s)", uint64(MaxRate))
	}
	if len(g.Interface) > 15 || strings.ContainsAny(g.Interface, "/ \t\n\x00:") || Printable(g.Interface) != g.Interface {
		return g, Errorf(ErrInvalid, "bad interface name %q", g.Interface)
	}
	return g, nil
}

// validatePriority spells l's priority out; normal is stored as "".
func validatePriority(l Limit) (Limit, error) {
	p, err := NormalPriority(l.Priority)
	if err != nil {
		return l, err
	}
	if p == PriorityNormal {
		p = ""
	}
	l.Priority = p
	return l, nil
}
