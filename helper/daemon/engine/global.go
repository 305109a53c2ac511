package engine

import (
	"fmt"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The global limit and app priorities (issue #16).
//
// GLOBAL API:
//
//	GlobalLimit() api.GlobalLimit               the limit in force (zero: none)
//	SetGlobalLimit(c, g)                        set or change it (c.Admin only); persisted in the rules file
//	RemoveGlobalLimit(c)                        remove it (c.Admin only)
//	SetAppPriority(c, exe, uid, priority)       uid's app exe's share: low, normal, high, critical;
//	                                            part of the app's rule (normal removes it from the rule)
//	GlobalAvailable() error                     nil when a global shaper runs, else why not
//
// Errors wrap ErrInvalid, ErrNeedsManage, ErrQuota or
// backends.ErrGlobalUnavailable (kind api.ErrNotHere).

// GlobalAvailable returns nil when the global limit works here, else why
// not.
func (e *Engine) GlobalAvailable() error {
	if _, why := e.mgr.GlobalShaper(); why != nil {
		return api.WithKind(api.ErrNotHere, fmt.Errorf("%w: %v", backends.ErrGlobalUnavailable, why))
	}
	return nil
}

// GlobalLimit returns the global limit in force.
func (e *Engine) GlobalLimit() api.GlobalLimit {
	g := e.mgr.Global()
	return api.GlobalLimit{Down: uint64(g.Down), Up: uint64(g.Up), Interface: g.Interface}
}

// SetGlobalLimit sets the global limit for caller c (manage only). Both
// rates 0 removes it. On error nothing changes.
func (e *Engine) SetGlobalLimit(c api.Caller, g api.GlobalLimit) error {
	if !c.Admin {
		return fmt.Errorf("%w: the global limit needs the manage permission", ErrNeedsManage)
	}
	g, err := api.ValidateGlobalLimit(g)
	if err != nil {
		return err
	}
	if g.IsZero() {
		g = api.GlobalLimit{}
	} else if err := e.GlobalAvailable(); err != nil {
		return err
	}
	e.limMu.Lock()
	defer e.limMu.Unlock()
	prev := e.mgr.Global()
	if err := e.mgr.SetGlobal(toGlobal(g)); err != nil {
		return err
	}
	if err := e.store.SetGlobal(g); err != nil {
		_ = e.mgr.SetGlobal(prev)
		return err
	}
	e.notify()
	return nil
}

// RemoveGlobalLimit removes the global limit for caller c (manage only).
func (e *Engine) RemoveGlobalLimit(c api.Caller) error {
	return e.SetGlobalLimit(c, api.GlobalLimit{})
}

// SetAppPriority sets uid's app exe's priority for caller c (its own apps,
// or any with c.Admin); see GLOBAL API above.
func (e *Engine) SetAppPriority(c api.Caller, exe string, uid uint32, priority string) error {
	exe, err := ruleExe(c, exe, uid)
	if err != nil {
		return err
	}
	l, err := api.ValidateLimit(api.Limit{Priority: priority})
	if err != nil {
		return err
	}
	if l.Priority != "" {
		if err := e.GlobalAvailable(); err != nil {
			return err
		}
	}
	return e.changeRule(c, exe, uid, func(cur *api.Limit) { cur.Priority = l.Priority })
}

// restoreGlobal applies the persisted global limit at start; a limit the
// kernel refuses now is logged and kept in the file.
func (e *Engine) restoreGlobal() {
	g := e.store.Global()
	if g.IsZero() {
		return
	}
	if err := e.mgr.SetGlobal(toGlobal(g)); err != nil {
		e.logf("global limit not restored: %v", err)
	}
}

func toGlobal(g api.GlobalLimit) backends.GlobalLimit {
	return backends.GlobalLimit{Down: backends.Rate(g.Down), Up: backends.Rate(g.Up), Interface: g.Interface}
}

// toPriority converts a validated priority ("" is normal).
func toPriority(p string) backends.AppPriority {
	bp, _ := backends.ParseAppPriority(p)
	return bp
}

// globalName is the active global shaper's name, "" for none.
func (e *Engine) globalName() string {
	if g, _ := e.mgr.GlobalShaper(); g != nil {
		return g.Name()
	}
	return ""
}
