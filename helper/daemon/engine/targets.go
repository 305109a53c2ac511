package engine

import (
	"errors"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Targets: from the limits (rules and process limits) to what the
// throttle manager holds, kept in line by reconcileLocked.

// desired is a target as the rules and process limits want it now.
type desired struct {
	id     string
	kind   backends.TargetKind
	pids   []int
	starts []uint64
	limits backends.Limits
	exe    string // an app's program and owner (backends.Target.Exe, UID)
	uid    uint32
}

// desiredLocked computes every target the limits want, and the process
// limits whose process is gone. Needs limMu; takes stateMu.
func (e *Engine) desiredLocked() (map[string]*desired, []int) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	out, excluded, dead := e.processTargetsLocked()
	e.appTargetsLocked(out, excluded)
	return out, dead
}

// processTargetsLocked computes the targets of process limits: each limited
// process with its descendants (those of its owner, for a limit a user
// set). It returns them, the pids they take out of their apps' targets,
// and the process limits that ended. Needs limMu and stateMu.
func (e *Engine) processTargetsLocked() (out map[string]*desired, excluded map[int]bool, dead []int) {
	out, excluded = map[string]*desired{}, map[int]bool{}
	limited := map[int]bool{}
	for pid, pl := range e.lim.procLimits {
		p := e.st.procs[pid]
		if p == nil || p.start != pl.start {
			dead = append(dead, pid)
			continue
		}
		if !pl.admin && p.owner != pl.by {
			// It exec'd a setuid program or changed uid: a limit its
			// user set no longer binds it.
			e.logf("engine: limit on process %d ends: its owner is now uid %d, the limit was set by uid %d", pid, p.owner, pl.by)
			dead = append(dead, pid)
			continue
		}
		limited[pid] = true
		if e.lim.isPaused(pl.uid, pl.admin) {
			continue
		}
		bl := e.effective(pl.limit)
		if bl.IsZero() {
			continue
		}
		id := pl.targetID()
		out[id] = &desired{id: id, kind: backends.TargetProcess, pids: []int{pid}, starts: []uint64{p.start}, limits: bl}
	}
	if len(limited) == 0 {
		return out, excluded, dead
	}
	// A process limit takes the process and its descendants out of their
	// apps' targets: the descendants share the process's limit.
	memo := map[int]int{}
	var owner func(pid, depth int) int // nearest limited ancestor-or-self, 0 for none
	owner = func(pid, depth int) int {
		if limited[pid] {
			return pid
		}
		if v, ok := memo[pid]; ok {
			return v
		}
		v := 0
		if p := e.st.procs[pid]; p != nil && depth < 64 && p.ppid > 1 && p.ppid != pid {
			v = owner(p.ppid, depth+1)
		}
		memo[pid] = v
		return v
	}
	for pid, p := range e.st.procs {
		o := owner(pid, 0)
		if o == 0 {
			continue
		}
		if pl := e.lim.procLimits[o]; !pl.admin && p.owner != pl.by {
			continue // another owner's descendant: not pulled into a user's limit
		}
		excluded[pid] = true
		if o == pid || pid == e.self || p.kthread {
			continue
		}
		if d := out[e.lim.procLimits[o].targetID()]; d != nil {
			d.pids = append(d.pids, pid)
		}
	}
	for _, d := range out {
		if len(d.pids) > 1 {
			sort.Ints(d.pids)
			d.starts = d.starts[:0]
			for _, pid := range d.pids {
				d.starts = append(d.starts, e.st.procs[pid].start)
			}
		}
	}
	return out, excluded, dead
}

// appTargetsLocked adds the targets of app rules to out: the app's running
// processes except those excluded (and, for a rule a user set, those its
// uid does not own). Needs limMu and stateMu.
func (e *Engine) appTargetsLocked(out map[string]*desired, excluded map[int]bool) {
	// With sockets tagged in the kernel an app's rule is applied before
	// any of its processes runs (its first socket is the app's), when its
	// executable is installed.
	early := e.mgr.TagsAtCreation()
	for key, r := range e.appLimitsLocked() {
		if e.lim.isPaused(key.uid, r.Admin) {
			continue
		}
		bl := e.appQuotaLimitsLocked(key, r)
		if bl.IsZero() {
			continue
		}
		d := &desired{id: appTargetID(key), kind: backends.TargetApp, limits: bl, exe: key.exe, uid: key.uid}
		for pid := range e.appPIDs(key) {
			if excluded[pid] || pid == 1 || pid == e.self {
				continue
			}
			if p := e.st.procs[pid]; !r.Admin && (p == nil || p.owner != key.uid) {
				continue // a setuid program run by someone else: not bound by a user's rule
			}
			d.pids = append(d.pids, pid)
		}
		if len(d.pids) == 0 && !(early && installed(key)) {
			if !bl.Block.On && !bl.Budget.On {
				continue
			}
			// Nothing runs and its sockets cannot be recognised before
			// a process is seen: only the block and the budget wait for
			// the app's first process (the blocker knows the program
			// and owner).
			d.limits = backends.Limits{Block: bl.Block, Budget: bl.Budget}
		}
		sort.Ints(d.pids)
		for _, pid := range d.pids {
			d.starts = append(d.starts, e.st.procs[pid].start)
		}
		out[d.id] = d
	}
}

// installed reports whether an app's executable is a file on this system,
// so sockets of a process that runs it can be recognised.
func installed(key appKey) bool {
	if key.bracketed() {
		return false
	}
	st, err := os.Stat(key.exe)
	return err == nil && st.Mode().IsRegular()
}

// reconcileLocked brings the manager in line with the limits: targets no
// longer wanted are removed (processes move back), new or changed ones
// applied. It reports whether limits changed by themselves (a limited
// process exited). Needs limMu.
func (e *Engine) reconcileLocked() (notify bool) {
	if e.closed.Load() {
		return false
	}
	want, dead := e.desiredLocked()
	for _, pid := range dead {
		delete(e.lim.procLimits, pid)
		notify = true
	}
	for id := range e.lim.applied {
		if _, ok := want[id]; ok {
			continue
		}
		if err := e.mgr.Remove(id); err != nil {
			e.logf("engine: remove limit %s: %v", id, err)
		}
		delete(e.lim.applied, id)
		delete(e.lim.failedAt, id)
		delete(e.lim.lastErr, id)
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	// Process targets first: a process leaves its app's target by being
	// placed in its own.
	sort.Slice(ids, func(i, j int) bool {
		a, b := want[ids[i]], want[ids[j]]
		if a.kind != b.kind {
			return a.kind == backends.TargetProcess
		}
		return ids[i] < ids[j]
	})
	now := time.Now()
	for _, id := range ids {
		d := want[id]
		if cur, ok := e.lim.applied[id]; ok && cur.limits == d.limits && slices.Equal(cur.pids, d.pids) {
			continue
		}
		if t, ok := e.lim.failedAt[id]; ok && now.Sub(t) < 2*time.Second {
			e.dirty.Store(true) // retry soon, not on every scan
			continue
		}
		if err := e.applyLocked(d); err != nil {
			e.lim.failedAt[id] = now
			e.dirty.Store(true)
			if msg := err.Error(); e.lim.lastErr[id] != msg {
				e.lim.lastErr[id] = msg
				e.logf("engine: apply limit %s: %v", id, err)
			}
			continue
		}
		delete(e.lim.failedAt, id)
		delete(e.lim.lastErr, id)
	}
	return notify
}

// applyLocked applies one target. Processes that exit during the call are
// dropped and the call retried; when none is left the target is removed
// and errGone returned. Needs limMu.
func (e *Engine) applyLocked(d *desired) error {
	pids, starts, limits := d.pids, d.starts, d.limits
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		t := backends.Target{ID: d.id, Kind: d.kind, PIDs: pids, Exe: d.exe, UID: d.uid}
		if err = e.mgr.Apply(t, limits); err == nil {
			e.lim.applied[d.id] = appliedTarget{kind: d.kind, pids: pids, limits: limits}
			return nil
		}
		var alivePIDs []int
		var aliveStarts []uint64
		for i, pid := range pids {
			if _, _, _, st, serr := e.fs.stat(pid); serr == nil && st == starts[i] {
				alivePIDs = append(alivePIDs, pid)
				aliveStarts = append(aliveStarts, st)
			}
		}
		if len(alivePIDs) == len(pids) {
			// A real failure; the manager kept the previous state.
			if errors.Is(err, backends.ErrDownloadUnavailable) {
				return api.WithKind(api.ErrNotHere, err)
			}
			return err
		}
		if len(alivePIDs) == 0 && len(pids) > 0 && keepsBlock(d) {
			// The app's processes are gone; its block waits for the next.
			pids, starts, limits = nil, nil, backends.Limits{Block: d.limits.Block, Budget: d.limits.Budget}
			continue
		}
		if len(alivePIDs) == 0 {
			_ = e.mgr.Remove(d.id)
			delete(e.lim.applied, d.id)
			return errGone
		}
		pids, starts = alivePIDs, aliveStarts
	}
	return err
}

// dropTargetAndUnlock removes the kernel state of target id if it is
// applied, reconciles and publishes the limits, releases limMu (held by the
// caller) and tells listeners. It returns the manager's error, if any.
func (e *Engine) dropTargetAndUnlock(id string) error {
	var rmErr error
	if _, ok := e.lim.applied[id]; ok {
		rmErr = e.mgr.Remove(id)
		delete(e.lim.applied, id)
	}
	e.commitAndUnlock()
	return rmErr
}

// commitAndUnlock applies the desired limits (reconcile), publishes them,
// releases limMu (held by the caller) and tells listeners and the
// snapshot: the end of every limit change.
func (e *Engine) commitAndUnlock() {
	e.reconcileLocked()
	e.publishLimitsLocked()
	e.limMu.Unlock()
	e.notify()
	e.publish(time.Now())
}
