package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// fakeHelper records the calls the commands make.
type fakeHelper struct {
	calls   []string
	snap    api.Snapshot
	rules   []api.Rule
	details api.AppDetails
	status  api.Status
	err     error

	target target // what the command dialled
}

func (f *fakeHelper) rec(s string) error { f.calls = append(f.calls, s); return f.err }
func (f *fakeHelper) Backends(context.Context) ([]api.Backend, error) {
	return []api.Backend{{Kind: "upload", Name: "tc_htb", Priority: 2, Available: true, Active: true},
		{Kind: "download", Name: "ifb_tc", Priority: 2, Reason: "no ifb"}}, f.rec("Backends")
}
func (f *fakeHelper) Apps(context.Context) (api.Snapshot, error) { return f.snap, f.rec("Apps") }
func (f *fakeHelper) AppDetails(_ context.Context, id string) (api.AppDetails, error) {
	return f.details, f.rec(fmtCall("AppDetails", id))
}
func (f *fakeHelper) Status(context.Context) (api.Status, error) { return f.status, f.rec("Status") }
func (f *fakeHelper) Permissions(context.Context) (api.Permissions, error) {
	return api.Permissions{Monitor: "yes", LimitOwn: "yes", Manage: "auth"}, f.rec("Permissions")
}
func (f *fakeHelper) SetPaused(_ context.Context, paused bool) error {
	return f.rec(fmtCall("SetPaused", paused))
}
func (f *fakeHelper) Rules(context.Context) ([]api.Rule, error)  { return f.rules, f.rec("Rules") }
func (f *fakeHelper) SetAppLimit(_ context.Context, exe string, uid uint32, l api.Limit) error {
	return f.rec(fmtCall("SetAppLimit", exe, uid, l))
}
func (f *fakeHelper) RemoveAppLimit(_ context.Context, exe string, uid uint32) error {
	return f.rec(fmtCall("RemoveAppLimit", exe, uid))
}
func (f *fakeHelper) SetProcessLimit(_ context.Context, pid int32, l api.Limit) error {
	return f.rec(fmtCall("SetProcessLimit", pid, l))
}
func (f *fakeHelper) RemoveProcessLimit(_ context.Context, pid int32) error {
	return f.rec(fmtCall("RemoveProcessLimit", pid))
}
func (f *fakeHelper) CallerUID(context.Context) (uint32, error) { return 4321, f.rec("CallerUID") }
func (f *fakeHelper) Close() error                              { return nil }

func fmtCall(name string, args ...any) string {
	b, _ := json.Marshal(args)
	return name + string(b)
}

func runCLI(t *testing.T, f *fakeHelper, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(tg target) (helper, error) { f.target = tg; return f, nil })
	return code, out.String(), errb.String()
}

func TestLimitCommands(t *testing.T) {
	uid := os.Getuid()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"limit", "--pid", "42", "--up", "500KB/s"}, fmtCall("SetProcessLimit", 42, api.Limit{Up: 500_000, Traffic: "all"})},
		{[]string{"limit", "--pid", "42", "--down", "8Mbit/s", "--up", "1MiB/s", "--traffic", "internet"},
			fmtCall("SetProcessLimit", 42, api.Limit{Down: 1_000_000, Up: 1 << 20, Traffic: "internet"})},
		{[]string{"--bus", "session", "limit", "--app", "/usr/bin/sleep", "--down", "1.5MB/s"},
			fmtCall("SetAppLimit", "/usr/bin/sleep", uid, api.Limit{Down: 1_500_000, Traffic: "all"})},
		{[]string{"limit", "--app", "sleep", "--uid", "1234", "--down", "100"},
			fmtCall("SetAppLimit", "/usr/bin/sleep", 1234, api.Limit{Down: 100, Traffic: "all"})},
		{[]string{"limit", "--pid", "42", "--down", "none", "--up", "0"}, fmtCall("RemoveProcessLimit", 42)},
		{[]string{"unlimit", "--pid", "42"}, fmtCall("RemoveProcessLimit", 42)},
		{[]string{"unlimit", "--app", "/opt/not/installed"}, fmtCall("RemoveAppLimit", "/opt/not/installed", uid)},
	} {
		f := &fakeHelper{}
		code, out, errOut := runCLI(t, f, c.args...)
		if code != 0 || len(f.calls) != 1 || f.calls[0] != c.want {
			t.Errorf("%v: code %d calls %v (%s%s), want %s", c.args, code, f.calls, out, errOut, c.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{nil, "no command"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"limit", "--up", "1KB/s"}, "exactly one of --pid"},
		{[]string{"limit", "--pid", "1", "--app", "/bin/x", "--up", "1"}, "exactly one of --pid"},
		{[]string{"limit", "--pid", "42"}, "give --down RATE and/or --up RATE"},
		{[]string{"limit", "--pid", "42", "--up", "5Mb/s"}, "ambiguous"},
		{[]string{"limit", "--pid", "42", "--up", "fast"}, "must start with a number"},
		{[]string{"limit", "--pid", "42", "--up", "1PB/s"}, "unknown unit"},
		{[]string{"limit", "--pid", "42", "--up", "1KB/s", "--traffic", "lan"}, "want all, internet or local"},
		{[]string{"limit", "--pid", "-3", "--up", "1"}, "not a process id"},
		{[]string{"limit", "--pid", "abc", "--up", "1"}, "invalid value"},
		{[]string{"limit", "--pid", "3", "--uid", "5", "--up", "1"}, "--uid goes with --app"},
		{[]string{"unlimit", "--app", "no-such-program-anywhere"}, "not found in PATH"},
		{[]string{"top", "extra"}, "unexpected argument"},
		{[]string{"--bogus", "top"}, "flag provided but not defined"},
	} {
		f := &fakeHelper{}
		code, _, errOut := runCLI(t, f, c.args...)
		if code != 2 || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: code %d, stderr %q; want 2 and %q", c.args, code, errOut, c.msg)
		}
		if len(f.calls) > 0 {
			t.Errorf("%v: called the helper on a usage error: %v", c.args, f.calls)
		}
	}
	code, out, _ := runCLI(t, &fakeHelper{}, "--help")
	if code != 0 || !strings.Contains(out, "usage: chadthrottlectl") {
		t.Errorf("--help: %d %q", code, out)
	}
}

func TestHelperErrors(t *testing.T) {
	f := &fakeHelper{err: &client.Error{Name: api.ErrNotAuthorized, Message: "uid 1000: not authorized for io.github.chadthrottle.manage"}}
	code, _, errOut := runCLI(t, f, "limit", "--pid", "1", "--up", "1KB/s")
	if code != 1 || !strings.Contains(errOut, "not authorized: uid 1000") {
		t.Errorf("not authorized: %d %q", code, errOut)
	}
	f = &fakeHelper{err: client.ErrHelperMissing}
	code, _, errOut = runCLI(t, f, "top")
	if code != 1 || !strings.Contains(errOut, "not running") {
		t.Errorf("helper missing: %d %q", code, errOut)
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), []string{"--bus", "nonsense", "top"}, &out, &errb, connect)
	if code != 1 || !strings.Contains(errb.String(), "not system, session or a D-Bus address") {
		t.Errorf("bad bus: %d %q", code, errb.String())
	}
	_ = errors.New
}

// top --json has exactly the contract's keys.
func TestTopJSON(t *testing.T) {
	f := &fakeHelper{snap: api.Snapshot{Apps: []api.App{
		{ID: "1000:/usr/bin/curl", Name: "curl", Exe: "/usr/bin/curl", UID: 1000, User: "alice", PIDs: []int32{7, 8},
			RxRate: 100, TxRate: 5, RxBytes: 1000, TxBytes: 50, Limit: api.Limit{Down: 300, Up: 0, Traffic: "internet"}, Rule: true},
		{ID: "0:/usr/sbin/sshd", Name: "sshd", Exe: "/usr/sbin/sshd", RxRate: 500},
	}}}
	code, out, errOut := runCLI(t, f, "top", "--json")
	if code != 0 {
		t.Fatalf("top --json: %d %s", code, errOut)
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != 1 || len(doc["apps"]) != 2 {
		t.Fatalf("document %v", doc)
	}
	for _, a := range doc["apps"] {
		var keys []string
		for k := range a {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := []string{"exe", "id", "limit", "name", "pids", "rx_bytes", "rx_rate", "tx_bytes", "tx_rate"}
		if !reflect.DeepEqual(keys, want) {
			t.Errorf("keys %v, want %v", keys, want)
		}
		lim := a["limit"].(map[string]any)
		if len(lim) != 2 || lim["down"] == nil || lim["up"] == nil {
			t.Errorf("limit %v, want exactly down and up", lim)
		}
		if _, ok := a["pids"].([]any); !ok {
			t.Errorf("pids %v is not a list", a["pids"])
		}
	}
	// Sorted by current rate: sshd (500 B/s) first.
	if doc["apps"][0]["name"] != "sshd" || doc["apps"][1]["limit"].(map[string]any)["down"].(float64) != 300 {
		t.Errorf("order or values: %v", doc["apps"])
	}
	code, out, _ = runCLI(t, f, "top")
	if code != 0 || !strings.Contains(out, "curl (/usr/bin/curl)") || !strings.Contains(out, "300 B/s (rule)") || !strings.Contains(out, "7,8") {
		t.Errorf("top table:\n%s", out)
	}
}

func TestBackendsAndRules(t *testing.T) {
	f := &fakeHelper{rules: []api.Rule{{Exe: "/usr/bin/curl", UID: 1000, Limit: api.Limit{Down: 1_500_000}}}}
	code, out, _ := runCLI(t, f, "backends")
	if code != 0 || !strings.Contains(out, "tc_htb") || !strings.Contains(out, "no ifb") {
		t.Errorf("backends:\n%s", out)
	}
	code, out, _ = runCLI(t, f, "backends", "--json")
	var bs struct{ Backends []map[string]any }
	if json.Unmarshal([]byte(out), &bs); code != 0 || len(bs.Backends) != 2 || len(bs.Backends[0]) != 6 {
		t.Errorf("backends --json: %s", out)
	}
	code, out, _ = runCLI(t, f, "rules")
	if code != 0 || !strings.Contains(out, "1.5 MB/s") || !strings.Contains(out, "unlimited") {
		t.Errorf("rules:\n%s", out)
	}
	code, out, _ = runCLI(t, f, "rules", "--json")
	var rs struct{ Rules []api.Rule }
	if json.Unmarshal([]byte(out), &rs); code != 0 || len(rs.Rules) != 1 || rs.Rules[0].Limit.Down != 1_500_000 {
		t.Errorf("rules --json: %s", out)
	}
}

// No command line makes the CLI panic or call the helper with an invalid
// limit.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{"top --json", "limit --pid 42 --up 500KB/s", "limit --app /usr/bin/x --down 8Mbit/s --traffic local",
		"unlimit --pid 0", "--bus session rules", "limit --pid 2147483648 --up 1", "backends --json extra"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fh := &fakeHelper{}
		var out, errb bytes.Buffer
		code := run(context.Background(), strings.Fields(line), &out, &errb, func(target) (helper, error) { return fh, nil })
		if code < 0 || code > 2 {
			t.Fatalf("exit code %d", code)
		}
		for _, c := range fh.calls {
			if strings.HasPrefix(c, "Set") {
				var args []json.RawMessage
				json.Unmarshal([]byte(c[strings.IndexByte(c, '['):]), &args)
				var l api.Limit
				json.Unmarshal(args[len(args)-1], &l)
				if l.Down > api.MaxRate || l.Up > api.MaxRate {
					t.Fatalf("limit above max: %s", c)
				}
			}
		}
	})
}

// -H/--host goes before or after the command; on a remote host --app is
// taken as the path there and the default --uid is the login user's there.
func TestHostFlag(t *testing.T) {
	for _, c := range []struct {
		args  []string
		want  target
		calls []string
	}{
		{[]string{"-H", "alice@box:2222", "rules"}, target{bus: "system", host: "alice@box:2222"}, []string{"Rules"}},
		{[]string{"rules", "--host", "box", "--bus", "unix:path=/run/x"}, target{bus: "unix:path=/run/x", host: "box"}, []string{"Rules"}},
		{[]string{"--bus", "session", "top", "-H", "[fd77::1]:22"}, target{bus: "session", host: "[fd77::1]:22"}, []string{"Apps"}},
		{[]string{"-H", "box", "limit", "--app", "/usr/bin/remote-only-app", "--up", "1MB/s"}, target{bus: "system", host: "box"},
			[]string{"CallerUID", fmtCall("SetAppLimit", "/usr/bin/remote-only-app", 4321, api.Limit{Up: 1_000_000, Traffic: "all"})}},
		{[]string{"-H", "box", "unlimit", "--app", "/usr/bin/x", "--uid", "7"}, target{bus: "system", host: "box"},
			[]string{fmtCall("RemoveAppLimit", "/usr/bin/x", 7)}},
		{[]string{"-H", "box", "limit", "--pid", "9", "--down", "1KB/s"}, target{bus: "system", host: "box"},
			[]string{fmtCall("SetProcessLimit", 9, api.Limit{Down: 1000, Traffic: "all"})}},
	} {
		f := &fakeHelper{}
		code, out, errOut := runCLI(t, f, c.args...)
		if code != 0 || f.target != c.want || !reflect.DeepEqual(f.calls, c.calls) {
			t.Errorf("%v: code %d target %+v calls %v (%s%s); want %+v %v", c.args, code, f.target, f.calls, out, errOut, c.want, c.calls)
		}
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-H", "box", "limit", "--app", "firefox", "--up", "1"}, "full path of the executable there"},
		{[]string{"-H", "box:http", "top"}, "port"},
		{[]string{"-H", "-oProxyCommand=x", "top"}, "not a host name"},
		{[]string{"-H", "a b", "top"}, "not a host name"},
	} {
		f := &fakeHelper{}
		code, _, errOut := runCLI(t, f, c.args...)
		if code != 2 || !strings.Contains(errOut, c.msg) || len(f.calls) > 0 {
			t.Errorf("%v: code %d, stderr %q, calls %v; want 2 and %q", c.args, code, errOut, f.calls, c.msg)
		}
	}
}
