package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Blocking and schedules (issue #16).
//
// BLOCK API — the engine-level calls to block an app or a process, for the
// D-Bus server and for other parts of the helper (the history/quota
// helper's "then block" action):
//
//	SetAppBlock(c, exe, uid, traffic, when)  block uid's app exe: traffic "all", "internet" or "local"
//	                                         ("" = all); when is a schedule (api.ParseSchedule, "" = always).
//	                                         Persisted as part of the app's rule; its rates stay.
//	RemoveAppBlock(c, exe, uid)              lift it (the rule's rates stay; a rule with nothing left goes)
//	SetProcessBlock(c, pid, start, traffic, when)
//	                                         block one process and its children (not persisted), at the
//	                                         times when says ("" = always)
//	RemoveProcessBlock(c, pid, start)        lift it
//	BlockAvailable() error                   nil when a blocker runs, else why not (wraps backends.ErrBlockUnavailable)
//
// c is the api.Caller: with c.Admin (manage, or the helper itself acting
// as root: api.Caller{UID: 0, Admin: true}) any app; without it only c.UID's
// own apps and processes, within the per-user bounds. A block set by an
// administrator can only be lifted by one (ErrNeedsManage). Errors wrap
// ErrInvalid, ErrNotFound, ErrNeedsManage, ErrQuota or
// backends.ErrBlockUnavailable. A blocked target's new connections fail at
// once with EPERM and its open connections stop (backends.Blocker); the
// block reaches new processes of the app within a second of their start,
// like a limit.

// now is the clock schedules are read against.
func (e *Engine) now() time.Time {
	if e.cfg.Now != nil {
		return e.cfg.Now()
	}
	return time.Now()
}

// scheduled drops the parts of bl (from l) whose schedule is not active
// now, and a block no blocker can apply.
func (e *Engine) scheduled(l api.Limit, bl backends.Limits) backends.Limits {
	if l.When != "" || l.BlockWhen != "" {
		now := e.now()
		if s, err := api.ParseSchedule(l.When); err != nil || !s.Active(now) {
			bl.Down, bl.Up = backends.Limit{}, backends.Limit{}
		}
		if s, err := api.ParseSchedule(l.BlockWhen); err != nil || !s.Active(now) {
			bl.Block = backends.Block{}
		}
	}
	if bl.Block.On && e.BlockAvailable() != nil {
		bl.Block = backends.Block{}
	}
	return bl
}

// BlockAvailable returns nil when blocking works here, else why not
// (wrapping backends.ErrBlockUnavailable, of kind api.ErrNotHere).
func (e *Engine) BlockAvailable() error {
	if _, why := e.mgr.Blocker(); why != nil {
		return api.WithKind(api.ErrNotHere, fmt.Errorf("%w: %v", backends.ErrBlockUnavailable, why))
	}
	return nil
}

// checkBlock checks that a block l asks for (validated by
// api.ValidateLimit) can be applied here.
func (e *Engine) checkBlock(l api.Limit) (api.Limit, error) {
	if l.Block == "" {
		return l, nil
	}
	return l, e.BlockAvailable()
}

// blockLimit validates a block request and returns it as the block part of
// a limit.
func (e *Engine) blockLimit(traffic, when string) (api.Limit, error) {
	if traffic == "" {
		traffic = api.TrafficAll
	}
	l, err := api.ValidateLimit(api.Limit{Block: traffic, BlockWhen: when})
	if err != nil {
		return l, err
	}
	return e.checkBlock(l)
}

// changeRule sets uid's rule on exe (checked by ruleExe) for caller c to
// what change makes of the current one (a new rule starts from nothing);
// a rule left limiting nothing is removed.
func (e *Engine) changeRule(c api.Caller, exe string, uid uint32, change func(*api.Limit)) error {
	e.limMu.Lock()
	k := appKey{uid, exe}
	r, had := e.lim.rules[k]
	if !had {
		r = api.Rule{Exe: exe, UID: uid, Limit: api.Limit{Traffic: api.TrafficAll}}
	}
	change(&r.Limit)
	if !r.Limit.Limited() {
		if !had {
			e.limMu.Unlock()
			return nil
		}
		if r.Admin && !c.Admin {
			e.limMu.Unlock()
			return fmt.Errorf("%w: the limit on %s was set by an administrator", ErrNeedsManage, exe)
		}
		return e.removeRuleAndUnlock(k)
	}
	return e.finishRuleAndUnlock(c, r)
}

// finishRuleAndUnlock sets rule r for c (setRuleLocked), releases limMu
// (held by the caller) and tells listeners.
func (e *Engine) finishRuleAndUnlock(c api.Caller, r api.Rule) error {
	r.Admin = c.Admin
	err := e.setRuleLocked(c, r)
	e.limMu.Unlock()
	if err != nil {
		return err
	}
	e.notify()
	e.publish(time.Now())
	return nil
}

// SetAppBlock blocks uid's app exe for caller c; see BLOCK API above.
func (e *Engine) SetAppBlock(c api.Caller, exe string, uid uint32, traffic, when string) error {
	exe, err := ruleExe(c, exe, uid)
	if err != nil {
		return err
	}
	b, err := e.blockLimit(traffic, when)
	if err != nil {
		return err
	}
	return e.changeRule(c, exe, uid, func(l *api.Limit) { l.Block, l.BlockWhen = b.Block, b.BlockWhen })
}

// RemoveAppBlock lifts the block of uid's app exe for caller c; see BLOCK
// API above. ErrNotFound when it is not blocked.
func (e *Engine) RemoveAppBlock(c api.Caller, exe string, uid uint32) error {
	exe, err := ruleExe(c, exe, uid)
	if err != nil {
		return err
	}
	e.limMu.Lock()
	r, had := e.lim.rules[appKey{uid, exe}]
	e.limMu.Unlock()
	if !had || r.Limit.Block == "" {
		return fmt.Errorf("%w: uid %d's %s is not blocked", ErrNotFound, uid, exe)
	}
	return e.changeRule(c, exe, uid, func(l *api.Limit) { l.Block, l.BlockWhen = "", "" })
}

// SetProcessBlock blocks process pid (and the children it starts) for
// caller c; see BLOCK API above. start, when not 0, is the start time the
// caller was authorized for.
func (e *Engine) SetProcessBlock(c api.Caller, pid int, start uint64, traffic, when string) error {
	p, err := e.ownProcess(c, pid, start)
	if err != nil {
		return err
	}
	b, err := e.blockLimit(traffic, when)
	if err != nil {
		return err
	}
	return e.setProcess(c, p, func(l *api.Limit) {
		if l.Traffic == "" && l.DownTraffic == "" {
			l.Traffic = api.TrafficAll
		}
		l.Block, l.BlockWhen = b.Block, b.BlockWhen
	})
}

// RemoveProcessBlock lifts the block of process pid for caller c; its
// rates stay. ErrNotFound when it is not blocked.
func (e *Engine) RemoveProcessBlock(c api.Caller, pid int, start uint64) error {
	p, err := e.ownProcess(c, pid, start)
	if err != nil {
		return err
	}
	e.limMu.Lock()
	pl := e.lim.procLimits[pid]
	e.limMu.Unlock()
	if pl == nil || pl.start != p.start || pl.limit.Block == "" {
		return fmt.Errorf("%w: process %d is not blocked", ErrNotFound, pid)
	}
	if pl.limit.Down == 0 && pl.limit.Up == 0 {
		err := e.RemoveProcessLimit(c, pid, p.start)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	return e.setProcess(c, p, func(l *api.Limit) { l.Block, l.BlockWhen = "", "" })
}

// ownProcess reads process pid for caller c: it must exist with start
// (when not 0) and, without c.Admin, be c's own.
func (e *Engine) ownProcess(c api.Caller, pid int, start uint64) (*proc, error) {
	p, err := e.checkPID(pid)
	if err != nil {
		return nil, err
	}
	if start != 0 && p.start != start {
		return nil, fmt.Errorf("%w: process %d exited", ErrNotFound, pid)
	}
	if !c.Admin && p.owner != c.UID {
		return nil, fmt.Errorf("%w: process %d is not uid %d's own", ErrNeedsManage, pid, c.UID)
	}
	return p, nil
}

// appPIDs returns the processes of app key now (nil when none runs). Needs
// stateMu.
func (e *Engine) appPIDs(key appKey) map[int]struct{} {
	if a := e.st.apps[key]; a != nil {
		return a.pids
	}
	return nil
}

// keepsBlock reports whether target d stays applied without processes: an
// app's block waits for the app's next process.
func keepsBlock(d *desired) bool {
	return d.kind == backends.TargetApp && (d.limits.Block.On || d.limits.Budget.On)
}
