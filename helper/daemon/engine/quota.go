package engine

import (
	"maps"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Data quotas reach the engine in two ways: the engine reports every app's
// bytes (Config.Usage), and a quota whose cap is reached with a throttle
// action puts a limit on the app (SetQuotaLimits). That limit is kept
// apart from the app's rule: the stricter rate of the two applies, and
// lifting the quota's limit leaves the rule as it was.

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

// appLimitsLocked returns the limit each app should have: its rule's,
// a reached quota's, or the stricter of both rates. Needs limMu.
func (e *Engine) appLimitsLocked() map[appKey]api.Rule {
	if len(e.lim.quotas) == 0 {
		return e.lim.rules
	}
	out := maps.Clone(e.lim.rules)
	for k, q := range e.lim.quotas {
		r, ok := out[k]
		if !ok {
			out[k] = api.Rule{Exe: k.exe, UID: k.uid, Limit: q.Limit, Admin: q.Admin}
			continue
		}
		if q.Limit.Block != "" {
			r.Limit.Block, r.Limit.BlockWhen = q.Limit.Block, "" // blocked until the quota lifts it
		}
		if q.Limit.Down > 0 || q.Limit.Up > 0 {
			r.Limit.Down = stricter(r.Limit.Down, q.Limit.Down)
			r.Limit.Up = stricter(r.Limit.Up, q.Limit.Up)
			r.Limit.Traffic = backends.TrafficAll.String() // the quota's limit holds for all traffic, at all times
			r.Limit.When = ""
		}
		r.Admin = r.Admin || q.Admin
		out[k] = r
	}
	return out
}

// stricter returns the lower of two rates, 0 meaning unlimited.
func stricter(a, b uint64) uint64 {
	switch {
	case a == 0:
		return b
	case b == 0 || a < b:
		return a
	}
	return b
}
