package engine

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The engine's limiting calls, made by the D-Bus server for a caller
// (api.Caller): who set a limit decides who may change it.

// Rules returns the persisted rules, sorted by uid then executable.
func (e *Engine) Rules() []api.Rule {
	e.limMu.Lock()
	defer e.limMu.Unlock()
	out := make([]api.Rule, 0, len(e.lim.rules))
	for _, r := range e.lim.rules {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].UID != out[j].UID {
			return out[i].UID < out[j].UID
		}
		return out[i].Exe < out[j].Exe
	})
	return out
}

// SetAppLimit creates or replaces uid's rule on exe (an absolute path, or
// the app id "<uid>:<exe>") for caller c: it is persisted and applies at
// once to the app's running processes and to new ones within a second.
// Both rates 0 removes the rule. A rule an administrator set can only be
// changed with c.Admin (ErrNeedsManage); without it the per-user bounds
// apply (ErrQuota). On error nothing changes.
func (e *Engine) SetAppLimit(c api.Caller, exe string, uid uint32, l api.Limit) error {
	exe, err := ruleExe(c, exe, uid)
	if err != nil {
		return err
	}
	if l.Down == 0 && l.Up == 0 {
		if _, err := api.ValidateLimit(l); err != nil {
			return err
		}
		err := e.RemoveAppLimit(c, exe, uid)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	l.Block, l.BlockWhen = "", "" // the rates' part only: a block stays as it is
	if l, err = e.checkLimit(l); err != nil {
		return err
	}
	return e.changeRule(c, exe, uid, func(cur *api.Limit) { *cur = cur.WithRates(l) })
}

// ruleExe checks and resolves the executable of a rule caller c asks for.
func ruleExe(c api.Caller, exe string, uid uint32) (string, error) {
	exe, err := parseExe(exe, uid)
	if err != nil {
		return "", err
	}
	if !c.Admin && len(exe) > MaxUserExeLen {
		return "", fmt.Errorf("%w: executable path is %d bytes long (at most %d without the manage permission)", ErrInvalid, len(exe), MaxUserExeLen)
	}
	return resolveExe(exe, c.UID), nil
}

// setRuleLocked creates or replaces rule r for caller c, applies it and
// saves it; on error nothing changes. Needs limMu.
func (e *Engine) setRuleLocked(c api.Caller, r api.Rule) error {
	if e.closed.Load() {
		return ErrClosed
	}
	k := appKey{r.UID, r.Exe}
	prev, had := e.lim.rules[k]
	if had && prev.Admin && !c.Admin {
		return fmt.Errorf("%w: the limit on %s was set by an administrator", ErrNeedsManage, r.Exe)
	}
	if !had {
		if err := e.lim.quotaErr(c, true); err != nil {
			return err
		}
	}
	restore := func() {
		if had {
			e.lim.rules[k] = prev
		} else {
			delete(e.lim.rules, k)
		}
	}
	e.lim.rules[k] = r
	// Apply to the running processes now, so a kernel refusal reaches the
	// caller and the rule is not saved.
	want, _ := e.desiredLocked()
	if d, ok := want[appTargetID(k)]; ok {
		if err := e.applyLocked(d); err != nil && !errors.Is(err, errGone) {
			restore()
			e.reconcileLocked()
			return fmt.Errorf("apply limit to %s: %w", r.Exe, err)
		}
	}
	if err := e.store.Set(r); err != nil {
		restore()
		e.reconcileLocked()
		return fmt.Errorf("save rule: %w", err)
	}
	e.reconcileLocked()
	e.publishLimitsLocked()
	return nil
}

// RemoveAppLimit deletes uid's rule on exe for caller c; the app's
// processes are unlimited at once. ErrNotFound when there is no such rule,
// ErrNeedsManage when an administrator set it and c is not one.
func (e *Engine) RemoveAppLimit(c api.Caller, exe string, uid uint32) error {
	exe, err := parseExe(exe, uid)
	if err != nil {
		return err
	}
	e.limMu.Lock()
	if e.closed.Load() {
		e.limMu.Unlock()
		return ErrClosed
	}
	k := appKey{uid, exe}
	if _, ok := e.lim.rules[k]; !ok {
		e.limMu.Unlock()
		k.exe = resolveExe(exe, c.UID) // the rule was set through a symlink
		e.limMu.Lock()
		if _, ok := e.lim.rules[k]; !ok {
			e.limMu.Unlock()
			return fmt.Errorf("%w: no rule for uid %d on %s", ErrNotFound, uid, exe)
		}
		exe = k.exe
	}
	r := e.lim.rules[k]
	if r.Admin && !c.Admin {
		e.limMu.Unlock()
		return fmt.Errorf("%w: the limit on %s was set by an administrator", ErrNeedsManage, exe)
	}
	if r.Limit.Block != "" {
		// Only the rates go: the block stays.
		r.Limit.Down, r.Limit.Up, r.Limit.When = 0, 0, ""
		return e.finishRuleAndUnlock(c, r)
	}
	return e.removeRuleAndUnlock(k)
}

// removeRuleAndUnlock deletes rule k, removes its target and releases
// limMu (held by the caller).
func (e *Engine) removeRuleAndUnlock(k appKey) error {
	if _, err := e.store.Remove(k.exe, k.uid); err != nil {
		e.limMu.Unlock()
		return fmt.Errorf("save rules: %w", err)
	}
	delete(e.lim.rules, k)
	rmErr := e.dropTargetAndUnlock(appTargetID(k))
	if rmErr != nil {
		return fmt.Errorf("remove limit of %s: %w", k.exe, rmErr)
	}
	return nil
}

// checkPID validates a pid for a process limit and reads the process.
func (e *Engine) checkPID(pid int) (*proc, error) {
	if err := api.ValidatePID(int64(pid)); err != nil {
		return nil, err
	}
	switch {
	case pid == 1:
		return nil, fmt.Errorf("%w: pid 1 (init) cannot be limited", ErrInvalid)
	case pid == e.self:
		return nil, fmt.Errorf("%w: pid %d is the helper itself", ErrInvalid, pid)
	}
	p, err := e.fs.read(pid)
	if errors.Is(err, errGone) {
		return nil, fmt.Errorf("%w: no process %d", ErrNotFound, pid)
	}
	if err != nil {
		return nil, fmt.Errorf("read process %d: %w", pid, err)
	}
	if p.kthread {
		return nil, fmt.Errorf("%w: pid %d is a kernel thread (%s)", ErrInvalid, pid, p.comm)
	}
	return p, nil
}

// ProcessIdentity returns, for authorization, the uid that owns pid (its
// uid when its real, effective and saved uids agree, 0 — an
// administrator's — when they do not: a setuid program; 0 for kernel
// threads) and its start time, which tells it apart from a later process
// with the same pid.
func (e *Engine) ProcessIdentity(pid int) (owner uint32, start uint64, err error) {
	if err := api.ValidatePID(int64(pid)); err != nil {
		return 0, 0, err
	}
	// A pidfd holds the process while /proc is read: if it is still alive
	// afterwards, everything read was its (the pid cannot have been
	// reused in between).
	fd := -1
	if e.cfg.ProcRoot == "/proc" {
		var err error
		if fd, err = pidfdOpen(pid); errors.Is(err, errESRCH) {
			return 0, 0, fmt.Errorf("%w: no process %d", ErrNotFound, pid)
		}
		defer pidfdClose(fd)
	}
	p, err := e.fs.read(pid)
	if errors.Is(err, errGone) || (err == nil && !pidfdAlive(fd)) {
		return 0, 0, fmt.Errorf("%w: no process %d", ErrNotFound, pid)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read process %d: %w", pid, err)
	}
	if p.kthread {
		return 0, p.start, nil
	}
	return p.owner, p.start, nil
}

// SetProcessLimit limits one process (and the children it starts) for
// caller c; it is taken out of its app's target while limited. start, when
// not 0, is the start time the caller was authorized for: a different
// process under the same pid is ErrNotFound. Not persisted: the limit ends
// with the process. Both rates 0 removes it. Without c.Admin the process
// must be c's own, a limit an administrator set cannot be replaced
// (ErrNeedsManage) and the per-user bounds apply (ErrQuota). On error
// nothing changes.
func (e *Engine) SetProcessLimit(c api.Caller, pid int, start uint64, l api.Limit) error {
	p, err := e.ownProcess(c, pid, start)
	if err != nil {
		return err
	}
	if l.Down == 0 && l.Up == 0 {
		if _, err := api.ValidateLimit(l); err != nil {
			return err
		}
		err := e.RemoveProcessLimit(c, pid, p.start)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	l.Block, l.BlockWhen = "", ""
	if l, err = e.checkLimit(l); err != nil {
		return err
	}
	return e.setProcess(c, p, func(cur *api.Limit) { *cur = cur.WithRates(l) })
}

// setProcess sets the limit of process p (read by checkPID) for caller c
// to what change makes of its current one (zero when it has none). Not
// for removal: the result must limit or block something.
func (e *Engine) setProcess(c api.Caller, p *proc, change func(*api.Limit)) error {
	pid := p.pid
	e.limMu.Lock()
	if e.closed.Load() {
		e.limMu.Unlock()
		return ErrClosed
	}
	// Make sure the process table has this process (it may be younger
	// than the last scan).
	e.stateMu.Lock()
	if cur := e.st.procs[pid]; cur == nil || cur.start != p.start {
		if cur != nil {
			e.removeProcLocked(cur)
		}
		p.found, p.seenScan = e.st.scans, e.st.scans
		e.addProcLocked(p)
	}
	e.stateMu.Unlock()
	prev := e.lim.procLimits[pid]
	if prev != nil && prev.start == p.start && prev.admin && !c.Admin {
		e.limMu.Unlock()
		return fmt.Errorf("%w: the limit on process %d was set by an administrator", ErrNeedsManage, pid)
	}
	if prev == nil || prev.start != p.start {
		if err := e.lim.quotaErr(c, false); err != nil {
			e.limMu.Unlock()
			return err
		}
	}
	var l api.Limit
	if prev != nil && prev.start == p.start {
		l = prev.limit
	}
	change(&l)
	pl := &procLimit{pid: pid, start: p.start, uid: p.uid, limit: l, by: c.UID, admin: c.Admin}
	e.lim.procLimits[pid] = pl
	want, _ := e.desiredLocked()
	if d, ok := want[pl.targetID()]; ok {
		err := e.applyLocked(d)
		if _, _, _, st, serr := e.fs.stat(pid); err == nil && (serr != nil || st != p.start) {
			err = errGone // it exited; only its children were placed
		}
		if err != nil {
			if prev != nil && prev.start == p.start {
				e.lim.procLimits[pid] = prev
			} else {
				delete(e.lim.procLimits, pid)
			}
			e.reconcileLocked()
			e.limMu.Unlock()
			if errors.Is(err, errGone) {
				return fmt.Errorf("%w: process %d exited", ErrNotFound, pid)
			}
			return fmt.Errorf("limit process %d: %w", pid, err)
		}
	}
	e.commitAndUnlock()
	return nil
}

// RemoveProcessLimit removes a process's limit for caller c; it rejoins
// its app's target if the app has a rule. start, when not 0, must be the
// limited process's. ErrNotFound when it has no limit, ErrNeedsManage when
// an administrator set it and c is not one.
func (e *Engine) RemoveProcessLimit(c api.Caller, pid int, start uint64) error {
	if err := api.ValidatePID(int64(pid)); err != nil {
		return err
	}
	e.limMu.Lock()
	if e.closed.Load() {
		e.limMu.Unlock()
		return ErrClosed
	}
	pl, ok := e.lim.procLimits[pid]
	if !ok || (start != 0 && pl.start != start) {
		e.limMu.Unlock()
		return fmt.Errorf("%w: process %d has no limit", ErrNotFound, pid)
	}
	if pl.admin && !c.Admin {
		e.limMu.Unlock()
		return fmt.Errorf("%w: the limit on process %d was set by an administrator", ErrNeedsManage, pid)
	}
	if pl.limit.Block != "" {
		// Only the rates go: the block stays.
		pl.limit.Down, pl.limit.Up, pl.limit.When = 0, 0, ""
		e.reconcileLocked()
		e.publishLimitsLocked()
		e.limMu.Unlock()
		e.notify()
		e.publish(time.Now())
		return nil
	}
	delete(e.lim.procLimits, pid)
	rmErr := e.dropTargetAndUnlock(pl.targetID())
	if rmErr != nil {
		return fmt.Errorf("remove limit of process %d: %w", pid, rmErr)
	}
	return nil
}

// SetPaused pauses or resumes limits: uid's own (rules of uid and limits
// on uid's processes), or everyone's when all is set. Paused limits keep
// their rules but leave the kernel; resuming applies them again.
func (e *Engine) SetPaused(uid uint32, all bool, paused bool) error {
	e.limMu.Lock()
	if e.closed.Load() {
		e.limMu.Unlock()
		return ErrClosed
	}
	switch {
	case all && paused:
		e.lim.pausedAll = true
	case all:
		e.lim.pausedAll = false
		e.lim.paused = map[uint32]bool{}
		e.lim.adminPaused = map[uint32]bool{}
	case paused:
		e.lim.paused[uid] = true
	default:
		if e.lim.pausedAll {
			// Everyone is paused: resume uid alone, keep the others paused.
			e.lim.pausedAll = false
			for k := range e.lim.rules {
				e.lim.paused[k.uid] = true
				e.lim.adminPaused[k.uid] = true
			}
			for _, pl := range e.lim.procLimits {
				e.lim.paused[pl.uid] = true
				e.lim.adminPaused[pl.uid] = true
			}
		}
		delete(e.lim.paused, uid)
	}
	e.commitAndUnlock()
	return nil
}
