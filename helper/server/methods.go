package server

import (
	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The exported methods. Each first defers the panic guard, then authorizes;
// nothing else runs before authorization.

// GetStatus implements api.MethodGetStatus.
func (s *Server) GetStatus(msg dbus.Message) (st api.Status, derr *dbus.Error) {
	defer s.guard(api.MethodGetStatus, &derr)
	c, derr := s.authorize(msg, api.ActionMonitor, false)
	if derr != nil {
		return st, derr
	}
	return s.engine.Status(c.uid), nil
}

// GetPermissions implements api.MethodGetPermissions: polkit's answers for
// the caller, asked without interaction.
func (s *Server) GetPermissions(msg dbus.Message) (p api.Permissions, derr *dbus.Error) {
	defer s.guard(api.MethodGetPermissions, &derr)
	c, derr := s.begin(msg) // needs no action: it only tells the caller about itself
	if derr != nil {
		return p, derr
	}
	answer := func(action string) (string, *dbus.Error) {
		r, err := s.auth.Check(c.ctx, c.sender, action, false)
		switch {
		case err != nil:
			return "", s.fail(err)
		case r.Authorized:
			return api.PermYes, nil
		case r.Challenge:
			return api.PermAuth, nil
		}
		return api.PermNo, nil
	}
	if p.Monitor, derr = answer(api.ActionMonitor); derr != nil {
		return p, derr
	}
	if p.LimitOwn, derr = answer(api.ActionLimitOwn); derr != nil {
		return p, derr
	}
	if p.Manage, derr = answer(api.ActionManage); derr != nil {
		return p, derr
	}
	return p, nil
}

// ListBackends implements api.MethodListBackends.
func (s *Server) ListBackends(msg dbus.Message) (bs []api.Backend, derr *dbus.Error) {
	defer s.guard(api.MethodListBackends, &derr)
	if _, derr = s.authorize(msg, api.ActionMonitor, false); derr != nil {
		return nil, derr
	}
	bs = s.engine.Backends()
	if bs == nil {
		bs = []api.Backend{}
	}
	return bs, nil
}

// GetApps implements api.MethodGetApps.
func (s *Server) GetApps(msg dbus.Message) (snap api.Snapshot, derr *dbus.Error) {
	defer s.guard(api.MethodGetApps, &derr)
	if _, derr = s.authorize(msg, api.ActionMonitor, false); derr != nil {
		return snap, derr
	}
	return wireSnapshot(s.engine.Snapshot()), nil
}

// GetAppDetails implements api.MethodGetAppDetails.
func (s *Server) GetAppDetails(msg dbus.Message, appID string) (d api.AppDetails, derr *dbus.Error) {
	defer s.guard(api.MethodGetAppDetails, &derr)
	if _, derr = s.authorize(msg, api.ActionMonitor, false); derr != nil {
		return d, derr
	}
	if err := validAppID(appID); err != nil {
		return d, s.mapErr(err)
	}
	d, err := s.engine.AppDetails(appID)
	if err != nil {
		return api.AppDetails{}, s.mapErr(err)
	}
	return wireDetails(d), nil
}

// GetRules implements api.MethodGetRules.
func (s *Server) GetRules(msg dbus.Message) (rs []api.Rule, derr *dbus.Error) {
	defer s.guard(api.MethodGetRules, &derr)
	if _, derr = s.authorize(msg, api.ActionMonitor, false); derr != nil {
		return nil, derr
	}
	rs = s.engine.Rules()
	if rs == nil {
		rs = []api.Rule{}
	}
	return rs, nil
}

// SetAppLimit implements api.MethodSetAppLimit: limit-own for the caller's
// own uid, manage for another uid.
func (s *Server) SetAppLimit(msg dbus.Message, exe string, uid uint32, down, up uint64, traffic string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetAppLimit, &derr)
	if _, derr = s.authorizeOwner(msg, func() (uint32, error) { return uid, nil }); derr != nil {
		return derr
	}
	if err := validExe(exe); err != nil {
		return s.mapErr(err)
	}
	l, err := validLimit(down, up, traffic)
	if err != nil {
		return s.mapErr(err)
	}
	return s.mapErr(s.engine.SetAppLimit(exe, uid, l))
}

// RemoveAppLimit implements api.MethodRemoveAppLimit.
func (s *Server) RemoveAppLimit(msg dbus.Message, exe string, uid uint32) (derr *dbus.Error) {
	defer s.guard(api.MethodRemoveAppLimit, &derr)
	if _, derr = s.authorizeOwner(msg, func() (uint32, error) { return uid, nil }); derr != nil {
		return derr
	}
	if err := validExe(exe); err != nil {
		return s.mapErr(err)
	}
	return s.mapErr(s.engine.RemoveAppLimit(exe, uid))
}

// SetProcessLimit implements api.MethodSetProcessLimit: limit-own when the
// process belongs to the caller's uid, manage otherwise.
func (s *Server) SetProcessLimit(msg dbus.Message, pid uint32, down, up uint64, traffic string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetProcessLimit, &derr)
	if _, derr = s.authorizeOwner(msg, s.processOwner(pid)); derr != nil {
		return derr
	}
	l, err := validLimit(down, up, traffic)
	if err != nil {
		return s.mapErr(err)
	}
	return s.mapErr(s.engine.SetProcessLimit(int(pid), l))
}

// RemoveProcessLimit implements api.MethodRemoveProcessLimit.
func (s *Server) RemoveProcessLimit(msg dbus.Message, pid uint32) (derr *dbus.Error) {
	defer s.guard(api.MethodRemoveProcessLimit, &derr)
	if _, derr = s.authorizeOwner(msg, s.processOwner(pid)); derr != nil {
		return derr
	}
	return s.mapErr(s.engine.RemoveProcessLimit(int(pid)))
}

// SetPaused implements api.MethodSetPaused: a caller holding manage pauses
// everyone's limits, one holding limit-own only its own.
func (s *Server) SetPaused(msg dbus.Message, paused bool) (derr *dbus.Error) {
	defer s.guard(api.MethodSetPaused, &derr)
	c, derr := s.authorize(msg, api.ActionLimitOwn, true)
	if derr != nil {
		return derr
	}
	all := false
	if r, err := s.auth.Check(c.ctx, c.sender, api.ActionManage, false); err == nil && r.Authorized {
		all = true
	}
	return s.mapErr(s.engine.SetPaused(c.uid, all, paused))
}

func (s *Server) processOwner(pid uint32) func() (uint32, error) {
	return func() (uint32, error) {
		if err := validPID(pid); err != nil {
			return 0, err
		}
		return s.engine.ProcessUID(int(pid))
	}
}
