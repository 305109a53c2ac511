package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

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
func (f *fakeHelper) Rules(context.Context) ([]api.Rule, error) { return f.rules, f.rec("Rules") }
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
		{[]string{"limit", "--pid", "abc", "--up", "1"}, `--pid: "abc" is not a process id`},
		{[]string{"limit", "--pid", "99999999999", "--up", "1"}, "not a process id"},
		{[]string{"limit", "--pid", "1", "--pid", "2", "--up", "1"}, "--pid is given twice"},
		{[]string{"limit", "--pid"}, "--pid needs a value (N)"},
		{[]string{"limit", "--app", "", "--up", "1"}, "--app: needs an executable"},
		{[]string{"limit", "--app", "/bin/x", "--uid", "-1", "--up", "1"}, `--uid: "-1" is not a uid`},
		{[]string{"limit", "--app", "/bin/x", "--uid", "4294967295", "--up", "1"}, "is not a uid"},
		{[]string{"limit", "--app", "/bin/x", "--uid", "alice", "--up", "1"}, "is not a uid"},
		{[]string{"limit", "--app", "/bin/x", "--down", "-5"}, "--down"},
		{[]string{"limit", "--app", "/bin/x", "--up", "2000Gbit/s"}, "--up"},
		{[]string{"limit", "--app", "/bin/x", "--up", "1", "--json"}, "limit: unknown flag --json"},
		{[]string{"unlimit", "--pid", "3", "--down", "1"}, "unlimit: unknown flag --down"},
		{[]string{"unlimit"}, "exactly one of --pid"},
		{[]string{"unlimit", "--pid", "3", "--uid", "1"}, "--uid goes with --app"},
		{[]string{"--json", "top"}, "--json goes after the command"},
		{[]string{"top", "--json=yes"}, "--json takes no value"},
		{[]string{"top", "--interval", "2s"}, "--interval goes with --watch"},
		{[]string{"top", "--watch", "--interval", "5ms"}, "out of range"},
		{[]string{"top", "--watch", "--interval", "2h"}, "out of range"},
		{[]string{"top", "--watch", "--interval", "soon"}, "not a duration"},
		{[]string{"top", "--watch", "--json"}, "--watch shows a table"},
		{[]string{"top", "-x"}, "top: unknown flag -x"},
		{[]string{"details"}, "details: give APP"},
		{[]string{"details", "a", "b"}, `unexpected argument "b"`},
		{[]string{"details", "root:/bin/x"}, "not an app id"},
		{[]string{"completion"}, "completion: give SHELL"},
		{[]string{"completion", "tcsh"}, `"tcsh" is not bash, zsh, fish`},
		{[]string{"help", "frob"}, `help: unknown command "frob"`},
		{[]string{"version", "now"}, "unexpected argument"},
		{[]string{"pause", "--json"}, "pause: unknown flag --json"},
		{[]string{"resume", "all"}, "unexpected argument"},
		{[]string{"status", "--watch"}, "status: unknown flag --watch"},
		{[]string{"top", "--bus", "nonsense"}, "not system, session or a D-Bus address"},
		{[]string{"top", "--bus"}, "--bus needs a value"},
		{[]string{"rules", "--host", "a b"}, "not a host name"},
		{[]string{"limit", "--pid", "3", "--uid", "5", "--up", "1"}, "--uid goes with --app"},
		{[]string{"unlimit", "--app", "no-such-program-anywhere"}, "not found in PATH"},
		{[]string{"top", "extra"}, "unexpected argument"},
		{[]string{"--bogus", "top"}, "unknown flag --bogus"},
		{[]string{"limit", "--global", "--up", "1MB/s", "--when", "Mon-Fri 09:00-17:00"}, "--when does not go with --global"},
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
}

// --help of chadthrottlectl and of each command (also "help COMMAND", -h,
// and --help among mistakes) prints to stdout, exits 0 and calls nothing.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"--bogus", "--help"}} {
		f := &fakeHelper{}
		code, out, _ := runCLI(t, f, args...)
		if code != 0 || !strings.Contains(out, "usage: chadthrottlectl [--bus BUS]") || !strings.Contains(out, "5  helper unavailable") || len(f.calls) > 0 {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {"help", c.name}, {c.name, "-h"}, {"--bus", "session", c.name, "--nonsense", "--help"}} {
			f := &fakeHelper{}
			code, out, _ := runCLI(t, f, args...)
			if code != 0 || !strings.Contains(out, "usage: chadthrottlectl "+c.name) || len(f.calls) > 0 {
				t.Errorf("%v: %d %q", args, code, out)
			}
			for _, fl := range append(c.flags, globalFlags...) {
				if !strings.Contains(out, "--"+fl.name) {
					t.Errorf("%v does not mention --%s:\n%s", args, fl.name, out)
				}
			}
		}
	}
}

// Each kind of failure has its exit status.
func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
		msg  string
	}{
		{&client.Error{Name: api.ErrNotAuthorized, Message: "uid 1000: not authorized for io.github.chadthrottle.manage"}, 3, "not authorized: uid 1000"},
		{&client.Error{Name: api.ErrNotFound, Message: "no process 77"}, 4, "not found: no process 77"},
		{client.ErrHelperMissing, 5, "not running"},
		{fmt.Errorf("on box: %w", client.ErrHelperMissing), 5, "on box"},
		{&client.Error{Name: api.ErrInvalidArgument, Message: "path too long"}, 2, "invalid argument: path too long"},
		{&client.Error{Name: api.ErrFailed, Message: "tc said no"}, 1, "tc said no"},
		{&client.Error{Name: api.ErrQuotaExceeded, Message: "256 rules"}, 1, "quota exceeded: 256 rules"},
		{&client.Error{Name: api.ErrTooManyCalls, Message: "slow down"}, 1, "too many calls"},
		{&client.Error{Name: api.ErrUnavailable, Message: "no download backend"}, 1, "unavailable: no download backend"},
		{context.DeadlineExceeded, 1, "deadline"},
	} {
		for _, args := range [][]string{{"limit", "--pid", "1", "--up", "1KB/s"}, {"top"}, {"status"}, {"pause"}, {"details", "0:/x"}} {
			f := &fakeHelper{err: c.err}
			code, _, errOut := runCLI(t, f, args...)
			if code != c.code || !strings.Contains(errOut, c.msg) {
				t.Errorf("%v with %v: %d %q; want %d and %q", args, c.err, code, errOut, c.code, c.msg)
			}
		}
	}
	// The bus or the remote host cannot be reached: 5.
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"--bus", "unix:path=/nonexistent/bus", "top"}, &out, &errb, connect)
	if code != 5 || !strings.Contains(errb.String(), "/nonexistent/bus") {
		t.Errorf("no bus: %d %q", code, errb.String())
	}
	code = run(context.Background(), []string{"top"}, &out, &errb, func(target) (helper, error) {
		return nil, &client.RemoteError{Kind: client.ErrHostUnreachable}
	})
	if code != 5 {
		t.Errorf("host unreachable: %d", code)
	}
	// A name details cannot find: 4.
	code, _, errOut := runCLI(t, &fakeHelper{}, "details", "firefox")
	if code != 4 || !strings.Contains(errOut, `no running app "firefox"`) {
		t.Errorf("details of nothing: %d %q", code, errOut)
	}
}

// top --json has the contract's keys for each app, and the totals of the
// table's first line; the table shows what the JSON has.
func TestTopJSON(t *testing.T) {
	f := &fakeHelper{snap: api.Snapshot{Time: 1700000000000, RxRate: 600, TxRate: 5, RxBytes: 5000, TxBytes: 70, UnknownRate: 3, Apps: []api.App{
		{ID: "1000:/usr/bin/curl", Name: "curl", Exe: "/usr/bin/curl", UID: 1000, User: "alice", PIDs: []int32{7, 8},
			RxRate: 100, TxRate: 5, RxBytes: 1000, TxBytes: 50, Limit: api.Limit{Down: 300, Up: 0, Traffic: "internet"}, Rule: true},
		{ID: "0:/usr/sbin/sshd", Name: "sshd", Exe: "/usr/sbin/sshd", RxRate: 500},
		{ID: "1001:#0123456789abcdef", Name: "Firefox", UID: 1001, User: "bob", RxBytes: 9},
	}}}
	code, out, errOut := runCLI(t, f, "top", "--json")
	if code != 0 {
		t.Fatalf("top --json: %d %s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var top []string
	for k := range doc {
		top = append(top, k)
	}
	sort.Strings(top)
	if want := []string{"apps", "rx_bytes", "rx_rate", "time", "tx_bytes", "tx_rate", "unknown_rate"}; !reflect.DeepEqual(top, want) {
		t.Errorf("document keys %v, want %v", top, want)
	}
	if doc["rx_rate"].(float64) != 600 || doc["unknown_rate"].(float64) != 3 || doc["tx_bytes"].(float64) != 70 {
		t.Errorf("totals: %v", doc)
	}
	apps := doc["apps"].([]any)
	if len(apps) != 3 {
		t.Fatalf("apps %v", apps)
	}
	for _, x := range apps {
		a := x.(map[string]any)
		var keys []string
		for k := range a {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := []string{"exe", "id", "limit", "name", "pids", "rule", "rx_bytes", "rx_rate", "tx_bytes", "tx_rate", "uid", "user"}
		if !reflect.DeepEqual(keys, want) {
			t.Errorf("keys %v, want %v", keys, want)
		}
		lim := a["limit"].(map[string]any)
		if len(lim) != 3 || lim["down"] == nil || lim["up"] == nil || lim["traffic"] == nil {
			t.Errorf("limit %v, want down, up and traffic", lim)
		}
		if _, ok := a["pids"].([]any); !ok {
			t.Errorf("pids %v is not a list", a["pids"])
		}
	}
	// Sorted by current rate: sshd (500 B/s) first.
	first, second := apps[0].(map[string]any), apps[1].(map[string]any)
	if first["name"] != "sshd" || second["limit"].(map[string]any)["down"].(float64) != 300 ||
		second["limit"].(map[string]any)["traffic"] != "internet" || second["rule"] != true || second["uid"].(float64) != 1000 || second["user"] != "alice" {
		t.Errorf("order or values: %v", apps)
	}
	code, out, _ = runCLI(t, f, "top")
	for _, w := range []string{"curl (/usr/bin/curl)", "300 B/s internet (rule)", "7,8", "alice", "1000:/usr/bin/curl", "1001:#0123456789abcdef",
		"total: down 600 B/s, up 5 B/s (unattributed 3 B/s); since start: down 5 KB, up 70 B"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("top table has no %q:\n%s", w, out)
		}
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
	if code != 0 || !strings.Contains(out, "1.5 MB/s") || !strings.Contains(out, "unlimited") || !strings.Contains(out, "ADMIN") {
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
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // top --watch ends with it
		defer cancel()
		code := run(ctx, strings.Fields(line), &out, &errb, func(target) (helper, error) { return fh, nil })
		if code < 0 || code > 5 || code == 1 || code == 3 {
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
