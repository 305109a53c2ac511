//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

func TestMain(m *testing.M) {
	bustest.MaybeChild()
	code := m.Run()
	bustest.RemoveBuilt()
	os.Exit(code)
}

// helperProc is a running chadthrottle-helper.
type helperProc struct {
	cmd    *exec.Cmd
	out    *testenv.Buffer
	exited chan struct{}
	err    error
}

// instance is the directories and tag of one helper under test; restarts
// share them.
type instance struct {
	bin      string
	bus      *bustest.Bus
	stateDir string
	runDir   string
	tag      string
	extra    []string
	wrap     []string // e.g. nsenter --net=… --
	pid      int      // the helper started last (the test process for an in-process one)
}

func newInstance(t *testing.T, bus *bustest.Bus, extra ...string) *instance {
	t.Helper()
	in := &instance{
		bin:      bustest.BuildBinary(t, "./cmd/chadthrottle-helper", "fakebackends"),
		bus:      bus,
		stateDir: t.TempDir(),
		runDir:   t.TempDir(),
		tag:      testenv.UniqueName("h"),
		extra:    extra,
	}
	in.removeCgroupsAtCleanup(t)
	return in
}

// removeCgroupsAtCleanup makes sure the instance's cgroup subtree is gone
// when the test ends, even when it failed with a helper killed mid-way:
// the placer's own reconcile moves any process back and removes it. It
// runs after the cleanups that stop the helper (registered later).
func (in *instance) removeCgroupsAtCleanup(t *testing.T) {
	t.Cleanup(func() {
		if _, err := cgroupv2.Mount(); err != nil {
			return // no cgroup2 here: the helper made none either
		}
		if err := cgroupv2.RemoveLeftovers(in.tag); err != nil {
			t.Errorf("remove the helper's leftover cgroups: %v", err)
		}
	})
}

func (in *instance) args() []string {
	args := append([]string{}, in.wrap...)
	args = append(args, in.bin, "--bus", in.bus.Address, "--state-dir", in.stateDir, "--run-dir", in.runDir, "--tag", in.tag)
	return append(args, in.extra...)
}

// start runs the helper and waits for its bus name. A helper that stops
// on a signal this test did not send (another test on the machine
// signalling a pid it no longer owns) is started again, once, and logged.
// startClient starts the helper and connects a client to its bus (closed
// when the test ends).
func (in *instance) startClient(t *testing.T) (*helperProc, *client.Client) {
	t.Helper()
	return in.start(t), connect(t, in.bus.Address)
}

// connect connects a client to the bus at addr, closed when the test ends.
func connect(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (in *instance) start(t *testing.T) *helperProc {
	t.Helper()
	h, err := in.tryStart(t)
	if err != nil && strings.Contains(h.out.String(), "stopping on signal") {
		t.Logf("helper %d stopped at start on a signal this test did not send; starting it again", h.cmd.Process.Pid)
		h, err = in.tryStart(t)
	}
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (in *instance) tryStart(t *testing.T) (*helperProc, error) {
	t.Helper()
	h := in.spawn(t)
	in.pid = h.cmd.Process.Pid
	deadline := time.Now().Add(20 * time.Second)
	c, err := client.Connect(in.bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for {
		select {
		case <-h.exited:
			return h, fmt.Errorf("helper exited at start: %v\n%s", h.err, h.out.String())
		default:
		}
		if up, _ := c.Running(context.Background()); up {
			return h, nil
		}
		if time.Now().After(deadline) {
			return h, fmt.Errorf("helper did not take its name:\n%s", h.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (in *instance) spawn(t *testing.T) *helperProc {
	t.Helper()
	args := in.args()
	h := &helperProc{cmd: exec.Command(args[0], args[1:]...), out: &testenv.Buffer{}, exited: make(chan struct{})}
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.err = h.cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		<-h.exited
		if t.Failed() {
			t.Logf("helper output:\n%s", h.out.String())
		}
	})
	return h
}

// stop sends sig and waits for the exit; it returns the exit code.
func (h *helperProc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	h.cmd.Process.Signal(sig)
	return h.wait(t, 30*time.Second)
}

func (h *helperProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-h.exited:
	case <-time.After(d):
		t.Fatalf("helper did not exit within %v:\n%s", d, h.out.String())
	}
	return h.cmd.ProcessState.ExitCode()
}

// startSleeper starts a long sleep owned by u (root when nil).
func startSleeper(t *testing.T, u *bustest.User) int {
	t.Helper()
	cmd := exec.Command("/usr/bin/sleep", "600")
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// The authorization matrix: every method × {root, a user allowed monitor
// and limit-own by a polkit rule, a user allowed everything by a rule, a
// user without a rule}, against the real helper, a real dbus-daemon and a
// real polkitd. A user cannot limit another user's process or rules
// without manage.
func TestAuthorizationMatrix(t *testing.T) {
	bus := bustest.StartBus(t)
	own, admin, none := bustest.PolkitUsers(t, bus)
	in := newInstance(t, bus, "--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download")
	in.start(t)

	ownPID := startSleeper(t, &own)
	adminPID := startSleeper(t, &admin)
	nonePID := startSleeper(t, &none)
	rootPID := startSleeper(t, nil)
	time.Sleep(400 * time.Millisecond) // the engine scans /proc every 250 ms

	const exe = "/usr/bin/sleep"
	na := api.ErrNotAuthorized
	type row struct {
		label string
		calls []bustest.Call // the last call's answer is checked; earlier ones prepare
	}
	s := strconv.Itoa
	u := func(x uint32) string { return strconv.FormatUint(uint64(x), 10) }
	rows := func(self *bustest.User, selfPID int, other *bustest.User, otherPID int) []row {
		selfUID := "0"
		if self != nil {
			selfUID = u(self.UID)
		}
		return []row{
			{api.MethodGetStatus, []bustest.Call{{Method: api.MethodGetStatus}}},
			{api.MethodGetPermissions, []bustest.Call{{Method: api.MethodGetPermissions}}},
			{api.MethodListBackends, []bustest.Call{{Method: api.MethodListBackends}}},
			{api.MethodGetApps, []bustest.Call{{Method: api.MethodGetApps}}},
			{api.MethodGetAppDetails, []bustest.Call{{Method: api.MethodGetAppDetails, Args: []string{selfUID + ":" + exe}}}},
			{api.MethodGetRules, []bustest.Call{{Method: api.MethodGetRules}}},
			{"SetAppLimit own", []bustest.Call{{Method: api.MethodSetAppLimit, Args: []string{exe, selfUID, "0", "100000", "all"}}}},
			{"RemoveAppLimit own", []bustest.Call{{Method: api.MethodRemoveAppLimit, Args: []string{exe, selfUID}}}},
			{"SetAppLimit other", []bustest.Call{{Method: api.MethodSetAppLimit, Args: []string{exe, u(other.UID), "0", "100000", "all"}}}},
			{"RemoveAppLimit other", []bustest.Call{{Method: api.MethodRemoveAppLimit, Args: []string{exe, u(other.UID)}}}},
			{"SetProcessLimit own", []bustest.Call{{Method: api.MethodSetProcessLimit, Args: []string{s(selfPID), "200000", "100000", "internet"}}}},
			{"RemoveProcessLimit own", []bustest.Call{{Method: api.MethodRemoveProcessLimit, Args: []string{s(selfPID)}}}},
			{"SetProcessLimit other", []bustest.Call{{Method: api.MethodSetProcessLimit, Args: []string{s(otherPID), "0", "100000", "all"}}}},
			{"RemoveProcessLimit other", []bustest.Call{{Method: api.MethodRemoveProcessLimit, Args: []string{s(otherPID)}}}},
			{"SetProcessLimit root's", []bustest.Call{{Method: api.MethodSetProcessLimit, Args: []string{s(rootPID), "0", "100000", "all"}}}},
			{"RemoveProcessLimit root's", []bustest.Call{{Method: api.MethodRemoveProcessLimit, Args: []string{s(rootPID)}}}},
			{api.MethodSetPaused, []bustest.Call{{Method: api.MethodSetPaused, Args: []string{"false"}}}},
		}
	}
	everything := map[string]string{}
	ownOnly := map[string]string{"SetAppLimit other": na, "RemoveAppLimit other": na, "SetProcessLimit other": na,
		"RemoveProcessLimit other": na, "SetProcessLimit root's": na, "RemoveProcessLimit root's": na}
	nothing := map[string]string{}
	for _, r := range rows(&none, nonePID, &own, ownPID) {
		if r.label != api.MethodGetPermissions {
			nothing[r.label] = na
		}
	}
	cases := []struct {
		name     string
		user     *bustest.User
		pid      int
		other    *bustest.User
		otherPID int
		want     map[string]string // label → error name; missing = success
		perms    api.Permissions
	}{
		{"root", nil, rootPID, &own, ownPID, everything, api.Permissions{Monitor: "yes", LimitOwn: "yes", Manage: "yes"}},
		{"limit-own rule", &own, ownPID, &none, nonePID, ownOnly, api.Permissions{Monitor: "yes", LimitOwn: "yes", Manage: "auth"}},
		{"manage rule", &admin, adminPID, &own, ownPID, everything, api.Permissions{Monitor: "yes", LimitOwn: "yes", Manage: "yes"}},
		{"no rule", &none, nonePID, &own, ownPID, nothing, api.Permissions{Monitor: "auth", LimitOwn: "auth", Manage: "auth"}},
	}
	root := connect(t, bus.Address)
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			peer := bustest.NewPeer(t, bus, c.user)
			rs := rows(c.user, c.pid, c.other, c.otherPID)
			var calls []bustest.Call
			for _, r := range rs {
				calls = append(calls, r.calls...)
			}
			answers := peer.Calls(t, calls...)
			i := 0
			for _, r := range rs {
				i += len(r.calls)
				a := answers[i-1]
				want := c.want[r.label]
				if want == "" && !a.OK {
					t.Errorf("%s: %s %s, want success", r.label, a.Error, a.Message)
				}
				if want != "" && a.Error != want {
					t.Errorf("%s: ok=%v %s %s, want %s", r.label, a.OK, a.Error, a.Message, want)
				}
				if r.label == api.MethodGetPermissions && a.OK {
					var p api.Permissions
					json.Unmarshal(a.Result, &p)
					if p != c.perms {
						t.Errorf("permissions %+v, want %+v", p, c.perms)
					}
				}
			}
			// Refused calls changed nothing: no rule of another uid, no
			// limit on another's process.
			rules, err := root.Rules(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.want["SetAppLimit other"] == na {
				for _, r := range rules {
					if c.other != nil && r.UID == c.other.UID {
						t.Errorf("a refused caller left a rule for uid %d: %+v", r.UID, r)
					}
				}
			}
			if c.want["SetProcessLimit other"] == na {
				d, err := root.AppDetails(ctx, u(c.other.UID)+":"+exe)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range d.Processes {
					if p.Limit.Up != 0 || p.Limit.Down != 0 {
						t.Errorf("a refused caller limited process %d of uid %d: %+v", p.PID, c.other.UID, p.Limit)
					}
				}
			}
		})
	}
}

// SIGTERM: the helper releases its name, removes its state and exits 0; the
// rules persist and come back at the next start. A second instance refuses
// to start while one runs.
func TestLifecycle(t *testing.T) {
	bus := bustest.StartBus(t)
	in := newInstance(t, bus, "--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download")
	h, c := in.startClient(t)
	ctx := context.Background()
	presence := make(chan bool, 8)
	defer c.OnHelperPresence(func(up bool) { presence <- up })()
	if err := c.SetAppLimit(ctx, "/usr/bin/curl", 1000, api.Limit{Down: 1_000_000, Up: 50_000, Traffic: "internet"}); err != nil {
		t.Fatal(err)
	}
	// A second helper gives up at once, without touching the first.
	second := in.spawn(t)
	if code := second.wait(t, 20*time.Second); code == 0 || !strings.Contains(second.out.String(), "already") {
		t.Fatalf("second instance: exit %d\n%s", code, second.out.String())
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("first helper after a second tried: %v", err)
	}
	if code := h.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, h.out.String())
	}
	select {
	case up := <-presence:
		if up {
			t.Fatal("presence said up after SIGTERM")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no presence change after SIGTERM")
	}
	if _, err := c.Status(ctx); !errors.Is(err, client.ErrHelperMissing) {
		t.Fatalf("after exit: %v, want ErrHelperMissing", err)
	}
	h = in.start(t)
	rules, err := c.Rules(ctx)
	if err != nil || len(rules) != 1 || rules[0] != (api.Rule{Exe: "/usr/bin/curl", UID: 1000, Limit: api.Limit{Down: 1_000_000, Up: 50_000, Traffic: "internet"}, Admin: true}) {
		t.Fatalf("rules after restart: %+v %v", rules, err)
	}
	if code := h.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("SIGINT: exit %d", code)
	}
}

// --idle-exit: with no limits and no calls the helper exits by itself; a
// client polling, or a rule, keeps it.
func TestIdleExit(t *testing.T) {
	bus := bustest.StartBus(t)
	in := newInstance(t, bus, "--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download", "--idle-exit", "1500ms")
	h, c := in.startClient(t)
	ctx := context.Background()
	// Polling at 2 Hz for 3 s keeps it alive.
	for i := 0; i < 6; i++ {
		if _, err := c.Apps(ctx); err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code := h.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("idle exit: code %d", code)
	}
	// With a rule it stays.
	h = in.start(t)
	if err := c.SetAppLimit(ctx, "/usr/bin/curl", 0, api.Limit{Up: 1000}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.exited:
		t.Fatalf("exited with a rule in place:\n%s", h.out.String())
	case <-time.After(4 * time.Second):
	}
	h.stop(t, syscall.SIGTERM)
}

// D-Bus activation: the first call starts the helper from a .service file.
// (A session-type bus runs Exec itself; the system bus does the same through
// dbus-daemon-launch-helper, which reads only the installed system files.)
func TestActivation(t *testing.T) {
	testenv.RequireRoot(t)
	dir := bustest.PublicDir(t)
	svcDir := filepath.Join(dir, "services")
	os.Mkdir(svcDir, 0o755)
	sock := filepath.Join(dir, "bus")
	bin := bustest.BuildBinary(t, "./cmd/chadthrottle-helper", "fakebackends")
	state, run := t.TempDir(), t.TempDir()
	logPath := filepath.Join(dir, "helper.log")
	svc := fmt.Sprintf("[D-BUS Service]\nName=%s\nExec=/bin/sh -c 'exec %s --bus unix:path=%s --state-dir %s --run-dir %s --tag %s --monitor fake --upload fake_upload --download fake_download --idle-exit 2s >>%s 2>&1'\n",
		api.BusName, bin, sock, state, run, testenv.UniqueName("a"), logPath)
	os.WriteFile(filepath.Join(svcDir, api.BusName+".service"), []byte(svc), 0o644)
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=%s</listen><auth>EXTERNAL</auth><servicedir>%s</servicedir>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`, sock, svcDir)
	confPath := filepath.Join(dir, "bus.conf")
	os.WriteFile(confPath, []byte(conf), 0o644)
	daemon := exec.Command("dbus-daemon", "--config-file="+confPath, "--nofork", "--nopidfile", "--print-address")
	out, _ := daemon.StdoutPipe()
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { daemon.Process.Kill(); daemon.Wait() }()
	addr, _ := bufio.NewReader(out).ReadString('\n')
	go io.Copy(io.Discard, out)
	c := connect(t, strings.TrimSpace(addr))
	ctx := context.Background()
	if up, _ := c.Running(ctx); up {
		t.Fatal("helper running before any call")
	}
	st, err := c.Status(ctx)
	if err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("activating call: %v\n%s", err, b)
	}
	if st.Upload != "fake_upload" {
		t.Fatalf("status %+v", st)
	}
	// It exits when idle and comes back on the next call.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if up, _ := c.Running(ctx); !up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("activated helper did not exit when idle")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.Apps(ctx); err != nil {
		t.Fatalf("second activation: %v", err)
	}
}

// chadthrottlectl as unprivileged users against the real helper: a user
// allowed limit-own sets and removes a rule for its own uid and sees it;
// limiting another user's process fails with a clear message; a user
// without a rule is refused.
func TestCtlAsUsers(t *testing.T) {
	bus := bustest.StartBus(t)
	bustest.InstallPolicy(t)
	own, none := bustest.AddUser(t), bustest.AddUser(t)
	bustest.WriteRules(t, fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (subject.user == %q && (action.id == %q || action.id == %q)) return polkit.Result.YES;
});
`, own.Name, api.ActionMonitor, api.ActionLimitOwn))
	bustest.StartPolkit(t, bus)
	in := newInstance(t, bus, "--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download")
	in.start(t)
	ctl := bustest.BuildBinary(t, "./cmd/chadthrottlectl")
	nonePID := startSleeper(t, &none)
	ownPID := startSleeper(t, &own)
	time.Sleep(400 * time.Millisecond)
	ctx := context.Background()
	runOn := func(u *bustest.User, busAddr string, args ...string) (string, string, int) {
		out, errOut, err := bustest.RunAs(ctx, u, nil, ctl, append(args, "--bus", busAddr)...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out, errOut, code
	}
	run := func(u *bustest.User, args ...string) (string, string, int) { return runOn(u, bus.Address, args...) }
	if out, errOut, code := run(&own, "limit", "--app", "/usr/bin/sleep", "--down", "1.5MB/s", "--up", "8Mbit/s", "--traffic", "internet"); code != 0 {
		t.Fatalf("limit --app as %s: %d %s %s", own.Name, code, out, errOut)
	}
	out, _, code := run(&own, "rules", "--json")
	var doc struct{ Rules []api.Rule }
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || len(doc.Rules) != 1 ||
		doc.Rules[0] != (api.Rule{Exe: "/usr/bin/sleep", UID: own.UID, Limit: api.Limit{Down: 1_500_000, Up: 1_000_000, Traffic: "internet"}}) {
		t.Fatalf("rules --json: %d %s", code, out)
	}
	out, _, code = run(&own, "rules")
	if code != 0 || !strings.Contains(out, "1.5 MB/s") || !strings.Contains(out, "internet") {
		t.Errorf("rules table:\n%s", out)
	}
	out, _, code = run(&own, "top", "--json")
	var top struct{ Apps []map[string]any }
	if err := json.Unmarshal([]byte(out), &top); code != 0 || err != nil {
		t.Fatalf("top --json: %d %v %s", code, err, out)
	}
	found := false
	for _, a := range top.Apps {
		if a["id"] == fmt.Sprintf("%d:/usr/bin/sleep", own.UID) {
			found = true
			lim := a["limit"].(map[string]any)
			if lim["down"].(float64) != 1_500_000 || lim["up"].(float64) != 1_000_000 {
				t.Errorf("top shows limit %v", lim)
			}
		}
	}
	if !found {
		t.Errorf("top --json does not show %s's sleep: %s", own.Name, out)
	}
	if out, errOut, code := run(&own, "limit", "--pid", strconv.Itoa(ownPID), "--up", "100KB/s"); code != 0 {
		t.Errorf("limit own pid: %d %s %s", code, out, errOut)
	}
	// Exit statuses: 3 not authorized, 4 not found, 5 helper unavailable.
	if _, errOut, code := run(&own, "limit", "--pid", strconv.Itoa(nonePID), "--up", "100KB/s"); code != 3 || !strings.Contains(errOut, "not authorized") || !strings.Contains(errOut, api.ActionManage) {
		t.Errorf("limit another user's pid: %d %q", code, errOut)
	}
	if _, errOut, code := run(&none, "top"); code != 3 || !strings.Contains(errOut, "not authorized") {
		t.Errorf("top without a rule: %d %q", code, errOut)
	}
	if _, errOut, code := run(nil, "unlimit", "--app", "/usr/bin/no-such-rule", "--uid", "4242"); code != 4 || !strings.Contains(errOut, "not found") {
		t.Errorf("unlimit a rule that does not exist: %d %q", code, errOut)
	}
	if _, errOut, code := run(nil, "details", "0:/no/such/app"); code != 4 || !strings.Contains(errOut, "not found") {
		t.Errorf("details of no app: %d %q", code, errOut)
	}
	empty := bustest.StartBus(t)
	if _, errOut, code := runOn(&own, empty.Address, "top"); code != 5 || !strings.Contains(errOut, "not running") {
		t.Errorf("a bus without the helper: %d %q", code, errOut)
	}
	if _, errOut, code := runOn(&own, "unix:path=/nonexistent/bus", "top"); code != 5 {
		t.Errorf("no bus: %d %q", code, errOut)
	}

	// status, pause and resume.
	out, errOut, code := run(&own, "status", "--json")
	var st struct {
		Version, Upload string
		Paused          bool
		Permissions     api.Permissions
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Upload != "fake_upload" || st.Permissions.LimitOwn != api.PermYes || st.Paused {
		t.Errorf("status --json: %d %v %s %s", code, err, out, errOut)
	}
	if out, errOut, code := run(&own, "pause"); code != 0 || !strings.Contains(out, "paused") {
		t.Errorf("pause: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := run(&own, "status"); !regexp.MustCompile(`paused:\s+yes`).MatchString(out) {
		t.Errorf("status after pause: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(&own, "resume"); code != 0 || !strings.Contains(out, "resumed") {
		t.Errorf("resume: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := run(&own, "status"); !regexp.MustCompile(`paused:\s+no`).MatchString(out) {
		t.Errorf("status after resume: exit %d\n%s%s", code, out, errOut)
	}

	// details: one's own app in full; another user's by the hidden id top
	// gives it, without processes or connections.
	out, errOut, code = run(&own, "details", fmt.Sprintf("%d:/usr/bin/sleep", own.UID), "--json")
	var det api.AppDetails
	if err := json.Unmarshal([]byte(out), &det); code != 0 || err != nil || len(det.Processes) == 0 || det.Processes[0].PID != int32(ownPID) {
		t.Errorf("details --json of one's own app: %d %v %s %s", code, err, out, errOut)
	}
	if out, errOut, code := run(&own, "details", "sleep"); code != 0 || !strings.Contains(out, strconv.Itoa(ownPID)) || !strings.Contains(out, "processes (1)") {
		t.Errorf("details by name: %d %s %s", code, out, errOut)
	}
	hidden := ""
	out, _, _ = run(&own, "top", "--json")
	json.Unmarshal([]byte(out), &top)
	for _, a := range top.Apps {
		if a["uid"].(float64) == float64(none.UID) {
			hidden, _ = a["id"].(string)
		}
	}
	if !strings.HasPrefix(hidden, fmt.Sprintf("%d:#", none.UID)) {
		t.Fatalf("top --json gives %s's sleep no hidden id: %q\n%s", none.Name, hidden, out)
	}
	out, errOut, code = run(&own, "details", hidden, "--json")
	det = api.AppDetails{}
	if err := json.Unmarshal([]byte(out), &det); code != 0 || err != nil || len(det.Processes) != 0 || det.App.Exe != "" {
		t.Errorf("details of another user's app by its hidden id: %d %v %s %s", code, err, out, errOut)
	}
	if _, errOut, code := run(&own, "details", fmt.Sprintf("%d:/usr/bin/sleep", none.UID)); code != 3 {
		t.Errorf("details of another user's app by its real id: %d %q", code, errOut)
	}

	// sudo: root's --app rule is for SUDO_UID.
	sudoEnv := []string{fmt.Sprintf("SUDO_UID=%d", own.UID), "SUDO_USER=" + own.Name}
	out, errOut, err := bustest.RunAs(ctx, nil, sudoEnv, ctl, "--bus", bus.Address, "limit", "--app", "/usr/bin/true", "--up", "1MB/s")
	if err != nil || !strings.Contains(out, fmt.Sprintf("uid %d, %s, who ran sudo", own.UID, own.Name)) {
		t.Errorf("limit under sudo: %v %s %s", err, out, errOut)
	}
	out, _, _ = run(&own, "rules", "--json")
	if !strings.Contains(out, `"exe": "/usr/bin/true"`) {
		t.Errorf("the rule set under sudo is not %s's: %s", own.Name, out)
	}
	if out, errOut, err := bustest.RunAs(ctx, nil, sudoEnv, ctl, "--bus", bus.Address, "unlimit", "--app", "/usr/bin/true"); err != nil {
		t.Errorf("unlimit under sudo: %v %s %s", err, out, errOut)
	}
	if _, errOut, code := run(&own, "limit", "--pid", "1", "--up", "5Mb/s"); code != 2 || !strings.Contains(errOut, "ambiguous") {
		t.Errorf("ambiguous rate: %d %q", code, errOut)
	}
	if out, errOut, code := run(&own, "unlimit", "--app", "/usr/bin/sleep"); code != 0 {
		t.Errorf("unlimit: %d %s %s", code, out, errOut)
	}
	if out, _, _ := run(&own, "rules", "--json"); !strings.Contains(out, `"rules": []`) {
		t.Errorf("rules after unlimit: %s", out)
	}
}

// chadthrottlectl in a terminal with no graphical authentication agent (a
// console, an SSH login): a limiting call runs polkit's text agent
// (pkttyagent) first, so polkit can ask for the password in the terminal
// instead of refusing. The terminal is a pty (script(1)); the user's polkit
// rule says AUTH_SELF. Without a logind session (this test) the agent
// registers for the process; polkit versions that look up the process
// behind a bus name then ask in the terminal, and the test dismisses the
// prompt (exit 3). polkit 122 (Debian 12) does not, and finds an agent for
// a bus name only through the session: then the test checks that the real
// agent ran and registered, and that the call still ends at once with 3.
func TestCtlAsksForPasswordInTerminal(t *testing.T) {
	testenv.RequireTool(t, "script", "pkttyagent")
	bus := bustest.StartBus(t)
	bustest.InstallPolicy(t)
	own := bustest.AddUser(t)
	bustest.WriteRules(t, fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (subject.user == %q && action.id == %q) return polkit.Result.YES;
  if (subject.user == %q && action.id == %q) return polkit.Result.AUTH_SELF;
});
`, own.Name, api.ActionMonitor, own.Name, api.ActionLimitOwn))
	bustest.StartPolkit(t, bus)
	in := newInstance(t, bus, "--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download")
	in.start(t)
	ctl := bustest.BuildBinary(t, "./cmd/chadthrottlectl")
	pid := startSleeper(t, &own)

	// pkttyagent through a wrapper that records how it was started and
	// what it said.
	wrap := bustest.PublicDir(t)
	logf := filepath.Join(wrap, "agent.log")
	if err := os.WriteFile(logf, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(logf, 0o666)
	script := fmt.Sprintf("#!/bin/sh\necho \"started: $*\" >> %s\nexec /usr/bin/pkttyagent \"$@\" 2>> %s\n", logf, logf)
	if err := os.WriteFile(filepath.Join(wrap, "pkttyagent"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	line := fmt.Sprintf("exec %s --bus '%s' limit --pid %d --up 1MB/s", ctl, bus.Address, pid)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qfec", line, "/dev/null")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: own.Credential()}
	cmd.Env = []string{"PATH=" + wrap + ":/usr/bin:/bin", "SHELL=/bin/sh", "LANG=C.UTF-8", "HOME=/"}
	cmd.Dir = "/"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "AUTHENTICATING FOR "+api.ActionLimitOwn) && !strings.Contains(out.String(), "not authorized") &&
		time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	prompted := strings.Contains(out.String(), "AUTHENTICATING FOR "+api.ActionLimitOwn)
	stdin.Close() // dismisses a prompt
	err = cmd.Wait()
	took := time.Since(start)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	agentLog, _ := os.ReadFile(logf)
	t.Logf("the terminal showed (after %s):\n%s\nagent log:\n%s", took.Round(time.Millisecond), out.String(), agentLog)
	if code != 3 || !strings.Contains(out.String(), "not authorized") {
		t.Errorf("exit %d, want 3 and \"not authorized\"", code)
	}
	if want := "started: --process "; !strings.Contains(string(agentLog), want) || strings.Contains(string(agentLog), "Error registering") {
		t.Fatalf("pkttyagent was not started for the process, or did not register")
	}
	if prompted {
		t.Logf("polkit asked in the terminal")
		return
	}
	if v, _ := exec.Command("pkttyagent", "--version").Output(); !strings.Contains(string(v), "version 122") {
		t.Errorf("polkit (%s) did not ask in the terminal", strings.TrimSpace(string(v)))
	}
	if took > 4*time.Second {
		t.Errorf("the refused call took %s: chadthrottlectl waited for the agent", took)
	}
	t.Logf("polkit 122 finds no agent for a bus name outside a logind session: the agent registered, polkit did not use it")
}
