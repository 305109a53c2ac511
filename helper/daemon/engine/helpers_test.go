package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/rules"
)

// fakeProc is a /proc tree in a temporary directory.
type fakeProc struct {
	t    testing.TB
	root string
}

type fp struct {
	pid, ppid int
	uid       uint32
	euid      uint32 // 0 means same as uid (unless setEUID)
	setEUID   bool
	comm, exe string
	start     uint64
	kthread   bool
	cmdline   []string
	cgroup    string
}

func newFakeProc(t testing.TB) *fakeProc {
	root := filepath.Join(t.TempDir(), "proc")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// Non-process entries a real /proc has.
	for _, n := range []string{"self", "sys", "net"} {
		os.MkdirAll(filepath.Join(root, n), 0o755)
	}
	return &fakeProc{t: t, root: root}
}

func (f *fakeProc) add(p fp) {
	f.t.Helper()
	dir := filepath.Join(f.root, strconv.Itoa(p.pid))
	if err := os.RemoveAll(dir); err != nil {
		f.t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	if p.start == 0 {
		p.start = uint64(p.pid) * 10
	}
	if p.comm == "" {
		p.comm = filepath.Base(p.exe)
	}
	var flags uint64 = 0x400000
	if p.kthread {
		flags |= pfKthread
	}
	stat := fmt.Sprintf("%d (%s) S %d %d %d 0 -1 %d 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 10 18446744073709551615\n",
		p.pid, p.comm, p.ppid, p.pid, p.pid, flags, p.start)
	euid := p.uid
	if p.setEUID {
		euid = p.euid
	}
	status := fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nPPid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\n",
		p.comm, p.ppid, p.uid, euid, euid, euid)
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	write("stat", stat)
	write("status", status)
	cmd := p.cmdline
	if cmd == nil && p.exe != "" {
		cmd = []string{p.exe}
	}
	if len(cmd) > 0 {
		write("cmdline", strings.Join(cmd, "\x00")+"\x00")
	} else {
		write("cmdline", "")
	}
	cg := p.cgroup
	if cg == "" {
		cg = "/user.slice/user-1000.slice/session-1.scope"
	}
	write("cgroup", "0::"+cg+"\n")
	if p.exe != "" && !p.kthread {
		if err := os.Symlink(p.exe, filepath.Join(dir, "exe")); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fakeProc) remove(pid int) {
	f.t.Helper()
	if err := os.RemoveAll(filepath.Join(f.root, strconv.Itoa(pid))); err != nil {
		f.t.Fatal(err)
	}
}

// clockMonitor is a FakeMonitor whose snapshots carry a test-controlled
// time, so rates are exact.
type clockMonitor struct {
	*backends.FakeMonitor
	mu  sync.Mutex
	now time.Time
}

func (m *clockMonitor) Update() (backends.Snapshot, error) {
	s, err := m.FakeMonitor.Update()
	m.mu.Lock()
	s.Time = m.now
	m.mu.Unlock()
	return s, err
}

func (m *clockMonitor) advance(d time.Duration) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	return m.now
}

// bench is an engine on a fake /proc with fake backends.
type bench struct {
	t     testing.TB
	proc  *fakeProc
	mon   *clockMonitor
	up    *backends.FakeUpload
	down  *backends.FakeDownload
	place *backends.FakePlacer
	tags  *backends.FakeTagPlacer // set by withTagPlacer: the manager's placer
	block *backends.FakeBudgeter  // nil: no blocker
	glob  *backends.FakeGlobal    // nil: no global shaper
	mgr   *backends.Manager
	store *rules.Store
	state string
	e     *Engine
	apps  string // system .desktop dir
	users map[uint32]string
	logs  []string
	logMu sync.Mutex
}

type benchOpt func(*bench, *Config)

// withTagPlacer gives the manager a placer that tags sockets (nobody is
// placed in cgroups).
func withTagPlacer() benchOpt {
	return func(b *bench, c *Config) { b.tags = backends.NewFakeTagPlacer() }
}

func withoutDownload() benchOpt {
	return func(b *bench, c *Config) { b.down = nil }
}

func newBench(t testing.TB, setup func(*fakeProc), opts ...benchOpt) *bench {
	t.Helper()
	b := &bench{t: t, proc: newFakeProc(t), up: backends.NewFakeUpload(), down: backends.NewFakeDownload(),
		place: backends.NewFakePlacer(), block: backends.NewFakeBudgeter(), glob: backends.NewFakeGlobal(), state: filepath.Join(t.TempDir(), "state"), users: map[uint32]string{},
		apps: filepath.Join(t.TempDir(), "applications")}
	os.MkdirAll(b.apps, 0o755)
	b.mon = &clockMonitor{FakeMonitor: backends.NewFakeMonitor(), now: time.Unix(1_000_000, 0)}
	if setup != nil {
		setup(b.proc)
	}
	cfg := Config{Monitor: b.mon, ProcRoot: b.proc.root, AppDirs: []string{b.apps},
		UserAppDirs: func(uid uint32) []string {
			if d, ok := b.users[uid]; ok {
				return []string{d}
			}
			return nil
		},
		Interfaces: []string{"eth0"},
		Log:        slog.New(logCollector{b})}
	for _, o := range opts {
		o(b, &cfg)
	}
	var down backends.DownloadThrottleBackend
	if b.down != nil {
		down = b.down
	}
	var placer backends.Placer = b.place
	if b.tags != nil {
		placer = b.tags
	}
	mgr, err := backends.NewManager(b.up, down, nil, placer)
	if err != nil {
		t.Fatal(err)
	}
	if b.glob != nil {
		mgr.SetGlobalShaper(b.glob, nil)
	}
	if b.block != nil {
		mgr.SetBlocker(b.block, nil)
	}
	b.mgr = mgr
	cfg.Manager = mgr
	b.store, err = rules.Open(b.state)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Rules = b.store
	b.e, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The engine's first sample is one second after the monitor started.
	b.e.st.lastSample = b.mon.now
	// The helper's own pid, which it refuses to limit, is the fake
	// processes' world's: 299 (below 300 the kernel never hands out a pid
	// again, and no fake uses it). The test binary's real pid once was one
	// of the fakes (pid_max is 32768 here).
	b.e.self = selfPID
	t.Cleanup(func() { b.e.Close() })
	return b
}

// step advances the clock by a second and runs one full scan + sample.
// settleDesktop waits until every user's .desktop index has been built in
// the background, then steps once so apps take their names.
func (b *bench) settleDesktop() {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.e.desk.mu.Lock()
		busy := false
		for _, ui := range b.e.desk.users {
			busy = busy || ui.building
		}
		b.e.desk.mu.Unlock()
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatal("a user's .desktop index was still building after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.step()
}

func (b *bench) step() {
	now := b.mon.advance(time.Second)
	b.e.tick(now, true, true)
}

// scan runs one quick scan (no sample), as Run does 4 times a second.
func (b *bench) scan() {
	b.e.tick(time.Now(), false, false)
}

func (b *bench) app(id string) (api.App, bool) {
	for _, x := range b.e.Snapshot().Apps {
		if x.ID == id {
			return x, true
		}
	}
	return api.App{}, false
}

// target returns the pids the fake upload throttler holds for id.
func (b *bench) target(id string) ([]int, bool) {
	t, ok := b.up.TargetOf(id)
	if !ok {
		return nil, false
	}
	return t.PIDs, true
}

// admin is a caller holding manage (root): the engine's own bounds for
// users do not apply.
var admin = api.Caller{UID: 0, Admin: true}

// asUID is a caller without manage.
func asUID(uid uint32) api.Caller { return api.Caller{UID: uid} }

// logCollector keeps the engine's log messages in the bed.
type logCollector struct{ b *bench }

func (c logCollector) Enabled(context.Context, slog.Level) bool { return true }
func (c logCollector) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c logCollector) WithGroup(string) slog.Handler            { return c }
func (c logCollector) Handle(_ context.Context, r slog.Record) error {
	c.b.logMu.Lock()
	c.b.logs = append(c.b.logs, r.Message)
	c.b.logMu.Unlock()
	return nil
}

// testLog is a logger writing to the test's output.
func testLog(t testing.TB) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// selfPID is the helper's pid in the fake process tables.
const selfPID = 299
