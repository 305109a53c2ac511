package server

import (
	"maps"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

const (
	rootSender  = ":1.1"
	aliceSender = ":1.2" // uid 1000: monitor + limit-own
	bobSender   = ":1.3" // uid 1001: nothing (challenge)
	carolSender = ":1.4" // uid 1002: everything but denied outright for manage
	alice, bob  = 1000, 1001
	carol       = 1002
	alicePID    = 4000
	bobPID      = 4001
)

// The rows of TestAuthorizationTable: sender → error name ("" allowed).
var (
	na = api.ErrNotAuthorized
	// authAll: every caller (it needs no action).
	authAll = map[string]string{rootSender: "", aliceSender: "", bobSender: "", carolSender: ""}
	// authOwn: the callers with monitor or limit-own.
	authOwn = map[string]string{rootSender: "", aliceSender: "", bobSender: na, carolSender: ""}
	// authAlices: alice's own things, by alice and managers only.
	authAlices = map[string]string{rootSender: "", aliceSender: "", bobSender: na, carolSender: na}
	// authManage: managers only.
	authManage = map[string]string{rootSender: "", aliceSender: na, bobSender: na, carolSender: na}
)

func newTestServer(t *testing.T) (*Server, *fakeEngine, *fakeAuth) {
	t.Helper()
	eng := newFakeEngine()
	eng.procs[alicePID] = alice
	eng.procs[bobPID] = bob
	auth := &fakeAuth{
		uids: map[string]uint32{rootSender: 0, aliceSender: alice, bobSender: bob, carolSender: carol},
		allow: map[uint32]map[string]bool{
			alice: {api.ActionMonitor: true, api.ActionLimitOwn: true},
			carol: {api.ActionMonitor: true, api.ActionLimitOwn: true, api.ActionManage: false},
		},
	}
	s, err := New(Config{Engine: eng, History: &fakeHistory{}, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	return s, eng, auth
}

func msgFrom(sender string, flags dbus.Flags) dbus.Message {
	return dbus.Message{Type: dbus.TypeMethodCall, Flags: flags, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldSender: dbus.MakeVariant(sender),
	}}
}

func errName(e *dbus.Error) string {
	if e == nil {
		return ""
	}
	return e.Name
}

// Every method, called by every kind of caller, answers as the contract
// says: reads need monitor; limits need limit-own for the caller's own uid
// and manage for another's.
func TestAuthorizationTable(t *testing.T) {
	s, _, _ := newTestServer(t)
	type call func(m dbus.Message) *dbus.Error
	calls := map[string]call{
		api.MethodGetStatus:      func(m dbus.Message) *dbus.Error { _, e := s.GetStatus(m); return e },
		api.MethodGetPermissions: func(m dbus.Message) *dbus.Error { _, e := s.GetPermissions(m); return e },
		api.MethodListBackends:   func(m dbus.Message) *dbus.Error { _, e := s.ListBackends(m); return e },
		api.MethodGetApps:        func(m dbus.Message) *dbus.Error { _, e := s.GetApps(m); return e },
		api.MethodGetAppDetails:  func(m dbus.Message) *dbus.Error { _, e := s.GetAppDetails(m, "1000:/bin/x"); return e },
		api.MethodGetRules:       func(m dbus.Message) *dbus.Error { _, e := s.GetRules(m); return e },
		"SetAppLimit(own)":       func(m dbus.Message) *dbus.Error { return s.SetAppLimit(m, "/bin/own", uidOf(m), 1000, 0, "") },
		"SetAppLimit(other)": func(m dbus.Message) *dbus.Error {
			return s.SetAppLimit(m, "/bin/other", uidOf(m)+7, 1000, 0, "")
		},
		"RemoveAppLimit(own)": func(m dbus.Message) *dbus.Error {
			s.SetAppLimit(msgFrom(rootSender, 0), "/bin/rm", uidOf(m), 1, 1, "")
			return s.RemoveAppLimit(m, "/bin/rm", uidOf(m))
		},
		"RemoveAppLimit(other)": func(m dbus.Message) *dbus.Error {
			s.SetAppLimit(msgFrom(rootSender, 0), "/bin/rm", uidOf(m)+7, 1, 1, "")
			return s.RemoveAppLimit(m, "/bin/rm", uidOf(m)+7)
		},
		"SetProcessLimit(alice's)":    func(m dbus.Message) *dbus.Error { return s.SetProcessLimit(m, alicePID, 0, 5000, "all") },
		"SetProcessLimit(bob's)":      func(m dbus.Message) *dbus.Error { return s.SetProcessLimit(m, bobPID, 0, 5000, "all") },
		"RemoveProcessLimit(alice's)": func(m dbus.Message) *dbus.Error { return s.RemoveProcessLimit(m, alicePID) },
		"RemoveProcessLimit(bob's)":   func(m dbus.Message) *dbus.Error { return s.RemoveProcessLimit(m, bobPID) },
		api.MethodSetPaused:           func(m dbus.Message) *dbus.Error { return s.SetPaused(m, true) },
		"SetAppBlock(own)":            func(m dbus.Message) *dbus.Error { return s.SetAppBlock(m, "/bin/own", uidOf(m), "all", "") },
		"SetAppBlock(other)":          func(m dbus.Message) *dbus.Error { return s.SetAppBlock(m, "/bin/other", uidOf(m)+7, "", "") },
		"RemoveAppBlock(own)":         func(m dbus.Message) *dbus.Error { return s.RemoveAppBlock(m, "/bin/own", uidOf(m)) },
		"RemoveAppBlock(other)":       func(m dbus.Message) *dbus.Error { return s.RemoveAppBlock(m, "/bin/other", uidOf(m)+7) },
		"SetProcessBlock(alice's)":    func(m dbus.Message) *dbus.Error { return s.SetProcessBlock(m, alicePID, "internet") },
		"SetProcessBlock(bob's)":      func(m dbus.Message) *dbus.Error { return s.SetProcessBlock(m, bobPID, "internet") },
		"RemoveProcessBlock(alice's)": func(m dbus.Message) *dbus.Error { return s.RemoveProcessBlock(m, alicePID) },
		"RemoveProcessBlock(bob's)":   func(m dbus.Message) *dbus.Error { return s.RemoveProcessBlock(m, bobPID) },
		"SetAppLimitWhen(own)": func(m dbus.Message) *dbus.Error {
			return s.SetAppLimitWhen(m, "/bin/own", uidOf(m), 1000, 0, "", "Mon-Fri 09:00-17:00")
		},
		"SetAppLimitWhen(other)": func(m dbus.Message) *dbus.Error {
			return s.SetAppLimitWhen(m, "/bin/other", uidOf(m)+7, 1000, 0, "", "")
		},
	}
	want := map[string]map[string]string{ // method → sender → error name ("" ok)
		api.MethodGetStatus:           authOwn,
		api.MethodGetPermissions:      authAll,
		api.MethodListBackends:        authOwn,
		api.MethodGetApps:             authOwn,
		api.MethodGetAppDetails:       authAlices, // alice's app by its real id: only alice and managers
		api.MethodGetRules:            authOwn,
		"SetAppLimit(own)":            authOwn,
		"SetAppLimit(other)":          authManage,
		"RemoveAppLimit(own)":         authOwn,
		"RemoveAppLimit(other)":       authManage,
		"SetProcessLimit(alice's)":    authAlices,
		"SetProcessLimit(bob's)":      authManage,
		"RemoveProcessLimit(alice's)": authAlices,
		"RemoveProcessLimit(bob's)":   authManage,
		api.MethodSetPaused:           authOwn,
		"SetAppBlock(own)":            authOwn,
		"SetAppBlock(other)":          authManage,
		"RemoveAppBlock(own)":         authOwn,
		"RemoveAppBlock(other)":       authManage,
		"SetProcessBlock(alice's)":    authAlices,
		"SetProcessBlock(bob's)":      authManage,
		"RemoveProcessBlock(alice's)": authAlices,
		"RemoveProcessBlock(bob's)":   authManage,
		"SetAppLimitWhen(own)":        authOwn,
		"SetAppLimitWhen(other)":      authManage,
	}
	// The process methods with a schedule authorize like those without.
	for who, pid := range map[string]uint32{"alice's": alicePID, "bob's": bobPID} {
		calls["SetProcessLimitWhen("+who+")"] = func(m dbus.Message) *dbus.Error {
			return s.SetProcessLimitWhen(m, pid, 0, 5000, "all", "Mon-Fri 09:00-17:00")
		}
		calls["SetProcessBlockWhen("+who+")"] = func(m dbus.Message) *dbus.Error {
			return s.SetProcessBlockWhen(m, pid, "all", "Sat+Sun 00:00-24:00")
		}
		want["SetProcessLimitWhen("+who+")"] = want["SetProcessLimit("+who+")"]
		want["SetProcessBlockWhen("+who+")"] = want["SetProcessBlock("+who+")"]
	}
	hcalls, hwant := historyCalls(s)
	gcalls, gwant := globalCalls(s)
	maps.Copy(hcalls, gcalls)
	maps.Copy(hwant, gwant)
	for k, c := range hcalls {
		calls[k] = c
	}
	for k, w := range hwant {
		want[k] = w
	}
	for name, c := range calls {
		for sender, w := range want[name] {
			got := errName(c(msgFrom(sender, 0)))
			if got != w {
				t.Errorf("%s by %s: error %q, want %q", name, sender, got, w)
			}
		}
	}
	if len(want) != len(calls) {
		t.Fatalf("table covers %d of %d calls", len(want), len(calls))
	}
	// Every method of the contract is in the table.
	for _, m := range api.Methods {
		found := false
		for name := range calls {
			if strings.HasPrefix(name, m.Name) {
				found = true
			}
		}
		if !found {
			t.Errorf("method %s is not in the authorization table", m.Name)
		}
	}
}

var senderUIDs = map[string]uint32{rootSender: 0, aliceSender: alice, bobSender: bob, carolSender: carol}

func uidOf(m dbus.Message) uint32 {
	s, _ := m.Headers[dbus.FieldSender].Value().(string)
	return senderUIDs[s]
}

// Authorization runs before the engine sees anything: a refused caller
// causes no engine call, and learns nothing about a pid.
func TestAuthorizeFirst(t *testing.T) {
	s, eng, auth := newTestServer(t)
	if e := s.SetProcessLimit(msgFrom(bobSender, 0), 99999, 0, 100, ""); errName(e) != api.ErrNotAuthorized {
		t.Fatalf("unauthorized caller on a missing pid: %v, want NotAuthorized", e)
	}
	if e := s.SetAppLimit(msgFrom(bobSender, 0), "relative", bob, 0, 100, "bogus"); errName(e) != api.ErrNotAuthorized {
		t.Fatalf("unauthorized caller with bad arguments: %v, want NotAuthorized", e)
	}
	for _, c := range eng.calls {
		if c != "ProcessIdentity" { // read to choose the action to ask for, never revealed
			t.Errorf("engine saw %s from an unauthorized caller", c)
		}
	}
	// polkit may interact only when the message allows it (the client
	// sets the flag on limiting calls).
	auth.asked = nil
	s.GetApps(msgFrom(bobSender, 0))
	s.GetApps(msgFrom(bobSender, dbus.FlagAllowInteractiveAuthorization))
	s.SetAppLimit(msgFrom(bobSender, 0), "/bin/x", bob, 1, 1, "")
	s.SetAppLimit(msgFrom(bobSender, dbus.FlagAllowInteractiveAuthorization), "/bin/x", bob, 1, 1, "")
	want := []string{api.ActionMonitor + "/false", api.ActionMonitor + "/true", api.ActionLimitOwn + "/false", api.ActionLimitOwn + "/true"}
	if strings.Join(auth.asked, " ") != strings.Join(want, " ") {
		t.Errorf("polkit was asked %v, want %v", auth.asked, want)
	}
	// GetPermissions never asks interactively.
	auth.asked = nil
	p, e := s.GetPermissions(msgFrom(carolSender, dbus.FlagAllowInteractiveAuthorization))
	if e != nil || p != (api.Permissions{Monitor: api.PermYes, LimitOwn: api.PermYes, Manage: api.PermNo}) {
		t.Errorf("carol's permissions: %+v %v", p, e)
	}
	p, _ = s.GetPermissions(msgFrom(bobSender, 0))
	if p != (api.Permissions{Monitor: api.PermAuth, LimitOwn: api.PermAuth, Manage: api.PermAuth}) {
		t.Errorf("bob's permissions: %+v", p)
	}
	for _, a := range auth.asked {
		if strings.HasSuffix(a, "/true") {
			t.Errorf("GetPermissions asked interactively: %s", a)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	s, _, _ := newTestServer(t)
	root := msgFrom(rootSender, 0)
	for _, c := range []struct {
		name string
		err  *dbus.Error
		want string
	}{
		{"engine invalid", s.SetAppLimit(root, "/bin/invalid", 0, 1, 1, ""), api.ErrInvalidArgument},
		{"download unavailable", s.SetAppLimit(root, "/bin/nodown", 0, 1, 1, ""), api.ErrUnavailable},
		{"no such rule", s.RemoveAppLimit(root, "/bin/never", 0), api.ErrNotFound},
		{"no such process", s.SetProcessLimit(root, 77777, 1, 1, ""), api.ErrNotFound},
		{"pid 0", s.SetProcessLimit(root, 0, 1, 1, ""), api.ErrInvalidArgument},
		{"huge pid", s.RemoveProcessLimit(root, 1<<31), api.ErrInvalidArgument},
		{"rate above max", s.SetProcessLimit(root, alicePID, api.MaxRate+1, 0, ""), api.ErrInvalidArgument},
		{"traffic", s.SetProcessLimit(root, alicePID, 1, 0, "dark"), api.ErrInvalidArgument},
		{"relative exe", s.SetAppLimit(root, "bin/x", 0, 1, 1, ""), api.ErrInvalidArgument},
		{"empty exe", s.RemoveAppLimit(root, "", 0), api.ErrInvalidArgument},
		{"long exe", s.SetAppLimit(root, "/"+strings.Repeat("x", 5000), 0, 1, 1, ""), api.ErrInvalidArgument},
		{"nul exe", s.SetAppLimit(root, "/bin/a\x00b", 0, 1, 1, ""), api.ErrInvalidArgument},
		{"bad utf8 exe", s.SetAppLimit(root, "/bin/\xff", 0, 1, 1, ""), api.ErrInvalidArgument},
		{"bad app id", func() *dbus.Error { _, e := s.GetAppDetails(root, "firefox"); return e }(), api.ErrInvalidArgument},
		{"missing app", func() *dbus.Error { _, e := s.GetAppDetails(root, "0:/bin/none"); return e }(), api.ErrNotFound},
	} {
		if got := errName(c.err); got != c.want {
			t.Errorf("%s: %v, want %s", c.name, c.err, c.want)
		}
	}
}

func TestPanicBecomesFailed(t *testing.T) {
	s, eng, _ := newTestServer(t)
	eng.panicOn = "Snapshot"
	_, e := s.GetApps(msgFrom(rootSender, 0))
	if errName(e) != api.ErrFailed || !strings.Contains(e.Error(), "panics") {
		t.Fatalf("panic: %v, want Failed", e)
	}
	eng.panicOn = ""
	if _, e := s.GetApps(msgFrom(rootSender, 0)); e != nil {
		t.Fatalf("after a panic: %v", e)
	}
}

// Replies carry only valid UTF-8 (godbus cannot send anything else).
func TestRepliesAreValidUTF8(t *testing.T) {
	s, _, _ := newTestServer(t)
	snap, e := s.GetApps(msgFrom(rootSender, 0))
	if e != nil {
		t.Fatal(e)
	}
	for _, a := range snap.Apps {
		if !validUTF8(a.Name) {
			t.Errorf("app name %q", a.Name)
		}
	}
	d, _ := s.GetAppDetails(msgFrom(rootSender, 0), "0:/bin/x")
	if strings.Contains(d.Processes[0].Cmdline, "\x00") || d.History == nil || d.Connections == nil {
		t.Errorf("details not cleaned: %+v", d)
	}
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "?") == s }

func TestMaxRateMatchesBackends(t *testing.T) {
	if api.MaxRate != uint64(backends.MaxRate) {
		t.Fatalf("api.MaxRate %d != backends.MaxRate %d", api.MaxRate, backends.MaxRate)
	}
}

// The helper never panics on a caller's input, whatever the arguments.
func FuzzMethods(f *testing.F) {
	f.Add("/usr/bin/firefox", uint32(1000), uint64(1000), uint64(0), "all", uint32(4000), "1000:/usr/bin/firefox")
	f.Add("", uint32(0), uint64(1<<63), uint64(1<<40), "internet", uint32(0), "")
	f.Add("[kworker]", uint32(1001), uint64(0), uint64(0), "\xff", uint32(1<<31), "x:y")
	f.Fuzz(func(t *testing.T, exe string, uid uint32, down, up uint64, traffic string, pid uint32, appID string) {
		s, _, _ := newTestServer(t)
		for _, sender := range []string{rootSender, aliceSender, bobSender} {
			m := msgFrom(sender, 0)
			check := func(e *dbus.Error) {
				if e != nil && !strings.HasPrefix(e.Name, "io.github.chadthrottle.Error.") {
					t.Fatalf("error name %q", e.Name)
				}
				if e != nil && e.Name == api.ErrFailed {
					t.Fatalf("input caused Failed: %v", e)
				}
			}
			check(s.SetAppLimit(m, exe, uid, down, up, traffic))
			check(s.RemoveAppLimit(m, exe, uid))
			check(s.SetProcessLimit(m, pid, down, up, traffic))
			check(s.RemoveProcessLimit(m, pid))
			_, e := s.GetAppDetails(m, appID)
			check(e)
		}
	})
}
