package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/polkit"
)

var (
	errFakeInvalid  = api.Errorf(api.ErrInvalid, "fake")
	errFakeNotFound = api.Errorf(api.ErrNoSuch, "fake")
)

// fakeEngine records calls; procs maps pid → uid.
type fakeEngine struct {
	mu       sync.Mutex
	procs    map[int]uint32
	rules    map[string]api.Limit // "uid:exe"
	plimits  map[int]api.Limit
	paused   map[uint32]bool
	allPause bool
	onChange []func()
	panicOn  string
	calls    []string
	global   api.GlobalLimit
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{procs: map[int]uint32{}, rules: map[string]api.Limit{}, plimits: map[int]api.Limit{}, paused: map[uint32]bool{}}
}

func (f *fakeEngine) record(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	p := f.panicOn
	f.mu.Unlock()
	if p == name {
		panic("fake engine panics in " + name)
	}
}

// edit runs fn under the lock, then tells the listeners.
func (f *fakeEngine) edit(fn func()) error {
	f.mu.Lock()
	fn()
	f.mu.Unlock()
	f.changed()
	return nil
}

// editRule edits uid's app exe's rule.
func (f *fakeEngine) editRule(uid uint32, exe string, fn func(*api.Limit)) error {
	return f.edit(func() {
		k := fmt.Sprintf("%d:%s", uid, exe)
		l := f.rules[k]
		fn(&l)
		f.rules[k] = l
	})
}

// editProcess edits pid's process limit.
func (f *fakeEngine) editProcess(pid int, fn func(*api.Limit)) error {
	return f.edit(func() {
		l := f.plimits[pid]
		fn(&l)
		f.plimits[pid] = l
	})
}

func (f *fakeEngine) changed() {
	f.mu.Lock()
	fns := append([]func(){}, f.onChange...)
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (f *fakeEngine) Snapshot() api.Snapshot {
	f.record("Snapshot")
	f.mu.Lock()
	defer f.mu.Unlock()
	s := api.Snapshot{Time: 1, RxRate: 10}
	for pid, uid := range f.procs {
		s.Apps = append(s.Apps, api.App{ID: fmt.Sprintf("%d:/bin/x%d", uid, pid), Exe: fmt.Sprintf("/bin/x%d", pid), UID: uid, PIDs: []int32{int32(pid)},
			Name: "bad\xffutf8", Limit: f.plimits[pid]})
	}
	return s
}

func (f *fakeEngine) AppDetails(appID string) (api.AppDetails, error) {
	f.record("AppDetails")
	if appID == "0:/bin/none" {
		return api.AppDetails{}, fmt.Errorf("%w: no app %q", errFakeNotFound, appID)
	}
	return api.AppDetails{App: api.App{ID: appID}, Processes: []api.Process{{PID: 1, Cmdline: "a\x00b"}}}, nil
}

func (f *fakeEngine) Rules() []api.Rule {
	f.record("Rules")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Rule
	for k, l := range f.rules {
		var uid uint32
		var exe string
		fmt.Sscanf(k, "%d:%s", &uid, &exe)
		out = append(out, api.Rule{Exe: exe, UID: uid, Limit: l})
	}
	return out
}

func (f *fakeEngine) Status(uid uint32) api.Status {
	f.record("Status")
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.Status{Version: "test", Monitor: "fake", Upload: "fake_upload", Paused: f.paused[uid] || f.allPause}
}

func (f *fakeEngine) Backends() []api.Backend {
	f.record("Backends")
	return []api.Backend{{Kind: "monitor", Name: "fake", Priority: 1, Available: true, Active: true}}
}

func (f *fakeEngine) SetAppLimit(c api.Caller, exe string, uid uint32, l api.Limit) error {
	f.record("SetAppLimit")
	if exe == "/bin/invalid" {
		return fmt.Errorf("%w: exe refused", errFakeInvalid)
	}
	if l.Down > 0 && exe == "/bin/nodown" {
		return api.WithKind(api.ErrNotHere, fmt.Errorf("%w: no ifb here", backends.ErrDownloadUnavailable))
	}
	return f.editRule(uid, exe, func(r *api.Limit) { *r = l })
}

func (f *fakeEngine) RemoveAppLimit(c api.Caller, exe string, uid uint32) error {
	f.record("RemoveAppLimit")
	f.mu.Lock()
	k := fmt.Sprintf("%d:%s", uid, exe)
	_, ok := f.rules[k]
	delete(f.rules, k)
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no rule for %s", errFakeNotFound, k)
	}
	f.changed()
	return nil
}

func (f *fakeEngine) SetProcessLimit(c api.Caller, pid int, start uint64, l api.Limit) error {
	f.record("SetProcessLimit")
	return f.editProcess(pid, func(p *api.Limit) { *p = l })
}

func (f *fakeEngine) RemoveProcessLimit(c api.Caller, pid int, start uint64) error {
	f.record("RemoveProcessLimit")
	return f.edit(func() { delete(f.plimits, pid) })
}

func (f *fakeEngine) ProcessIdentity(pid int) (uint32, uint64, error) {
	f.record("ProcessIdentity")
	f.mu.Lock()
	defer f.mu.Unlock()
	uid, ok := f.procs[pid]
	if !ok {
		return 0, 0, fmt.Errorf("%w: no process %d", errFakeNotFound, pid)
	}
	return uid, uint64(pid) * 10, nil
}

func (f *fakeEngine) SetPaused(uid uint32, all, paused bool) error {
	f.record("SetPaused")
	return f.edit(func() {
		if all {
			f.allPause = paused
		} else {
			f.paused[uid] = paused
		}
	})
}

func (f *fakeEngine) Idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rules) == 0 && len(f.plimits) == 0
}

func (f *fakeEngine) OnChange(fn func()) {
	f.mu.Lock()
	f.onChange = append(f.onChange, fn)
	f.mu.Unlock()
}

// fakeAuth answers from a table: uids[sender], allow[uid][action]; a
// missing entry is a challenge.
type fakeAuth struct {
	mu     sync.Mutex
	uids   map[string]uint32
	allow  map[uint32]map[string]bool
	asked  []string // "action/interactive"
	uidErr error
}

func (a *fakeAuth) UID(_ context.Context, sender string) (uint32, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.uidErr != nil {
		return 0, a.uidErr
	}
	uid, ok := a.uids[sender]
	if !ok {
		return 0, fmt.Errorf("unknown sender %s", sender)
	}
	return uid, nil
}

func (a *fakeAuth) CallContext(string) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func (a *fakeAuth) Check(ctx context.Context, sender, action string, interactive bool) (polkit.Result, error) {
	uid, err := a.UID(ctx, sender)
	if err != nil {
		return polkit.Result{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, fmt.Sprintf("%s/%v", action, interactive))
	if uid == 0 {
		return polkit.Result{Authorized: true, Root: true}, nil
	}
	if ok, set := a.allow[uid][action]; set {
		return polkit.Result{Authorized: ok}, nil
	}
	return polkit.Result{Challenge: true}, nil
}
