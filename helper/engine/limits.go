package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
	// by is the uid that set it; admin says it was set with manage. A
	// limit set without manage binds only processes owned by by: it ends
	// when the process's credentials change, and descendants of another
	// owner are not pulled in.
	by    uint32
	admin bool
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
	// adminPaused: limits set by an administrator on uid's targets stay
	// paused after everyone's pause was lifted for uid alone (only manage
	// resumes them).
	adminPaused map[uint32]bool
	failedAt    map[string]time.Time
	lastErr     map[string]string
}

func (l *limitState) init() {
	l.rules = map[appKey]api.Rule{}
	l.procLimits = map[int]*procLimit{}
	l.applied = map[string]appliedTarget{}
	l.paused = map[uint32]bool{}
	l.adminPaused = map[uint32]bool{}
	l.failedAt = map[string]time.Time{}
	l.lastErr = map[string]string{}
}

// isPaused reports whether a limit on uid's target is paused: everyone's
// pause (manage) pauses every limit, a user's own pause only the limits
// that were not set by an administrator.
func (l *limitState) isPaused(uid uint32, admin bool) bool {
	if admin {
		return l.pausedAll || l.adminPaused[uid]
	}
	return l.pausedAll || l.paused[uid]
}

// Per-user bounds for callers without manage, so that one user cannot use
// up the kernel tables everyone shares (4096 targets in the BPF maps and tc
// class space): room for adminReserve targets is always kept for limits set
// with manage.
const (
	MaxUserRules         = 256  // app rules of one uid
	MaxUserProcessLimits = 64   // process limits one uid may hold
	MaxUserExeLen        = 1024 // bytes of a rule's path
	targetCapacity       = 4096
	adminReserve         = 1024
)

// userLimitsLocked counts the limits set without manage: those set by
// uid (process limits) or on uid's apps (rules), and everyone's.
func (l *limitState) userLimitsLocked(uid uint32) (rulesOfUID, procsOfUID, all int) {
	for k, r := range l.rules {
		if !r.Admin {
			all++
			if k.uid == uid {
				rulesOfUID++
			}
		}
	}
	for _, pl := range l.procLimits {
		if !pl.admin {
			all++
			if pl.by == uid {
				procsOfUID++
			}
		}
	}
	return
}

// quotaErr checks that caller c (without manage) may add one more rule
// (app) or process limit.
func (l *limitState) quotaErr(c api.Caller, app bool) error {
	if c.Admin {
		return nil
	}
	rulesN, procsN, all := l.userLimitsLocked(c.UID)
	switch {
	case app && rulesN >= MaxUserRules:
		return fmt.Errorf("%w: uid %d has %d app rules, the most a user may set without the manage permission", ErrQuota, c.UID, MaxUserRules)
	case !app && procsN >= MaxUserProcessLimits:
		return fmt.Errorf("%w: uid %d holds %d process limits, the most a user may set without the manage permission", ErrQuota, c.UID, MaxUserProcessLimits)
	case all >= targetCapacity-adminReserve:
		return fmt.Errorf("%w: users hold %d limits; the rest of the helper's %d are kept for administrators", ErrQuota, all, targetCapacity)
	}
	return nil
}

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
	if pseudoPath(exe) {
		return "", fmt.Errorf("%w: %q is in /proc, /sys or /dev, where no program is installed", ErrInvalid, exe)
	}
	if err := rules.ValidateExe(exe); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), rules.ErrInvalid.Error()+": "))
	}
	return exe, nil
}

// resolveExe follows symlinks: /proc/PID/exe names the real file, so a
// rule given as /usr/bin/firefox → /usr/lib/firefox/firefox must be kept
// under the latter to match. The links are followed with the caller's
// file-system credentials (asUser), so the root helper tells a user no
// more than the user could find out; a path that does not resolve, or
// resolves into a pseudo file system, is kept as given.
func resolveExe(exe string, uid uint32) string {
	select {
	case resolveSlots <- struct{}{}:
	default:
		return exe // resolutions stuck on a hung file system hold every slot
	}
	var r string
	var rerr error
	done := make(chan struct{})
	err := asUser(uid, primaryGID(uid), time.Second, func() {
		defer func() { <-resolveSlots; close(done) }()
		r, rerr = filepath.EvalSymlinks(exe)
	})
	if err != nil {
		return exe
	}
	<-done
	if rerr != nil || r == exe || rules.ValidateExe(r) != nil || pseudoPath(r) {
		return exe
	}
	return r
}

// resolveSlots bounds resolutions in flight.
var resolveSlots = make(chan struct{}, 4)

// pseudoPath reports whether path is in /proc, /sys or /dev, where no
// program lives and where links are magic (/proc/PID/cwd).
func pseudoPath(path string) bool {
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
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
	}
	for key, r := range e.lim.rules {
		a := e.st.apps[key]
		if a == nil || len(a.pids) == 0 || e.lim.isPaused(key.uid, r.Admin) {
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
			if p := e.st.procs[pid]; !r.Admin && (p == nil || p.owner != key.uid) {
				continue // a setuid program run by someone else: not bound by a user's rule
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
// the app id "<uid>:<exe>") for caller c: it is persisted and applies at
// once to the app's running processes and to new ones within a second.
// Both rates 0 removes the rule. A rule an administrator set can only be
// changed with c.Admin (ErrNeedsManage); without it the per-user bounds
// apply (ErrQuota). On error nothing changes.
func (e *Engine) SetAppLimit(c api.Caller, exe string, uid uint32, l api.Limit) error {
	exe, err := parseExe(exe, uid)
	if err != nil {
		return err
	}
	if !c.Admin && len(exe) > MaxUserExeLen {
		return fmt.Errorf("%w: executable path is %d bytes long (at most %d without the manage permission)", ErrInvalid, len(exe), MaxUserExeLen)
	}
	exe = resolveExe(exe, c.UID)
	if l.Down == 0 && l.Up == 0 {
		if err := rules.ValidateLimit(l); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), rules.ErrInvalid.Error()+": "))
		}
		err := e.RemoveAppLimit(c, exe, uid)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if l, err = e.checkLimit(l); err != nil {
		return err
	}
	if err := e.setRule(c, api.Rule{Exe: exe, UID: uid, Limit: l, Admin: c.Admin}); err != nil {
		return err
	}
	e.notify()
	e.publish(time.Now())
	return nil
}

func (e *Engine) setRule(c api.Caller, r api.Rule) error {
	e.limMu.Lock()
	defer e.limMu.Unlock()
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
	if r := e.lim.rules[k]; r.Admin && !c.Admin {
		e.limMu.Unlock()
		return fmt.Errorf("%w: the limit on %s was set by an administrator", ErrNeedsManage, exe)
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

// ProcessIdentity returns, for authorization, the uid that owns pid (its
// uid when its real, effective and saved uids agree, 0 — an
// administrator's — when they do not: a setuid program; 0 for kernel
// threads) and its start time, which tells it apart from a later process
// with the same pid.
func (e *Engine) ProcessIdentity(pid int) (owner uint32, start uint64, err error) {
	if pid <= 0 {
		return 0, 0, fmt.Errorf("%w: pid %d is not a process id", ErrInvalid, pid)
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
	p, err := e.checkPID(pid)
	if err != nil {
		return err
	}
	if start != 0 && p.start != start {
		return fmt.Errorf("%w: process %d exited", ErrNotFound, pid)
	}
	if !c.Admin && p.owner != c.UID {
		return fmt.Errorf("%w: process %d is not uid %d's own", ErrNeedsManage, pid, c.UID)
	}
	if l.Down == 0 && l.Up == 0 {
		if err := rules.ValidateLimit(l); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), rules.ErrInvalid.Error()+": "))
		}
		err := e.RemoveProcessLimit(c, pid, p.start)
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
	e.reconcileLocked()
	e.publishLimitsLocked()
	e.limMu.Unlock()
	e.notify()
	e.publish(time.Now())
	return nil
}

// RemoveProcessLimit removes a process's limit for caller c; it rejoins
// its app's target if the app has a rule. start, when not 0, must be the
// limited process's. ErrNotFound when it has no limit, ErrNeedsManage when
// an administrator set it and c is not one.
func (e *Engine) RemoveProcessLimit(c api.Caller, pid int, start uint64) error {
	if pid <= 0 {
		return fmt.Errorf("%w: pid %d is not a process id", ErrInvalid, pid)
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
