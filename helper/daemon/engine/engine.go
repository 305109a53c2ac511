// Package engine is the heart of chadthrottle-helper: it groups processes
// into apps (one app per user and executable, named from the matching
// .desktop file), turns the monitor's cumulative per-process counters into
// 1 s rates, totals and a 60-sample history, and keeps limits applied:
// per-app rules (persisted by helper/daemon/rules, applied to running processes at
// once and to new ones within a second of their start) and per-process
// limits (not persisted), through the backends.Manager.
//
// The engine is safe for concurrent use: the D-Bus server calls its methods
// from its own goroutines while Run samples. Snapshot is precomputed once a
// second and cheap to call.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/rules"
)

// Errors the engine's methods wrap: the contract's kinds (helper/api
// errors.go), which the D-Bus server sends by their D-Bus names. A
// download limit asked for while no download backend is active wraps
// backends.ErrDownloadUnavailable (and api.ErrNotHere).
var (
	// ErrInvalid: the caller's input is not acceptable; the message says why.
	ErrInvalid = api.ErrInvalid
	// ErrNotFound: no such process, app or rule.
	ErrNotFound = api.ErrNoSuch
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("engine is closed")
	// ErrNeedsManage: the change needs the manage permission (the limit
	// was set by an administrator, or the process is not the caller's).
	ErrNeedsManage = api.ErrNeedsManage
	// ErrQuota: a user's bound on rules or limits is reached.
	ErrQuota = api.ErrQuota
)

// Intervals of the sampling loop.
const (
	// ScanInterval is how often /proc is listed for new processes; rules
	// reach a new process within about this long (well under 1 s).
	ScanInterval = 250 * time.Millisecond
	// SampleInterval is how often the monitor is read.
	SampleInterval = time.Second
)

// Config configures an Engine.
type Config struct {
	// Monitor measures traffic; nil means no traffic figures (processes and
	// limits still work).
	Monitor backends.MonitorBackend
	// Manager applies limits; required.
	Manager *backends.Manager
	// Rules persists per-app limits; required.
	Rules *rules.Store
	// Backends is every compiled backend's probe result, for ListBackends.
	Backends []backends.Status
	// Interfaces are the shaped interfaces, for Status.
	Interfaces []string
	// ProcRoot is the proc filesystem to read; "" means /proc.
	ProcRoot string
	// AppDirs are the system directories holding .desktop files, highest
	// priority first; nil means $XDG_DATA_DIRS/applications (default
	// /usr/local/share and /usr/share) plus the Flatpak and Snap exports.
	AppDirs []string
	// UserAppDirs returns a user's own .desktop directories (searched before
	// AppDirs); nil means ~/.local/share/applications and the user's
	// Flatpak exports, from the passwd home directory.
	UserAppDirs func(uid uint32) []string
	// Log receives what the engine handles by itself (warnings); nil
	// means slog.Default().
	Log *slog.Logger
	// NoProcConnector turns off the proc connector: without it new
	// processes are found by scanning /proc every ScanInterval only. The
	// connector is used only with the real /proc.
	NoProcConnector bool
	// Usage, when set, gets each app's bytes since the last sample once a
	// second, with no engine lock held (history and quotas: quota.go).
	Usage func(t time.Time, usage []AppUsage)
	// Now is the clock schedules are read against (local time); nil means
	// time.Now. Tests inject one.
	Now func() time.Time
}

// Engine groups processes into apps, measures them and keeps limits applied.
type Engine struct {
	cfg     Config
	monitor backends.MonitorBackend
	mgr     *backends.Manager
	store   *rules.Store
	fs      procFS
	desk    *desktopCache
	log     *slog.Logger
	self    int

	// limMu serialises limit changes and the Manager calls; it is taken
	// before stateMu, never after.
	limMu sync.Mutex
	lim   limitState

	// stateMu guards the process table, apps and statistics.
	stateMu sync.Mutex
	st      sampleState

	snap     atomic.Pointer[api.Snapshot]
	limView  atomic.Pointer[limitView]
	closed   atomic.Bool
	cbMu     sync.Mutex
	onChange []func()
	dirty    atomic.Bool // a reconcile is due
	// schedules are the rules' and process limits' schedules (publishLimitsLocked);
	// tick reconciles when which of them are active changes.
	schedules atomic.Pointer[[]api.Schedule]
	schedOn   atomic.Pointer[string]

	execMu  sync.Mutex
	execs   map[int]struct{} // pids that exec'd, from the proc connector
	execAll bool             // events were lost: rescan
	wake    chan struct{}
}

// New builds an engine, initialises the monitor and the manager (the
// engine owns both from here on: Close cleans them up), restores the
// persisted rules and applies them to the processes running now.
func New(cfg Config) (*Engine, error) {
	if cfg.Manager == nil {
		return nil, errors.New("engine: a throttle manager is required")
	}
	if cfg.Rules == nil {
		return nil, errors.New("engine: a rules store is required")
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	e := &Engine{
		cfg:     cfg,
		monitor: cfg.Monitor,
		mgr:     cfg.Manager,
		store:   cfg.Rules,
		fs:      procFS{root: cfg.ProcRoot},
		log:     cfg.Log,
		self:    os.Getpid(),
		execs:   map[int]struct{}{},
		wake:    make(chan struct{}, 1),
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.desk = newDesktopCache(cfg.AppDirs, cfg.UserAppDirs, e.logf)
	e.st.init()
	e.lim.init()
	for _, p := range cfg.Rules.Problems() {
		e.logf("rules: %s", p)
	}
	if err := e.mgr.Init(); err != nil {
		_ = e.mgr.Cleanup()
		return nil, fmt.Errorf("start throttling: %w", err)
	}
	if e.monitor != nil {
		if err := e.monitor.Init(); err != nil {
			_ = e.mgr.Cleanup()
			_ = e.monitor.Cleanup()
			return nil, fmt.Errorf("start monitor %s: %w", e.monitor.Name(), err)
		}
	}
	for _, r := range cfg.Rules.All() {
		e.lim.rules[appKey{r.UID, r.Exe}] = r
	}
	e.restoreGlobal() // global.go
	e.stateMu.Lock()
	err := e.scanLocked(true)
	e.stateMu.Unlock()
	if err != nil {
		_ = e.mgr.Cleanup()
		if e.monitor != nil {
			_ = e.monitor.Cleanup()
		}
		return nil, fmt.Errorf("read processes from %s: %w", cfg.ProcRoot, err)
	}
	e.limMu.Lock()
	e.reconcileLocked()
	e.publishLimitsLocked()
	e.limMu.Unlock()
	e.publish(time.Now())
	return e, nil
}

// Run samples until ctx is done: /proc every ScanInterval (new processes of
// an app with a rule join its limit at once), the monitor every
// SampleInterval. It returns nil when ctx is done or the engine is closed.
// Call it once.
func (e *Engine) Run(ctx context.Context) error {
	scan := time.NewTicker(ScanInterval)
	defer scan.Stop()
	watching := false
	if e.cfg.ProcRoot == "/proc" && !e.cfg.NoProcConnector {
		stop := make(chan struct{})
		defer close(stop)
		if err := watchExecs(e.execed, stop); err != nil {
			e.logf("engine: no proc connector, finding new processes by scanning /proc every %v: %v", ScanInterval, err)
		} else {
			watching = true
		}
	}
	lastSample := time.Now()
	var samples int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
			if e.closed.Load() {
				return nil
			}
			e.handleExecs()
		case now := <-scan.C:
			if e.closed.Load() {
				return nil
			}
			sample := now.Sub(lastSample) >= SampleInterval-ScanInterval/2
			if !sample {
				e.tick(now, false, false)
				continue
			}
			lastSample = now
			samples++
			// Every process is re-read (exec, setuid, pid reuse) once a
			// second; with the proc connector reporting execs, every
			// fullScanEvery seconds is enough.
			e.tick(now, true, !watching || samples%fullScanEvery == 0)
		}
	}
}

// execed records a process that exec'd (pid 0: events were lost) and
// wakes Run.
func (e *Engine) execed(pid int) {
	e.execMu.Lock()
	if pid == 0 {
		e.execAll = true
	} else if len(e.execs) < 4096 {
		e.execs[pid] = struct{}{}
	} else {
		e.execAll = true
	}
	e.execMu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// handleExecs reads the processes that exec'd since the last call (or
// rescans /proc when events were lost) and applies rules to them.
func (e *Engine) handleExecs() {
	e.execMu.Lock()
	pids, all := e.execs, e.execAll
	e.execs, e.execAll = map[int]struct{}{}, false
	e.execMu.Unlock()
	e.stateMu.Lock()
	if all {
		if err := e.scanLocked(true); err != nil {
			e.stateMu.Unlock()
			e.logOnce("scan", err)
			return
		}
	}
	for pid := range pids {
		if p := e.st.procs[pid]; p != nil {
			e.refreshLocked(p, e.st.scans, true)
		} else if np, err := e.fs.read(pid); err == nil {
			np.found, np.seenScan = e.st.scans, e.st.scans
			e.addProcLocked(np)
		}
	}
	changed := e.st.procsChanged
	e.st.procsChanged = false
	e.stateMu.Unlock()
	if changed {
		e.reconcile()
	}
}

// fullScanEvery is how often (in samples) every process is re-read when
// the proc connector reports execs.
const fullScanEvery = 10

// tick is one step of Run: scan /proc (re-reading every process when full
// is set), reconcile when processes changed, and when sample is set read
// the monitor and publish a snapshot.
func (e *Engine) tick(now time.Time, sample, full bool) {
	e.stateMu.Lock()
	err := e.scanLocked(full)
	changed := e.st.procsChanged
	e.st.procsChanged = false
	e.stateMu.Unlock()
	if err != nil {
		e.logOnce("scan", err)
	}
	if changed || e.dirty.Swap(false) || e.scheduleSwitched() {
		e.reconcile()
	}
	if sample {
		e.followSockets()
		if e.desk.refresh(now, false) {
			e.stateMu.Lock()
			e.renameAppsLocked()
			e.stateMu.Unlock()
		}
		e.sample(now)
		e.publish(now)
	}
}

// followSockets has the throttlers match the sockets limited processes
// opened or accepted since the last tick (backends.SocketFollower): a
// connection accepted from a listener created before the limit is not in
// the target's cgroup. Once a second; cheap when no socket changed.
func (e *Engine) followSockets() {
	e.limMu.Lock()
	defer e.limMu.Unlock()
	for id, a := range e.lim.applied {
		if err := e.mgr.FollowSockets(id, a.pids); err != nil {
			e.logOnce("follow sockets", err)
		}
	}
}

func (e *Engine) logOnce(what string, err error) {
	e.stateMu.Lock()
	msg := err.Error()
	same := e.st.lastLog[what] == msg
	e.st.lastLog[what] = msg
	e.stateMu.Unlock()
	if !same {
		e.logf("engine: %s: %v", what, err)
	}
}

// Close removes every limit and all kernel state (processes go back to
// their cgroups) and stops the monitor. Rules stay persisted. It is safe to
// call more than once.
func (e *Engine) Close() error {
	e.limMu.Lock()
	defer e.limMu.Unlock()
	if e.closed.Swap(true) {
		return nil
	}
	var errs []error
	if err := e.mgr.Cleanup(); err != nil {
		errs = append(errs, fmt.Errorf("remove limits: %w", err))
	}
	e.lim.applied = map[string]appliedTarget{}
	if e.monitor != nil {
		if err := e.monitor.Cleanup(); err != nil {
			errs = append(errs, fmt.Errorf("stop monitor: %w", err))
		}
	}
	return errors.Join(errs...)
}

// OnChange registers fn to be called after any limit or rule change
// (including a process limit dropped because its process exited). fn runs
// on the goroutine that made the change, after the engine's locks are
// released.
func (e *Engine) OnChange(fn func()) {
	if fn == nil {
		return
	}
	e.cbMu.Lock()
	e.onChange = append(e.onChange, fn)
	e.cbMu.Unlock()
}

func (e *Engine) notify() {
	e.cbMu.Lock()
	fns := append([]func(){}, e.onChange...)
	e.cbMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Snapshot returns the latest view of all apps (computed once a second and
// after limit changes). The caller must not modify it.
func (e *Engine) Snapshot() api.Snapshot {
	s := e.snap.Load()
	if s == nil {
		return api.Snapshot{}
	}
	out := *s
	out.Apps = append([]api.App(nil), s.Apps...)
	return out
}

// Status returns the helper's state as seen by uid (Paused is uid's).
func (e *Engine) Status(uid uint32) api.Status {
	st := api.Status{Version: api.Version, Upload: e.mgr.Upload().Name(), Interfaces: strings.Join(e.cfg.Interfaces, ",")}
	if e.monitor != nil {
		st.Monitor = e.monitor.Name()
	}
	if d, err := e.mgr.Download(); d != nil {
		st.Download = d.Name()
	} else if err != nil {
		st.DownloadReason = err.Error()
	}
	if v := e.limView.Load(); v != nil {
		st.Paused = v.pausedAll || v.paused[uid]
	}
	return st
}

// Backends returns every compiled backend with its probe result and
// whether it is the active one of its kind.
func (e *Engine) Backends() []api.Backend {
	active := map[backends.Kind]string{backends.KindUpload: e.mgr.Upload().Name()}
	if e.monitor != nil {
		active[backends.KindMonitor] = e.monitor.Name()
	}
	if d, _ := e.mgr.Download(); d != nil {
		active[backends.KindDownload] = d.Name()
	}
	active[backends.KindGlobal] = e.globalName() // global.go
	active[backends.KindPlacement] = e.mgr.PlacementMode()
	if bl, _ := e.mgr.Blocker(); bl != nil {
		active[backends.KindBlock] = bl.Name()
	}
	out := make([]api.Backend, 0, len(e.cfg.Backends)+1)
	for _, b := range e.cfg.Backends {
		out = append(out, api.Backend{
			Kind: string(b.Kind), Name: b.Name, Priority: int32(b.Priority), Available: b.Available,
			Active: active[b.Kind] == b.Name, Reason: b.Reason,
		})
	}
	return append(out, e.budgetBackend())
}

// Idle reports whether no limit is active and no rule exists (the helper
// may then exit when it has no clients).
func (e *Engine) Idle() bool {
	e.limMu.Lock()
	defer e.limMu.Unlock()
	return len(e.lim.rules) == 0 && len(e.lim.procLimits) == 0 && len(e.lim.quotas) == 0 && e.mgr.Global().IsZero()
}

// userName caches uid → login name lookups.
type userNames struct {
	mu sync.Mutex
	m  map[uint32]string
}

var names = userNames{m: map[uint32]string{}}

// reconcile applies the desired limits after processes changed and tells
// listeners when targets did.
func (e *Engine) reconcile() {
	e.limMu.Lock()
	notify := e.reconcileLocked()
	e.publishLimitsLocked()
	e.limMu.Unlock()
	if notify {
		e.notify()
	}
}

// logf logs a warning the engine handled by itself.
func (e *Engine) logf(format string, args ...any) {
	e.log.Warn(fmt.Sprintf(format, args...))
}

// scheduleSwitched reports whether a rule's schedule opened or closed
// since the last call (at most one ScanInterval late).
func (e *Engine) scheduleSwitched() bool {
	ss := e.schedules.Load()
	if ss == nil || len(*ss) == 0 {
		return false
	}
	now := e.now()
	on := make([]byte, len(*ss))
	for i, s := range *ss {
		if s.Active(now) {
			on[i] = 1
		}
	}
	key := string(on)
	if prev := e.schedOn.Swap(&key); prev != nil && *prev == key {
		return false
	}
	return true
}
