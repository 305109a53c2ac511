package engine

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
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
	quotas     map[appKey]QuotaLimit // limits data quotas put on apps (quota.go)
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
	l.quotas = map[appKey]QuotaLimit{}
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
	// In a fixed order (by rule, then by pid), so scheduleSwitched compares like with like.
	keys := slices.SortedFunc(maps.Keys(e.lim.rules), func(a, b appKey) int {
		return cmp.Or(cmp.Compare(a.uid, b.uid), cmp.Compare(a.exe, b.exe))
	})
	var schedules []api.Schedule
	for _, k := range keys {
		schedules = appendSchedules(schedules, e.lim.rules[k].Limit)
	}
	for _, pid := range slices.Sorted(maps.Keys(e.lim.procLimits)) {
		pl := e.lim.procLimits[pid]
		v.procs[pid] = procLimitView{start: pl.start, limit: pl.limit}
		schedules = appendSchedules(schedules, pl.limit)
	}
	e.schedules.Store(&schedules)
	for uid, p := range e.lim.paused {
		v.paused[uid] = p
	}
	e.limView.Store(v)
}

// appendSchedules appends l's schedules (of its rates and of its block).
func appendSchedules(ss []api.Schedule, l api.Limit) []api.Schedule {
	for _, w := range []string{l.When, l.BlockWhen} {
		if s, err := api.ParseSchedule(w); w != "" && err == nil {
			ss = append(ss, s)
		}
	}
	return ss
}

// appTargetID names an app's target: app-<uid>-<exe basename>-<hash>,
// short and safe in kernel object names.
func appTargetID(k appKey) string {
	sum := sha256.Sum256([]byte(k.exe))
	base := backends.SafeName(filepath.Base(k.exe))
	if len(base) > 16 {
		base = base[:16]
	}
	return fmt.Sprintf("app-%d-%s-%s", k.uid, base, hex.EncodeToString(sum[:4]))
}

func pidTargetID(pid int, start uint64) string { return fmt.Sprintf("pid-%d-%d", pid, start) }

// toLimits converts a validated api.Limit.
func toLimits(l api.Limit) backends.Limits {
	dt, _ := backends.ParseTrafficType(l.DownZone())
	ut, _ := backends.ParseTrafficType(l.UpZone())
	bl := backends.Limits{
		Down: backends.Limit{Rate: backends.Rate(l.Down), Traffic: dt},
		Up:   backends.Limit{Rate: backends.Rate(l.Up), Traffic: ut},
	}
	if l.Block != "" {
		bt, _ := backends.ParseTrafficType(l.Block)
		bl.Block = backends.Block{On: true, Traffic: bt}
	}
	bl.Priority = toPriority(l.Priority) // global.go
	return bl
}

// checkLimit validates l for a new limit: rates, traffic type, and what the
// active backends can do. It returns l with the traffic type spelled out.
func (e *Engine) checkLimit(l api.Limit) (api.Limit, error) {
	l, err := api.ValidateLimit(l)
	if err != nil {
		return l, err
	}
	bl := toLimits(l)
	if l.Down > 0 {
		d, why := e.mgr.Download()
		if d == nil {
			return l, api.WithKind(api.ErrNotHere, fmt.Errorf("%w: %v", backends.ErrDownloadUnavailable, why))
		}
		if tt := bl.Down.Traffic; !d.Capabilities().Supports(tt) {
			return l, fmt.Errorf("%w: download backend %s cannot limit %s traffic", ErrInvalid, d.Name(), tt)
		}
	}
	if tt := bl.Up.Traffic; l.Up > 0 && !e.mgr.Upload().Capabilities().Supports(tt) {
		return l, fmt.Errorf("%w: upload backend %s cannot limit %s traffic", ErrInvalid, e.mgr.Upload().Name(), tt)
	}
	return e.checkBlock(l)
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
	return e.scheduled(l, bl)
}

// parseExe accepts an absolute executable path or an app id
// ("<uid>:<exe>") of the same uid.
func parseExe(exe string, uid uint32) (string, error) {
	if len(exe) > api.MaxExeLen+16 {
		return "", fmt.Errorf("%w: executable path is %d bytes long (at most %d)", ErrInvalid, len(exe), api.MaxExeLen)
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
	if err := api.ValidateExe(exe); err != nil {
		return "", err
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
	if rerr != nil || r == exe || api.ValidateExe(r) != nil || pseudoPath(r) {
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
