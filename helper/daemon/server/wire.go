package server

import (
	"strings"
	"unicode/utf8"

	"github.com/godbus/dbus/v5/introspect"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// godbus refuses to send strings that are not valid UTF-8 (the caller would
// only see a timeout), and process names and command lines are whatever the
// process says. wire* make every string of a reply sendable and every slice
// non-nil.

func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", " "), "\ufffd")
}

func cleanApp(a api.App) bool {
	return clean(a.ID) == a.ID && clean(a.Name) == a.Name && clean(a.Exe) == a.Exe && clean(a.Icon) == a.Icon &&
		clean(a.User) == a.User && clean(a.Limit.Traffic) == a.Limit.Traffic && a.PIDs != nil
}

func wireApp(a api.App) api.App {
	a.ID, a.Name, a.Exe, a.Icon, a.User = clean(a.ID), clean(a.Name), clean(a.Exe), clean(a.Icon), clean(a.User)
	a.Limit.Traffic = clean(a.Limit.Traffic)
	if a.PIDs == nil {
		a.PIDs = []int32{}
	}
	return a
}

// wireSnapshot returns s itself when every string is sendable (the usual
// case: no copy), otherwise a cleaned copy; the engine's snapshot is never
// modified.
func wireSnapshot(s api.Snapshot) api.Snapshot {
	dirty := s.Apps == nil
	for i := range s.Apps {
		if !cleanApp(s.Apps[i]) {
			dirty = true
			break
		}
	}
	if !dirty {
		return s
	}
	apps := make([]api.App, len(s.Apps))
	for i, a := range s.Apps {
		apps[i] = wireApp(a)
	}
	s.Apps = apps
	return s
}

func wireDetails(d api.AppDetails) api.AppDetails {
	d.App = wireApp(d.App)
	ps := make([]api.Process, len(d.Processes))
	for i, p := range d.Processes {
		p.Comm, p.Cmdline, p.Limit.Traffic = clean(p.Comm), clean(p.Cmdline), clean(p.Limit.Traffic)
		ps[i] = p
	}
	d.Processes = ps
	cs := make([]api.Connection, len(d.Connections))
	for i, c := range d.Connections {
		c.Proto, c.Local, c.Remote, c.Traffic = clean(c.Proto), clean(c.Local), clean(c.Remote), clean(c.Traffic)
		cs[i] = c
	}
	d.Connections = cs
	if d.History == nil {
		d.History = []api.Sample{}
	}
	return d
}

// introspectNode describes the exported object for
// org.freedesktop.DBus.Introspectable.
func (s *Server) introspectNode() *introspect.Node {
	m, sig := method, signatureOf
	return &introspect.Node{
		Name: api.ObjectPath,
		Interfaces: []introspect.Interface{{
			Name: api.Interface,
			Methods: append([]introspect.Method{
				m(api.MethodGetStatus, arg("status", sig(api.Status{}), "out")),
				m(api.MethodGetPermissions, arg("permissions", sig(api.Permissions{}), "out")),
				m(api.MethodListBackends, arg("backends", sig([]api.Backend{}), "out")),
				m(api.MethodGetApps, arg("snapshot", sig(api.Snapshot{}), "out")),
				m(api.MethodGetAppDetails, arg("app_id", "s", "in"), arg("details", sig(api.AppDetails{}), "out")),
				m(api.MethodGetRules, arg("rules", sig([]api.Rule{}), "out")),
				m(api.MethodSetAppLimit, arg("exe", "s", "in"), arg("uid", "u", "in"), arg("down", "t", "in"), arg("up", "t", "in"), arg("traffic", "s", "in")),
				m(api.MethodRemoveAppLimit, arg("exe", "s", "in"), arg("uid", "u", "in")),
				m(api.MethodSetProcessLimit, arg("pid", "u", "in"), arg("down", "t", "in"), arg("up", "t", "in"), arg("traffic", "s", "in")),
				m(api.MethodRemoveProcessLimit, arg("pid", "u", "in")),
				m(api.MethodSetPaused, arg("paused", "b", "in")),
				m(api.MethodSetAppBlock, arg("exe", "s", "in"), arg("uid", "u", "in"), arg("traffic", "s", "in"), arg("when", "s", "in")),
				m(api.MethodRemoveAppBlock, arg("exe", "s", "in"), arg("uid", "u", "in")),
				m(api.MethodSetProcessBlock, arg("pid", "u", "in"), arg("traffic", "s", "in")),
				m(api.MethodRemoveProcessBlock, arg("pid", "u", "in")),
				m(api.MethodSetAppLimitWhen, arg("exe", "s", "in"), arg("uid", "u", "in"), arg("down", "t", "in"), arg("up", "t", "in"), arg("traffic", "s", "in"), arg("when", "s", "in")),
				m(api.MethodSetProcessLimitWhen, arg("pid", "u", "in"), arg("down", "t", "in"), arg("up", "t", "in"), arg("traffic", "s", "in"), arg("when", "s", "in")),
				m(api.MethodSetProcessBlockWhen, arg("pid", "u", "in"), arg("traffic", "s", "in"), arg("when", "s", "in")),
			}, groupIntrospection(s.groupMethods())...),
			Signals: []introspect.Signal{{Name: api.SignalLimitsChanged}},
		}},
	}
}

// method describes a method for introspection.
func method(name string, args ...introspect.Arg) introspect.Method {
	return introspect.Method{Name: name, Args: args}
}

// arg describes a method's argument: its name, D-Bus type and direction
// ("in", "out").
func arg(name, typ, dir string) introspect.Arg {
	return introspect.Arg{Name: name, Type: typ, Direction: dir}
}

// exported is an exported method of a group (history.go, global.go): its
// handler and its arguments for introspection.
type exported struct {
	name    string
	handler any
	args    []introspect.Arg
}

// groupMethods are the exported methods of the groups.
func (s *Server) groupMethods() []exported {
	return append(s.historyMethods(), s.globalMethods()...)
}

// groupIntrospection describes the methods es.
func groupIntrospection(es []exported) []introspect.Method {
	out := make([]introspect.Method, len(es))
	for i, e := range es {
		out[i] = method(e.name, e.args...)
	}
	return out
}

// args lists a method's arguments.
func args(as ...introspect.Arg) []introspect.Arg { return as }
