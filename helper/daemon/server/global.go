package server

import (
	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// GlobalEngine is the engine's global limit and priorities (issue #16; see
// the GLOBAL API in helper/daemon/engine).
type GlobalEngine interface {
	// GlobalLimit returns the global limit in force.
	GlobalLimit() api.GlobalLimit
	// SetGlobalLimit sets it (zero removes it), as c (an administrator).
	SetGlobalLimit(c api.Caller, g api.GlobalLimit) error
	// RemoveGlobalLimit removes it, as c.
	RemoveGlobalLimit(c api.Caller) error
	// SetAppPriority sets uid's app exe's priority, as c; part of its rule.
	SetAppPriority(c api.Caller, exe string, uid uint32, priority string) error
}

// globalMethods are the exported global limit methods.
func (s *Server) globalMethods() []exported {
	return []exported{
		{api.MethodGetGlobalLimit, s.GetGlobalLimit, args(arg("limit", signatureOf(api.GlobalLimit{}), "out"))},
		{api.MethodSetGlobalLimit, s.SetGlobalLimit, args(arg("down", "t", "in"), arg("up", "t", "in"), arg("iface", "s", "in"))},
		{api.MethodRemoveGlobalLimit, s.RemoveGlobalLimit, nil},
		{api.MethodSetAppPriority, s.SetAppPriority, args(arg("exe", "s", "in"), arg("uid", "u", "in"), arg("priority", "s", "in"))},
	}
}

// GetGlobalLimit implements api.MethodGetGlobalLimit.
func (s *Server) GetGlobalLimit(msg dbus.Message) (g api.GlobalLimit, derr *dbus.Error) {
	defer s.guard(api.MethodGetGlobalLimit, &derr)
	return query(s, msg, func(caller) (api.GlobalLimit, *dbus.Error) { return s.engine.GlobalLimit(), nil })
}

// SetGlobalLimit implements api.MethodSetGlobalLimit: manage.
func (s *Server) SetGlobalLimit(msg dbus.Message, down, up uint64, iface string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetGlobalLimit, &derr)
	return s.manageChange(msg, func(ac api.Caller) error {
		g, err := api.ValidateGlobalLimit(api.GlobalLimit{Down: down, Up: up, Interface: iface})
		if err != nil {
			return err
		}
		return s.engine.SetGlobalLimit(ac, g)
	})
}

// RemoveGlobalLimit implements api.MethodRemoveGlobalLimit: manage.
func (s *Server) RemoveGlobalLimit(msg dbus.Message) (derr *dbus.Error) {
	defer s.guard(api.MethodRemoveGlobalLimit, &derr)
	return s.manageChange(msg, s.engine.RemoveGlobalLimit)
}

// manageChange authorizes msg with manage and runs fn as an administrator.
func (s *Server) manageChange(msg dbus.Message, fn func(api.Caller) error) *dbus.Error {
	c, done, derr := s.authorize(msg, api.ActionManage)
	if derr != nil {
		return derr
	}
	defer done()
	return s.change(c, msg, true, fn)
}

// SetAppPriority implements api.MethodSetAppPriority: limit-own for the
// caller's own uid, manage for another uid or a rule an administrator set.
func (s *Server) SetAppPriority(msg dbus.Message, exe string, uid uint32, priority string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetAppPriority, &derr)
	check := func() error {
		if err := validExe(exe); err != nil {
			return err
		}
		_, err := api.NormalPriority(priority)
		return err
	}
	return s.ownerChange(msg, uidOwner(uid), check, func(ac api.Caller) error {
		return s.engine.SetAppPriority(ac, exe, uid, priority)
	})
}
