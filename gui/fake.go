package gui

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// FakeCall is one limit-changing call a Fake received.
type FakeCall struct {
	Method string // "SetAppLimit", "RemoveAppLimit", "SetProcessLimit", "RemoveProcessLimit", "SetPaused", "SetAppBlock", "RemoveAppBlock", "SetGlobalLimit", "RemoveGlobalLimit", "SetAppPriority"
	Exe    string
	UID    uint32
	PID    int32
	Limit  api.Limit
	Paused bool
	Quota  api.Quota // SetQuota
}

// Fake is an in-memory Backend for tests and for the test-only synthetic
// data source of cmd/chadthrottle. It records limit calls, applies them to
// its apps and fires the callbacks like the helper would. Safe for
// concurrent use.
type Fake struct {
	mu       sync.Mutex
	snap     api.Snapshot
	details  map[string]api.AppDetails
	status   api.Status
	backends []api.Backend
	perms    api.Permissions
	readErr  error
	setErr   error
	calls    []FakeCall
	callCh   chan FakeCall
	changed  map[int]func()
	presence map[int]func(bool)
	nextID   int
	synth    *synth
	hook     func(FakeCall)
	gone     bool // the helper left the bus (SetPresence(false))
	reads    int  // Apps calls
	history  []api.AppHistory
	quotas   []api.Quota
	global   api.GlobalLimit
}

// NewFake returns a Fake with no apps, a fully working helper status and
// all permissions.
func NewFake() *Fake {
	return &Fake{
		details:  map[string]api.AppDetails{},
		status:   api.Status{Version: "fake", Monitor: "fake", Upload: "fake", Download: "fake", Interfaces: "eth0"},
		perms:    api.Permissions{Monitor: api.PermYes, LimitOwn: api.PermYes, Manage: api.PermAuth},
		callCh:   make(chan FakeCall, 1024),
		changed:  map[int]func(){},
		presence: map[int]func(bool){},
	}
}

// SetApps replaces the apps of the next snapshots.
func (f *Fake) SetApps(apps []api.App) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap.Apps = slices.Clone(apps)
	f.snap.RxRate, f.snap.TxRate = 0, 0
	for _, a := range apps {
		f.snap.RxRate += a.RxRate
		f.snap.TxRate += a.TxRate
	}
	f.snap.Time++
}

// SetDetails sets what AppDetails returns for d.App.ID.
func (f *Fake) SetDetails(d api.AppDetails) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.details[d.App.ID] = d
}

// SetStatus sets what Status returns.
func (f *Fake) SetStatus(s api.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = s
}

// SetPermissions sets what Permissions returns.
func (f *Fake) SetPermissions(p api.Permissions) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.perms = p
}

// SetReadError makes every read fail with err (nil: answer again).
func (f *Fake) SetReadError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readErr = err
}

// SetLimitError makes every limit call fail with err.
func (f *Fake) SetLimitError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setErr = err
}

// SetCallHook makes the Fake call fn (on the caller's goroutine) after
// each limit call it accepted.
func (f *Fake) SetCallHook(fn func(FakeCall)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = fn
}

// SetPresence tells the presence subscribers the helper came or went.
func (f *Fake) SetPresence(running bool) {
	f.mu.Lock()
	f.gone = !running
	var fns []func(bool)
	for _, fn := range f.presence {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(running)
	}
}

// Running implements Backend: false after SetPresence(false).
func (f *Fake) Running(ctx context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.gone, nil
}

// Reads returns how many snapshots (Apps calls) were asked for: a poll
// asks for one.
func (f *Fake) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// Calls returns the limit calls received so far.
func (f *Fake) Calls() []FakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// WaitCall returns the next limit call, or false after timeout.
func (f *Fake) WaitCall(timeout time.Duration) (FakeCall, bool) {
	select {
	case c := <-f.callCh:
		return c, true
	case <-time.After(timeout):
		return FakeCall{}, false
	}
}

func (f *Fake) read() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readErr
}

// SetBackends sets what Backends returns.
func (f *Fake) SetBackends(bs []api.Backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backends = slices.Clone(bs)
}

// Backends implements Backend.
func (f *Fake) Backends(ctx context.Context) ([]api.Backend, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.backends), nil
}

// Status implements Backend.
func (f *Fake) Status(ctx context.Context) (api.Status, error) {
	if err := f.read(); err != nil {
		return api.Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}

// Permissions implements Backend.
func (f *Fake) Permissions(ctx context.Context) (api.Permissions, error) {
	if err := f.read(); err != nil {
		return api.Permissions{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.perms, nil
}

// Apps implements Backend. Like a D-Bus-activated helper, a gone Fake
// runs again once asked.
func (f *Fake) Apps(ctx context.Context) (api.Snapshot, error) {
	f.mu.Lock()
	f.reads++
	f.mu.Unlock()
	if err := f.read(); err != nil {
		return api.Snapshot{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = false
	if f.synth != nil {
		f.synth.step(f)
	}
	s := f.snap
	s.Apps = slices.Clone(f.snap.Apps)
	return s, nil
}

// AppDetails implements Backend.
func (f *Fake) AppDetails(ctx context.Context, appID string) (api.AppDetails, error) {
	if err := f.read(); err != nil {
		return api.AppDetails{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.synth != nil {
		return f.synth.details(f, appID)
	}
	d, ok := f.details[appID]
	if !ok {
		for _, a := range f.snap.Apps {
			if a.ID == appID {
				return api.AppDetails{App: a}, nil
			}
		}
		return api.AppDetails{}, fmt.Errorf("app %q: not found", appID)
	}
	return d, nil
}

func (f *Fake) record(c FakeCall, apply func()) error {
	f.mu.Lock()
	err := f.setErr
	if err == nil {
		f.calls = append(f.calls, c)
		apply()
	}
	var fns []func()
	for _, fn := range f.changed {
		fns = append(fns, fn)
	}
	hook := f.hook
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if hook != nil {
		hook(c)
	}
	select {
	case f.callCh <- c:
	default:
	}
	for _, fn := range fns {
		fn()
	}
	return nil
}

func (f *Fake) setAppLimitLocked(exe string, uid uint32, l api.Limit) {
	for i := range f.snap.Apps {
		if a := &f.snap.Apps[i]; a.Exe == exe && a.UID == uid {
			l.Block, l.BlockWhen = a.Limit.Block, a.Limit.BlockWhen // a block stays, as in the helper
			a.Limit, a.Rule = l, l.Limited()
		}
	}
}

// SetAppLimit implements Backend.
func (f *Fake) SetAppLimit(ctx context.Context, exe string, uid uint32, l api.Limit) error {
	return f.record(FakeCall{Method: "SetAppLimit", Exe: exe, UID: uid, Limit: l}, func() { f.setAppLimitLocked(exe, uid, l) })
}

// RemoveAppLimit implements Backend.
func (f *Fake) RemoveAppLimit(ctx context.Context, exe string, uid uint32) error {
	return f.record(FakeCall{Method: "RemoveAppLimit", Exe: exe, UID: uid}, func() { f.setAppLimitLocked(exe, uid, api.Limit{}) })
}

// SetProcessLimit implements Backend.
func (f *Fake) SetProcessLimit(ctx context.Context, pid int32, l api.Limit) error {
	return f.record(FakeCall{Method: "SetProcessLimit", PID: pid, Limit: l}, func() {})
}

// RemoveProcessLimit implements Backend.
func (f *Fake) RemoveProcessLimit(ctx context.Context, pid int32) error {
	return f.record(FakeCall{Method: "RemoveProcessLimit", PID: pid}, func() {})
}

// SetPaused implements Backend.
func (f *Fake) SetPaused(ctx context.Context, paused bool) error {
	return f.record(FakeCall{Method: "SetPaused", Paused: paused}, func() { f.status.Paused = paused })
}

// OnLimitsChanged implements Backend.
func (f *Fake) OnLimitsChanged(fn func()) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextID
	f.nextID++
	f.changed[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.changed, id)
	}
}

// OnHelperPresence implements Backend.
func (f *Fake) OnHelperPresence(fn func(bool)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextID
	f.nextID++
	f.presence[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.presence, id)
	}
}

// NewSyntheticFake returns a Fake whose n apps' traffic changes with every
// snapshot, deterministically. It is a test-only data source (benchmarks,
// screenshots), not a model of real traffic.
func NewSyntheticFake(n int) *Fake {
	f := NewFake()
	f.synth = newSynth(n)
	f.synth.step(f)
	return f
}

var synthNames = []struct{ name, exe, icon string }{
	{"Firefox", "/usr/lib/firefox/firefox", "firefox"},
	{"Steam", "/usr/lib/steam/steam", "steam"},
	{"Spotify", "/usr/share/spotify/spotify", "spotify-client"},
	{"Discord", "/usr/share/discord/Discord", "discord"},
	{"Thunderbird", "/usr/lib/thunderbird/thunderbird", "thunderbird"},
	{"Transmission", "/usr/bin/transmission-gtk", "transmission"},
	{"Chromium", "/usr/lib/chromium/chromium", "chromium"},
	{"Syncthing", "/usr/bin/syncthing", "syncthing"},
	{"Dropbox", "/usr/bin/dropbox", "dropbox"},
	{"apt", "/usr/bin/apt", ""},
	{"Signal", "/opt/Signal/signal-desktop", "signal-desktop"},
	{"Zoom", "/opt/zoom/zoom", "Zoom"},
	{"curl", "/usr/bin/curl", ""},
	{"ssh", "/usr/bin/ssh", ""},
	{"Slack", "/usr/lib/slack/slack", "slack"},
	{"VLC media player", "/usr/bin/vlc", "vlc"},
}

type synth struct {
	apps []api.App // initial apps
	tick int
	hist map[string]*history
	base []float64 // per-app scale
}

func newSynth(n int) *synth {
	s := &synth{hist: map[string]*history{}}
	apps := make([]api.App, n)
	for i := range apps {
		var name, exe, icon string
		if i < len(synthNames) {
			name, exe, icon = synthNames[i].name, synthNames[i].exe, synthNames[i].icon
		} else {
			name = fmt.Sprintf("service-%03d", i)
			exe = "/usr/libexec/" + name
		}
		pids := make([]int32, 1+i%4)
		for j := range pids {
			pids[j] = int32(1000 + i*10 + j)
		}
		apps[i] = api.App{ID: fmt.Sprintf("1000:%s", exe), Name: name, Exe: exe, Icon: icon, UID: 1000, User: "user", PIDs: pids}
		// a few busy apps, a long tail of quiet ones
		s.base = append(s.base, 8e6/math.Pow(float64(i+1), 1.3))
	}
	s.apps = apps
	return s
}

func (s *synth) step(f *Fake) {
	if f.snap.Apps == nil {
		f.snap.Apps = slices.Clone(s.apps)
	}
	s.tick++
	var rx, tx uint64
	for i := range f.snap.Apps {
		a := &f.snap.Apps[i]
		phase := float64(i)*0.7 + float64(s.tick)*0.35
		down := s.base[i] * (0.55 + 0.45*math.Sin(phase))
		up := s.base[i] * 0.12 * (0.6 + 0.4*math.Cos(phase*1.3))
		if a.Limit.Down != 0 && !f.status.Paused {
			down = min(down, float64(a.Limit.Down))
		}
		if a.Limit.Up != 0 && !f.status.Paused {
			up = min(up, float64(a.Limit.Up))
		}
		a.RxRate, a.TxRate = uint64(down), uint64(up)
		a.RxBytes += a.RxRate
		a.TxBytes += a.TxRate
		rx += a.RxRate
		tx += a.TxRate
		h := s.hist[a.ID]
		if h == nil {
			h = &history{}
			s.hist[a.ID] = h
		}
		h.add(api.Sample{RxRate: a.RxRate, TxRate: a.TxRate})
	}
	f.snap.RxRate, f.snap.TxRate = rx, tx
	f.snap.RxBytes += rx
	f.snap.TxBytes += tx
	f.snap.Time = time.Now().UnixMilli()
}

func (s *synth) details(f *Fake, id string) (api.AppDetails, error) {
	for _, a := range f.snap.Apps {
		if a.ID != id {
			continue
		}
		d := api.AppDetails{App: a}
		if h := s.hist[id]; h != nil {
			d.History = slices.Clone(h.s)
		}
		n := uint64(len(a.PIDs))
		for j, pid := range a.PIDs {
			d.Processes = append(d.Processes, api.Process{PID: pid, PPID: 1, Comm: a.Name, Cmdline: a.Exe,
				UID: a.UID, RxRate: a.RxRate / n, TxRate: a.TxRate / n, RxBytes: a.RxBytes / n, TxBytes: a.TxBytes / n})
			for k := 0; k < 3; k++ {
				remote, traffic := fmt.Sprintf("203.0.113.%d:443", 10+j*3+k), api.TrafficInternet
				if k == 2 {
					remote, traffic = fmt.Sprintf("192.168.1.%d:8080", 20+j), api.TrafficLocal
				}
				d.Connections = append(d.Connections, api.Connection{PID: pid, Proto: "tcp", Local: fmt.Sprintf("192.168.1.5:%d", 40000+j*3+k),
					Remote: remote, Traffic: traffic, RxRate: a.RxRate / n / 3, TxRate: a.TxRate / n / 3, RxBytes: a.RxBytes / n / 3, TxBytes: a.TxBytes / n / 3})
			}
		}
		return d, nil
	}
	return api.AppDetails{}, fmt.Errorf("app %q: not found", id)
}
