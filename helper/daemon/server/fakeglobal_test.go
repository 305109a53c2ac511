package server

import (
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The fake engine's global limit and priorities (global.go).

func (f *fakeEngine) GlobalLimit() api.GlobalLimit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.global
}

func (f *fakeEngine) SetGlobalLimit(c api.Caller, g api.GlobalLimit) error {
	f.record("SetGlobalLimit")
	if !c.Admin {
		return fmt.Errorf("%w: needs manage", api.ErrNeedsManage)
	}
	return f.edit(func() { f.global = g })
}

func (f *fakeEngine) RemoveGlobalLimit(c api.Caller) error {
	return f.SetGlobalLimit(c, api.GlobalLimit{})
}

func (f *fakeEngine) SetAppPriority(c api.Caller, exe string, uid uint32, priority string) error {
	f.record("SetAppPriority")
	return f.editRule(uid, exe, func(l *api.Limit) { l.Priority = priority })
}

// globalCalls are the global limit's rows of TestAuthorizationTable: the
// global limit needs manage; an app's priority limit-own for the caller's
// own apps, manage for others'.
func globalCalls(s *Server) (map[string]func(m dbus.Message) *dbus.Error, map[string]map[string]string) {
	calls := map[string]func(m dbus.Message) *dbus.Error{
		api.MethodGetGlobalLimit:    func(m dbus.Message) *dbus.Error { _, e := s.GetGlobalLimit(m); return e },
		api.MethodSetGlobalLimit:    func(m dbus.Message) *dbus.Error { return s.SetGlobalLimit(m, 10_000_000, 0, "") },
		api.MethodRemoveGlobalLimit: func(m dbus.Message) *dbus.Error { return s.RemoveGlobalLimit(m) },
		"SetAppPriority(own)":       func(m dbus.Message) *dbus.Error { return s.SetAppPriority(m, "/bin/own", uidOf(m), "high") },
		"SetAppPriority(other)": func(m dbus.Message) *dbus.Error {
			return s.SetAppPriority(m, "/bin/other", uidOf(m)+7, "low")
		},
	}
	want := map[string]map[string]string{
		api.MethodGetGlobalLimit: authOwn, api.MethodSetGlobalLimit: authManage, api.MethodRemoveGlobalLimit: authManage,
		"SetAppPriority(own)": authOwn, "SetAppPriority(other)": authManage,
	}
	return calls, want
}
