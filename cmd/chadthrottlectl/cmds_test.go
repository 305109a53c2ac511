package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// fakeSys replaces the process's terminal, uid and environment for one
// test.
func fakeSys(t *testing.T, tty bool, uid int, env map[string]string, stdin io.Reader) {
	t.Helper()
	saved := sys
	t.Cleanup(func() { sys = saved })
	sys.stdinTTY = func() bool { return tty }
	sys.getuid = func() int { return uid }
	sys.getenv = func(k string) string { return env[k] }
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	sys.stdin = stdin
	sys.ttyAgent = "/nonexistent/pkttyagent"
}

func keysOf(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestVersion(t *testing.T) {
	dialled := false
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"version", "--bus", "session"}, &out, &errb, func(target) (helper, error) {
		dialled = true
		return nil, nil
	})
	if code != 0 || out.String() != "chadthrottlectl "+api.Version+"\n" || dialled {
		t.Errorf("version: %d %q %q (dialled %v)", code, out.String(), errb.String(), dialled)
	}
}

func TestStatus(t *testing.T) {
	f := &fakeHelper{status: api.Status{Version: "1.2.3", Monitor: "ebpf", Upload: "ebpf_cgroup", Download: "",
		DownloadReason: "no ifb module", Interfaces: "eth0,wlan0", Paused: true}}
	code, out, errOut := runCLI(t, f, "status")
	for _, w := range []string{"1.2.3 on this machine (system bus)", "ebpf_cgroup", "unavailable: no ifb module", "eth0,wlan0",
		"paused:", "yes", "global limit:", "none", "limit your apps: yes; manage everyone's: auth", api.Version} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("status has no %q: %d\n%s%s", w, code, out, errOut)
		}
	}
	code, out, _ = runCLI(t, f, "status", "--json", "-H", "box")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v %s", code, err, out)
	}
	want := []string{"bus", "client_version", "download", "download_reason", "global", "host", "interfaces", "monitor", "paused", "permissions", "upload", "version"}
	if got := keysOf(doc); !reflect.DeepEqual(got, want) {
		t.Errorf("status --json keys %v, want %v", got, want)
	}
	if doc["paused"] != true || doc["host"] != "box" || doc["permissions"].(map[string]any)["manage"] != "auth" || doc["download_reason"] != "no ifb module" {
		t.Errorf("status --json: %s", out)
	}
	if !reflect.DeepEqual(f.calls, []string{"Status", "Permissions", "GlobalLimit", "Status", "Permissions", "GlobalLimit"}) {
		t.Errorf("calls %v", f.calls)
	}
}

func TestPauseResume(t *testing.T) {
	f := &fakeHelper{}
	if code, out, _ := runCLI(t, f, "pause"); code != 0 || !strings.Contains(out, "chadthrottlectl resume") {
		t.Errorf("pause: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, f, "resume", "--bus", "session"); code != 0 || !strings.Contains(out, "resumed") || f.target.bus != "session" {
		t.Errorf("resume: %d %q %+v", code, out, f.target)
	}
	if want := []string{fmtCall("SetPaused", true), fmtCall("SetPaused", false)}; !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
}

func detailsFake() *fakeHelper {
	app := api.App{ID: "1000:/usr/bin/curl", Name: "curl", Exe: "/usr/bin/curl", UID: 1000, User: "alice", PIDs: []int32{7},
		RxRate: 2000, TxRate: 10, RxBytes: 1e6, TxBytes: 1e3, Limit: api.Limit{Down: 5000, Traffic: "internet"}, Rule: true}
	return &fakeHelper{
		snap: api.Snapshot{Apps: []api.App{app,
			{ID: "0:/usr/bin/wget", Name: "wget", Exe: "/usr/bin/wget"}, {ID: "1:/opt/wget", Name: "GNU Wget", Exe: "/opt/wget"},
			{ID: "1001:#00aa11bb22cc33dd", Name: "Firefox", UID: 1001, User: "bob"}}},
		details: api.AppDetails{App: app,
			Processes: []api.Process{{PID: 7, PPID: 1, Comm: "curl", Cmdline: "curl -o x \x1b]0;evil\a https://example.org/", UID: 1000,
				RxRate: 2000, TxRate: 10, RxBytes: 1e6, TxBytes: 1e3, Limit: api.Limit{Up: 700}}},
			Connections: []api.Connection{{PID: 7, Proto: "tcp", Local: "192.168.1.5:40000", Remote: "93.184.216.34:443", Traffic: "internet",
				RxRate: 2000, TxRate: 10, RxBytes: 1e6, TxBytes: 1e3}},
			History: []api.Sample{{RxRate: 1, TxRate: 2}}},
	}
}

// details shows processes and connections; APP is an id (hidden ids of
// other users' apps too) or a name matched against the running apps.
func TestDetails(t *testing.T) {
	for _, c := range []struct {
		arg, id string
	}{
		{"1000:/usr/bin/curl", "1000:/usr/bin/curl"}, {"1001:#00aa11bb22cc33dd", "1001:#00aa11bb22cc33dd"},
		{"curl", "1000:/usr/bin/curl"}, {"/usr/bin/curl", "1000:/usr/bin/curl"}, {"firefox", "1001:#00aa11bb22cc33dd"},
		{"GNU Wget", "1:/opt/wget"},
	} {
		f := detailsFake()
		code, out, errOut := runCLI(t, f, "details", c.arg)
		if code != 0 || f.calls[len(f.calls)-1] != fmtCall("AppDetails", c.id) {
			t.Errorf("details %s: %d %v %s", c.arg, code, f.calls, errOut)
		}
		if c.arg != "curl" {
			continue
		}
		for _, w := range []string{"curl (/usr/bin/curl)", "alice (uid 1000)", "down 5 KB/s, up unlimited, internet traffic only (saved as a rule)",
			"processes (1)", "curl -o x \\x1b]0;evil\\x07 https://example.org/", "700 B/s", "connections (1)", "93.184.216.34:443",
			"192.168.1.5:40000", "internet", "1 MB"} {
			if !strings.Contains(out, w) {
				t.Errorf("details text has no %q:\n%s", w, out)
			}
		}
	}
	f := detailsFake()
	code, _, errOut := runCLI(t, f, "details", "wget")
	if code != 2 || !strings.Contains(errOut, "names 2 apps") || !strings.Contains(errOut, "0:/usr/bin/wget 1:/opt/wget") {
		t.Errorf("ambiguous: %d %q", code, errOut)
	}
	f = detailsFake()
	code, out, _ := runCLI(t, f, "details", "--json", "1000:/usr/bin/curl")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("details --json: %d %v %s", code, err, out)
	}
	if got := keysOf(doc); !reflect.DeepEqual(got, []string{"app", "connections", "history", "processes"}) {
		t.Errorf("details --json keys %v", got)
	}
	p := doc["processes"].([]any)[0].(map[string]any)
	if want := []string{"cmdline", "comm", "limit", "pid", "ppid", "rx_bytes", "rx_rate", "tx_bytes", "tx_rate", "uid"}; !reflect.DeepEqual(keysOf(p), want) ||
		p["cmdline"] != "curl -o x \x1b]0;evil\a https://example.org/" {
		t.Errorf("process %v", p)
	}
	n := doc["connections"].([]any)[0].(map[string]any)
	if want := []string{"local", "pid", "proto", "remote", "rx_bytes", "rx_rate", "traffic", "tx_bytes", "tx_rate"}; !reflect.DeepEqual(keysOf(n), want) {
		t.Errorf("connection %v", n)
	}
	// Empty lists are lists.
	f = &fakeHelper{details: api.AppDetails{App: api.App{ID: "5:/x"}}}
	if _, out, _ := runCLI(t, f, "details", "5:/x", "--json"); !strings.Contains(out, `"processes": []`) || !strings.Contains(out, `"connections": []`) || !strings.Contains(out, `"pids": []`) {
		t.Errorf("empty details --json: %s", out)
	}
}

// slowReader returns data after a delay, then blocks until closed.
type slowReader struct {
	delay time.Duration
	data  string
	done  bool
}

func (r *slowReader) Read(b []byte) (int, error) {
	if r.done {
		select {}
	}
	time.Sleep(r.delay)
	r.done = true
	return copy(b, r.data), nil
}

// top --watch refreshes until q; on a terminal it uses the alternate
// screen, fits the window and restores the terminal; without one it
// prints a table each interval.
func TestTopWatch(t *testing.T) {
	apps := make([]api.App, 30)
	for i := range apps {
		apps[i] = api.App{ID: "1:/bin/app" + strconv.Itoa(i), Name: "app" + strconv.Itoa(i) + strings.Repeat("x", 100), Exe: "/bin/app", RxRate: uint64(100 - i)}
	}
	f := &fakeHelper{snap: api.Snapshot{Apps: apps}}
	fakeSys(t, true, 1000, nil, &slowReader{delay: 350 * time.Millisecond, data: "q"})
	restored, raw := 0, 0
	sys.rawStdin = func() (func(), error) { raw++; return func() { restored++ }, nil }
	sys.termSize = func(io.Writer) (int, int, bool) { return 80, 12, true }
	start := time.Now()
	code, out, errOut := runCLI(t, f, "top", "--watch", "--interval", "100ms")
	if code != 0 || raw != 1 || restored != 1 {
		t.Fatalf("top --watch: %d raw %d restored %d %s", code, raw, restored, errOut)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("q took %s", d)
	}
	if n := len(f.calls); n < 3 || n > 6 {
		t.Errorf("%d refreshes in 350 ms at 100 ms", n)
	}
	if !strings.HasPrefix(out, "\x1b[?1049h\x1b[?25l") || !strings.HasSuffix(out, "\x1b[?25h\x1b[?1049l") {
		t.Errorf("alternate screen not entered or left: %q … %q", out[:20], out[len(out)-20:])
	}
	frames := strings.Split(out, "\x1b[H\x1b[2J")
	last := strings.TrimSuffix(frames[len(frames)-1], "\x1b[?25h\x1b[?1049l")
	lines := strings.Split(last, "\n")
	if len(lines) > 12 || !strings.Contains(last, "… 22 more") || !strings.Contains(last, "q quits") || !strings.Contains(last, "app0xxx") {
		t.Errorf("frame of %d lines for a 12-line terminal:\n%s", len(lines), last)
	}
	for _, l := range lines {
		if len([]rune(l)) > 80 {
			t.Errorf("line wider than the terminal: %q", l)
		}
	}

	// No terminal: tables one after another until q on stdin.
	f = &fakeHelper{snap: api.Snapshot{Apps: apps[:2]}}
	fakeSys(t, false, 1000, nil, &slowReader{delay: 250 * time.Millisecond, data: "q\n"})
	sys.termSize = func(io.Writer) (int, int, bool) { return 0, 0, false }
	code, out, _ = runCLI(t, f, "top", "--watch", "--interval", "0.1")
	if code != 0 || strings.Count(out, "APP ") < 2 || strings.Contains(out, "\x1b") {
		t.Errorf("top --watch without a terminal: %d\n%s", code, out)
	}

	// Ctrl-C (the context ends) stops it too, with status 0.
	fakeSys(t, false, 1000, nil, &slowReader{delay: time.Hour})
	sys.termSize = func(io.Writer) (int, int, bool) { return 0, 0, false }
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var o, e bytes.Buffer
	if code := run(ctx, []string{"top", "--watch"}, &o, &e, func(target) (helper, error) { return &fakeHelper{}, nil }); code != 0 {
		t.Errorf("top --watch ended by the context: %d %s", code, e.String())
	}
}

// Under sudo, --app rules are for the user who ran sudo unless --uid says
// otherwise; on a remote host SUDO_UID means nothing.
func TestSudoRules(t *testing.T) {
	fakeSys(t, false, 0, map[string]string{"SUDO_UID": "1000", "SUDO_USER": "alice"}, nil)
	for _, c := range []struct {
		args []string
		call string
		msg  string
	}{
		{[]string{"limit", "--app", "/usr/bin/sleep", "--up", "1KB/s"}, fmtCall("SetAppLimit", "/usr/bin/sleep", 1000, api.Limit{Up: 1000, Traffic: "all"}),
			"rule set for /usr/bin/sleep (uid 1000, alice, who ran sudo; --uid 0 makes it root's)"},
		{[]string{"unlimit", "--app", "/usr/bin/sleep"}, fmtCall("RemoveAppLimit", "/usr/bin/sleep", 1000), "who ran sudo"},
		{[]string{"limit", "--app", "/usr/bin/sleep", "--up", "1KB/s", "--uid", "0"}, fmtCall("SetAppLimit", "/usr/bin/sleep", 0, api.Limit{Up: 1000, Traffic: "all"}),
			"(uid 0)"},
		{[]string{"-H", "box", "limit", "--app", "/usr/bin/sleep", "--up", "1KB/s"}, fmtCall("SetAppLimit", "/usr/bin/sleep", 4321, api.Limit{Up: 1000, Traffic: "all"}),
			"uid 4321, your login on box"},
	} {
		f := &fakeHelper{}
		code, out, errOut := runCLI(t, f, c.args...)
		if code != 0 || f.calls[len(f.calls)-1] != c.call || !strings.Contains(out, c.msg) {
			t.Errorf("%v: %d %v %q %q; want %s and %q", c.args, code, f.calls, out, errOut, c.call, c.msg)
		}
	}
	// Root without sudo, and a nonsense SUDO_UID: root's rule.
	for _, env := range []map[string]string{nil, {"SUDO_UID": "x"}, {"SUDO_UID": "0"}} {
		fakeSys(t, false, 0, env, nil)
		f := &fakeHelper{}
		if code, out, _ := runCLI(t, f, "limit", "--app", "/usr/bin/sleep", "--up", "1"); code != 0 ||
			f.calls[0] != fmtCall("SetAppLimit", "/usr/bin/sleep", 0, api.Limit{Up: 1, Traffic: "all"}) || !strings.Contains(out, "(uid 0)") {
			t.Errorf("root with %v: %v %q", env, f.calls, out)
		}
	}
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// limit --app on a wrapper script names the program it runs (its exec
// line, or the running app of that name) and asks in a terminal; without
// one it refuses with exit 2.
func TestWrapperScript(t *testing.T) {
	sleep, _ := filepath.EvalSymlinks("/usr/bin/sleep")
	dir := t.TempDir()
	plain := writeScript(t, dir, "plain", "#!/bin/sh\n# a wrapper\nexport MOZ_X=1\nexec /usr/bin/sleep \"$@\"\n")
	vars := writeScript(t, dir, "vars", "#!/bin/bash\nLIBDIR=/usr/bin\nBIN=\"$LIBDIR/sleep\"\nif [ -n \"$X\" ]; then exec env A=1 ${BIN} -x; fi\necho unreachable\n")
	chain := writeScript(t, dir, "chain", "#!/bin/sh\nexec "+plain+" \"$@\"\n")
	byName := writeScript(t, dir, "myapp", "#!/usr/bin/env python3\nprint('hi')\n")
	none := writeScript(t, dir, "none", "#!/bin/sh\nexec \"$0.real\" \"$@\"\n")
	running := &fakeHelper{snap: api.Snapshot{Apps: []api.App{{ID: "1000:/opt/my/myapp", Exe: "/opt/my/myapp", UID: 1000, PIDs: []int32{55}},
		{ID: "1001:/opt/other/myapp", Exe: "/opt/other/myapp", UID: 1001, PIDs: []int32{56}}}}}
	for _, c := range []struct {
		script string
		f      *fakeHelper
		want   string
	}{
		{plain, &fakeHelper{}, sleep}, {vars, &fakeHelper{}, sleep}, {chain, &fakeHelper{}, sleep}, {byName, running, "/opt/my/myapp"},
	} {
		// No terminal: exit 2, the program named.
		fakeSys(t, false, 1000, nil, nil)
		code, _, errOut := runCLI(t, c.f, "limit", "--app", c.script, "--up", "1MB/s")
		if code != 2 || !strings.Contains(errOut, "is a script run by") || !strings.Contains(errOut, "--app "+c.want) {
			t.Errorf("%s without a terminal: %d %q; want 2 naming %s", c.script, code, errOut, c.want)
		}
		// A terminal: Enter takes the first.
		c.f.calls = nil
		fakeSys(t, true, 1000, nil, strings.NewReader("\n"))
		code, out, errOut := runCLI(t, c.f, "limit", "--app", c.script, "--up", "1MB/s")
		if code != 0 || c.f.calls[len(c.f.calls)-1] != fmtCall("SetAppLimit", c.want, 1000, api.Limit{Up: 1_000_000, Traffic: "all"}) ||
			!strings.Contains(errOut, "limit which?") || !strings.Contains(out, "rule set for "+c.want) {
			t.Errorf("%s in a terminal: %d %v %q %q", c.script, code, c.f.calls, out, errOut)
		}
	}
	// n cancels (exit 1, nothing set); a script with nothing to offer: 2.
	f := &fakeHelper{}
	fakeSys(t, true, 1000, nil, strings.NewReader("n\n"))
	if code, _, errOut := runCLI(t, f, "limit", "--app", plain, "--up", "1"); code != 1 || !strings.Contains(errOut, "cancelled") || len(f.calls) != 1 {
		t.Errorf("cancel: %d %q %v", code, errOut, f.calls)
	}
	f = &fakeHelper{}
	if code, _, errOut := runCLI(t, f, "limit", "--app", none, "--up", "1"); code != 2 || !strings.Contains(errOut, "give the executable the script runs") {
		t.Errorf("unknown target: %d %q %v", code, errOut, f.calls)
	}
	// unlimit takes the script as given (an old rule on it can go), and a
	// binary is no script.
	f = &fakeHelper{}
	if code, _, _ := runCLI(t, f, "unlimit", "--app", plain); code != 0 || f.calls[0] != fmtCall("RemoveAppLimit", plain, 1000) {
		t.Errorf("unlimit a script: %d %v", code, f.calls)
	}
	if code, _, errOut := runCLI(t, &fakeHelper{}, "limit", "--app", "/usr/bin/sleep", "--up", "1"); code != 0 || errOut != "" {
		t.Errorf("binary: %d %q", code, errOut)
	}
}

// In a terminal a limiting call runs pkttyagent for this process first, as
// systemctl does; not for reading calls, root, remote hosts or without a
// terminal.
func TestTTYAgent(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	agent := writeScript(t, dir, "pkttyagent", "#!/bin/sh\necho \"$@ bus=$DBUS_SYSTEM_BUS_ADDRESS\" >> "+log+"\nexec 3>&-\nexec sleep 30\n")
	for _, c := range []struct {
		tty   bool
		uid   int
		args  []string
		agent bool
	}{
		{true, 1000, []string{"limit", "--pid", "5", "--up", "1"}, true},
		{true, 1000, []string{"limit", "--pid", "6", "--up", "1"}, true}, // in a login session: for it, as a fallback
		{true, 1000, []string{"--bus", "unix:path=/tmp/bus", "limit", "--app", "/usr/bin/sleep", "--up", "1"}, true},
		{true, 1000, []string{"unlimit", "--pid", "5"}, true},
		{true, 1000, []string{"pause"}, true},
		{true, 1000, []string{"resume"}, true},
		{true, 1000, []string{"top"}, false},
		{true, 1000, []string{"rules"}, false},
		{false, 1000, []string{"limit", "--pid", "5", "--up", "1"}, false},
		{true, 0, []string{"limit", "--pid", "5", "--up", "1"}, false},
		{true, 1000, []string{"-H", "box", "limit", "--pid", "5", "--up", "1"}, false},
	} {
		os.Remove(log)
		var env map[string]string
		if strings.Join(c.args, " ") == "limit --pid 6 --up 1" {
			env = map[string]string{"XDG_SESSION_ID": "3"}
		}
		fakeSys(t, c.tty, c.uid, env, nil)
		sys.ttyAgent = agent
		start := time.Now()
		code, _, errOut := runCLI(t, &fakeHelper{}, c.args...)
		b, _ := os.ReadFile(log)
		if code != 0 || (len(b) > 0) != c.agent {
			t.Errorf("%v (terminal %v, uid %d): %d %s; agent ran: %q, want %v", c.args, c.tty, c.uid, code, errOut, b, c.agent)
		}
		if c.agent {
			want := "--process " + strconv.Itoa(os.Getpid()) + " --notify-fd 3 bus="
			if env != nil {
				want = "--fallback --notify-fd 3 bus="
			}
			if strings.Contains(strings.Join(c.args, " "), "unix:") {
				want += "unix:path=/tmp/bus"
			}
			if strings.TrimSpace(string(b)) != strings.TrimSpace(want) {
				t.Errorf("agent arguments %q, want %q", b, want)
			}
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%v took %s: the agent was not stopped", c.args, d)
		}
	}
	if _, err := exec.LookPath("pkttyagent"); err != nil {
		t.Log("pkttyagent is not installed here (polkitd ships it)")
	}
}
