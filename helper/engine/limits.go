package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/rules"
)

// procLimit is a per-process limit (not persisted).
type procLimit struct {
	pid   int
	start uint64
	uid   uint32
	limit api.Limit
}

func (p *procLimit) targetID() string { return pidTargetID(p.pid, p.start) }

// appliedTarget is what the manager holds for one target.
type appliedTarget struct {
	kind   backends.TargetKind
	pids   []int
	limits backends.Limits
}

// limitState is everything limMu guards.
type limitState struct {
	rules      map[appKey]api.Rule
	procLimits map[int]*procLimit
	applied    map[string]appliedTarget
	paused     map[uint32]bool
	pausedAll  bool
	failedAt   map[string]time.Time
	lastErr    map[string]string
}

func (l *limitState) init() {
	l.rules = map[appKey]api.Rule{}
	l.procLimits = map[int]*procLimit{}
	l.applied = map[string]appliedTarget{}
	l.paused = map[uint32]bool{}
	l.failedAt = map[string]time.Time{}
	l.lastErr = map[string]string{}
}

func (l *limitState) isPaused(uid uint32) bool { return l.pausedAll || l.paused[uid] }

// limitView is an immutable copy of the limits for readers that must not
// take limMu (snapshots, details).
type limitView struct {
	rules     map[appKey]api.Limit
	procs     map[int]procLimitView
	paused    map[uint32]bool
	pausedAll bool
}

type procLimitView struct {
	start uint64
	limit api.Limit
}

func (v *limitView) hasRule(k appKey) bool {
	if v == nil {
		return false
	}
	_, ok := v.rules[k]
	return ok
}

func (e *Engine) publishLimitsLocked() {
	v := &limitView{rules: map[appKey]api.Limit{}, procs: map[int]procLimitView{}, paused: map[uint32]bool{},
		pausedAll: e.lim.pausedAll}
	for k, r := range e.lim.rules {
		v.rules[k] = r.Limit
	}
	for pid, pl := range e.lim.procLimits {
		v.procs[pid] = procLimitView{start: pl.start, limit: pl.limit}
	}
	for uid, p := range e.lim.paused {
		v.paused[uid] = p
	}
	e.limView.Store(v)
}

// appTargetID names an app's target: app-<uid>-<exe basename>-<hash>,
// short and safe in kernel object names.
func appTargetID(k appKey) string {
	sum := sha256.Sum256([]byte(k.exe))
	base := sanitizeName(filepath.Base(k.exe))
	if len(base) > 16 {
		base = base[:16]
	}
	return fmt.Sprintf("app-%d-%s-%s", k.uid, base, hex.EncodeToString(sum[:4]))
}

func pidTargetID(pid int, start uint64) string { return fmt.Sprintf("pid-%d-%d", pid, start) }

func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// toLimits converts a validated api.Limit.
func toLimits(l api.Limit) backends.Limits {
	tt, _ := backends.ParseTrafficType(l.Traffic)
	return backends.Limits{
		Down: backends.Limit{Rate: backends.Rate(l.Down), Traffic: tt},
		Up:   backends.Limit{Rate: backends.Rate(l.Up), Traffic: tt},
	}
}

// checkLimit validates l for a new limit: rates, traffic type, and what the
// active backends can do. It returns l with the traffic type spelled out.
func (e *Engine) checkLimit(l api.Limit) (api.Limit, error) {
	if err := rules.ValidateLimit(l); err != nil {
		return l, fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), rules.ErrInvalid.Error()+": "))
	}
	tt, _ := backends.ParseTrafficType(l.Traffic)
	l.Traffic = tt.String()
	if l.Down > 0 {
		d, why := e.mgr.Download()
		if d == nil {
			return l, fmt.Errorf("%w: %v", backends.ErrDownloadUnavailable, why)
		}
		if !d.Capabilities().Supports(tt) {
			return l, fmt.Errorf("%w: download backend %s cannot limit %s traffic", ErrInvalid, d.Name(), tt)
		}
	}
	if l.Up > 0 && !e.mgr.Upload().Capabilities().Supports(tt) {
		return l, fmt.Errorf("%w: upload backend %s cannot limit %s traffic", ErrInvalid, e.mgr.Upload().Name(), tt)
	}
	return l, nil
}

// effective returns the limits a rule can have with the active backends:
// a restored rule whose download part cannot be enforced keeps its upload
// part.
func (e *Engine) effective(l api.Limit) backends.Limits {
	bl := toLimits(l)
	if bl.Down.Rate > 0 {
		if d, _ := e.mgr.Download(); d == nil || !d.Capabilities().Supports(bl.Down.Traffic) {
			bl.Down = backends.Limit{}
		}
	}
	if bl.Up.Rate > 0 && !e.mgr.Upload().Capabilities().Supports(bl.Up.Traffic) {
		bl.Up = backends.Limit{}
	}
	return bl
}

// parseExe accepts an absolute executable path or an app id
// ("<uid>:<exe>") of the same uid.
func parseExe(exe string, uid uint32) (string, error) {
	if len(exe) > rules.MaxExeLen+16 {
		return "", fmt.Errorf("%w: executable path is %d bytes long (at most %d)", ErrInvalid, len(exe), rules.MaxExeLen)
	}
	if !strings.HasPrefix(exe, "/") {
		if u, rest, ok := strings.Cut(exe, ":"); ok && u != "" && strings.Trim(u, "0123456789") == "" {
			n, err := strconv.ParseUint(u, 10, 32)
			if err != nil {
				return "", fmt.Errorf("%w: app id %q has a bad uid", ErrInvalid, exe)
			}
			if uint32(n) != uid {
				return "", fmt.Errorf("%w: app id %q belongs to uid %d, not %d", ErrInvalid, exe, n, uid)
			}
			exe = rest
		}
	}
	if strings.HasPrefix(exe, "[") {
		return "", fmt.Errorf("%w: %q is a kernel task or a process without an executable; it cannot be limited by app", ErrInvalid, exe)
	}
	if err := rules.ValidateExe(exe); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), rules.ErrInvalid.Error()+": "))
	}
	return exe, nil
}

// resolveExe follows symlinks: /proc/PID/exe names the real file, so a
// rule given as /usr/bin/firefox → /usr/lib/firefox/firefox must be kept
// under the latter to match. A path that does not exist (yet) is kept, and
// so is one below a directory not everyone may search: the root helper
// must not tell a user where links in other people's directories point.
func resolveExe(exe string) string {
	if !publicDirs(exe) {
		return exe
	}
	r, err := filepath.EvalSymlinks(exe)
	if err != nil || r == exe || rules.ValidateExe(r) != nil || !publicDirs(r) {
		return exe
	}
	return r
}

// publicDirs reports whether every directory above path may be searched by
// everyone.
func publicDirs(path string) bool {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" {
			return true
		}
	}
}

// desired is a target as the rules and process limits want it now.
type desired struct {
	id     string
	kind   backends.TargetKind
	pids   []int
	starts []uint64
	limits backends.Limits
}

// desiredLocked computes every target the limits want, and the process
// limits whose process is gone. Needs limMu; takes stateMu.
func (e *Engine) desiredLocked() (map[string]*desired, []int) {
	out := map[string]*desired{}
	var dead []int
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	limited := map[int]bool{}
	for pid, pl := range e.lim.procLimits {
		p := e.st.procs[pid]
		if p == nil || p.start != pl.start {
			dead = append(dead, pid)
			continue
		}
		limited[pid] = true
		if e.lim.isPaused(pl.uid) {
			continue
		}
		bl := e.effective(pl.limit)
		if bl.IsZero() {
			continue
		}
		id := pl.targetID()
		out[id] = &desired{id: id, kind: backends.TargetProcess, pids: []int{pid}, starts: []uint64{p.start}, limits: bl}
	}
	// A process limit takes the process and its descendants out of their
	// apps' targets: the descendants share the process's limit.
	excluded := map[int]bool{}
	if len(limited) > 0 {
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
	}
	for key, r := range e.lim.rules {
		a := e.st.apps[key]
		if a == nil || len(a.pids) == 0 || e.lim.isPaused(key.uid) {
			continue
		}
		bl := e.effective(r.Limit)
		if bl.IsZero() {
			continue
		}
		d := &desired{id: appTargetID(key), kind: backends.TargetApp, limits: bl}
		for pid := range a.pids {
			if excluded[pid] || pid == 1 || pid == e.self {
				continue
			}
			d.pids = append(d.pids, pid)
		}
		if len(d.pids) == 0 {
			continue
		}
		sort.Ints(d.pids)
		for _, pid := range d.pids {
			d.starts = append(d.starts, e.st.procs[pid].start)
		}
		out[d.id] = d
	}
	return out, dead
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
	pids, starts := d.pids, d.starts
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		t := backends.Target{ID: d.id, Kind: d.kind, PIDs: pids}
		if err = e.mgr.Apply(t, d.limits); err == nil {
			e.lim.applied[d.id] = appliedTarget{kind: d.kind, pids: pids, limits: d.limits}
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
			return err // a real failure; the manager kept the previous state
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
// the app id "<uid>:<exe>"): it is persisted and applies at once to the
// app's running processes and to new ones within a second. Both rates 0
// removes the rule. On error nothing changes.
func (e *Engine) SetAppLimit(exe string, uid uint32, l api.Limit) error {
	exe, err := parseExe(exe, uid)
	if err != nil {
		return err
	}
	exe = resolveExe(exe)
	if l.Down == 0 && l.Up == 0 {
		if err := rules.ValidateLimit(l); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), rules.ErrInvalid.Error()+": "))
		}
		err := e.RemoveAppLimit(exe, uid)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if l, err = e.checkLimit(l); err != nil {
		return err
	}
	if err := e.setRule(api.Rule{Exe: exe, UID: uid, Limit: l}); err != nil {
		return err
	}
	e.notify()
	e.publish(time.Now())
	return nil
}

func (e *Engine) setRule(r api.Rule) error {
	e.limMu.Lock()
	defer e.limMu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	k := appKey{r.UID, r.Exe}
	prev, had := e.lim.rules[k]
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

// RemoveAppLimit deletes uid's rule on exe; the app's processes are
// unlimited at once. ErrNotFound when there is no such rule.
func (e *Engine) RemoveAppLimit(exe string, uid uint32) error {
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
		k.exe = resolveExe(exe) // the rule was set through a symlink
		if _, ok := e.lim.rules[k]; !ok {
			e.limMu.Unlock()
			return fmt.Errorf("%w: no rule for uid %d on %s", ErrNotFound, uid, exe)
		}
		exe = k.exe
	}
	if _, err := e.store.Remove(exe, uid); err != nil {
		e.limMu.Unlock()
		return fmt.Errorf("save rules: %w", err)
	}
	delete(e.lim.rules, k)
	rmErr := e.dropTargetAndUnlock(appTargetID(k))
	if rmErr != nil {
		return fmt.Errorf("remove limit of %s: %w", exe, rmErr)
	}
	return nil
}

// checkPID validates a pid for a process limit and reads the process.
func (e *Engine) checkPID(pid int) (*proc, error) {
	switch {
	case pid <= 0:
		return nil, fmt.Errorf("%w: pid %d is not a process id", ErrInvalid, pid)
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

// ProcessUID returns the uid that owns pid for authorization: its uid when
// its real, effective and saved uids agree, 0 (an administrator's) when
// they do not (a setuid program).
func (e *Engine) ProcessUID(pid int) (uint32, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("%w: pid %d is not a process id", ErrInvalid, pid)
	}
	p, err := e.fs.read(pid)
	if errors.Is(err, errGone) {
		return 0, fmt.Errorf("%w: no process %d", ErrNotFound, pid)
	}
	if err != nil {
		return 0, fmt.Errorf("read process %d: %w", pid, err)
	}
	if p.kthread {
		return 0, nil
	}
	return p.owner, nil
}

// SetProcessLimit limits one process (and the children it starts); it is
// taken out of its app's target while limited. Not persisted: the limit
// ends with the process. Both rates 0 removes it. On error nothing changes.
func (e *Engine) SetProcessLimit(pid int, l api.Limit) error {
	p, err := e.checkPID(pid)
	if err != nil {
		return err
	}
	if l.Down == 0 && l.Up == 0 {
		if err := rules.ValidateLimit(l); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), rules.ErrInvalid.Error()+": "))
		}
		err := e.RemoveProcessLimit(pid)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if l, err = e.checkLimit(l); err != nil {
		return err
	}
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
	pl := &procLimit{pid: pid, start: p.start, uid: p.uid, limit: l}
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
	e.reconcileLocked()
	e.publishLimitsLocked()
	e.limMu.Unlock()
	e.notify()
	e.publish(time.Now())
	return nil
}

// RemoveProcessLimit removes a process's limit; it rejoins its app's
// target if the app has a rule. ErrNotFound when it has no limit.
func (e *Engine) RemoveProcessLimit(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("%w: pid %d is not a process id", ErrInvalid, pid)
	}
	e.limMu.Lock()
	if e.closed.Load() {
		e.limMu.Unlock()
		return ErrClosed
	}
	pl, ok := e.lim.procLimits[pid]
	if !ok {
		e.limMu.Unlock()
		return fmt.Errorf("%w: process %d has no limit", ErrNotFound, pid)
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
	case paused:
		e.lim.paused[uid] = true
	default:
		if e.lim.pausedAll {
			// Everyone is paused: resume uid alone, keep the others paused.
			e.lim.pausedAll = false
			for k := range e.lim.rules {
				e.lim.paused[k.uid] = true
			}
			for _, pl := range e.lim.procLimits {
				e.lim.paused[pl.uid] = true
			}
		}
		delete(e.lim.paused, uid)
	}
	e.reconcileLocked()
	e.publishLimitsLocked()
	e.limMu.Unlock()
	e.notify()
	e.publish(time.Now())
	return nil
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
	e.reconcileLocked()
	e.publishLimitsLocked()
	e.limMu.Unlock()
	e.notify()
	e.publish(time.Now())
	return rmErr
}
