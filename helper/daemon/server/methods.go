package server

import (
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The exported methods. Each first defers the panic guard, then authorizes;
// nothing else runs before authorization.

// query is the shape of a question: authorize msg with monitor, then
// answer with fn for the caller.
func query[T any](s *Server, msg dbus.Message, fn func(c caller) (T, *dbus.Error)) (T, *dbus.Error) {
	c, done, derr := s.authorize(msg, api.ActionMonitor)
	if derr != nil {
		var none T
		return none, derr
	}
	defer done()
	return fn(c)
}

// GetStatus implements api.MethodGetStatus.
func (s *Server) GetStatus(msg dbus.Message) (st api.Status, derr *dbus.Error) {
	defer s.guard(api.MethodGetStatus, &derr)
	return query(s, msg, func(c caller) (api.Status, *dbus.Error) { return s.engine.Status(c.uid), nil })
}

// GetPermissions implements api.MethodGetPermissions: polkit's answers for
// the caller, asked without interaction.
func (s *Server) GetPermissions(msg dbus.Message) (p api.Permissions, derr *dbus.Error) {
	defer s.guard(api.MethodGetPermissions, &derr)
	c, done, derr := s.begin(msg) // needs no action: it only tells the caller about itself
	if derr != nil {
		return p, derr
	}
	defer done()
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
	return query(s, msg, func(caller) ([]api.Backend, *dbus.Error) {
		bs = s.engine.Backends()
		if bs == nil {
			bs = []api.Backend{}
		}
		return bs, nil
	})
}

// GetApps implements api.MethodGetApps: other users' apps redacted for a
// caller without manage.
func (s *Server) GetApps(msg dbus.Message) (snap api.Snapshot, derr *dbus.Error) {
	defer s.guard(api.MethodGetApps, &derr)
	return query(s, msg, func(c caller) (api.Snapshot, *dbus.Error) {
		snap = s.engine.Snapshot()
		if !s.manages(c) {
			snap = redactSnapshot(snap, c.uid)
		}
		return wireSnapshot(snap), nil
	})
}

// GetAppDetails implements api.MethodGetAppDetails: for a caller without
// manage, another user's app (named by its hidden id) shows its traffic
// history only.
func (s *Server) GetAppDetails(msg dbus.Message, appID string) (d api.AppDetails, derr *dbus.Error) {
	defer s.guard(api.MethodGetAppDetails, &derr)
	return query(s, msg, func(c caller) (api.AppDetails, *dbus.Error) { return s.appDetails(c, appID) })
}

// appDetails answers GetAppDetails for an authorized caller.
func (s *Server) appDetails(c caller, appID string) (d api.AppDetails, derr *dbus.Error) {
	if err := validAppID(appID); err != nil {
		return d, s.mapErr(err)
	}
	id, redact, err := resolveAppID(appID, c.uid, s.manages(c), s.engine.Snapshot())
	if err != nil {
		return d, s.mapErr(err)
	}
	d, err = s.engine.AppDetails(id)
	if err != nil {
		return api.AppDetails{}, s.mapErr(err)
	}
	if redact {
		d = api.AppDetails{App: redactApp(d.App), History: d.History}
	}
	return wireDetails(d), nil
}

// GetRules implements api.MethodGetRules: a caller without manage sees its
// own rules only.
func (s *Server) GetRules(msg dbus.Message) (rs []api.Rule, derr *dbus.Error) {
	defer s.guard(api.MethodGetRules, &derr)
	return query(s, msg, func(c caller) ([]api.Rule, *dbus.Error) {
		all := s.manages(c)
		rs = []api.Rule{}
		for _, r := range s.engine.Rules() {
			if all || r.UID == c.uid {
				rs = append(rs, r)
			}
		}
		return rs, nil
	})
}

// SetAppLimit implements api.MethodSetAppLimit: limit-own for the caller's
// own uid, manage for another uid or a rule an administrator set.
func (s *Server) SetAppLimit(msg dbus.Message, exe string, uid uint32, down, up uint64, traffic string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetAppLimit, &derr)
	var l api.Limit
	return s.ownerChange(msg, uidOwner(uid), func() (err error) {
		if err = validExe(exe); err == nil {
			l, err = validLimit(down, up, traffic)
		}
		return err
	}, func(ac api.Caller) error { return s.engine.SetAppLimit(ac, exe, uid, l) })
}

// RemoveAppLimit implements api.MethodRemoveAppLimit.
func (s *Server) RemoveAppLimit(msg dbus.Message, exe string, uid uint32) (derr *dbus.Error) {
	defer s.guard(api.MethodRemoveAppLimit, &derr)
	return s.ownerChange(msg, uidOwner(uid), func() error { return validExe(exe) },
		func(ac api.Caller) error { return s.engine.RemoveAppLimit(ac, exe, uid) })
}

// SetProcessLimit implements api.MethodSetProcessLimit: limit-own when the
// process belongs to the caller's uid, manage otherwise. The authorization
// is bound to the process it was given for: its start time and owner are
// read before polkit is asked and compared after the answer, and the
// engine acts only on a process with that start time.
func (s *Server) SetProcessLimit(msg dbus.Message, pid uint32, down, up uint64, traffic string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetProcessLimit, &derr)
	return s.setProcessLimit(msg, pid, down, up, traffic, "")
}

// setProcessLimit is SetProcessLimit with a schedule for the rates.
func (s *Server) setProcessLimit(msg dbus.Message, pid uint32, down, up uint64, traffic, when string) *dbus.Error {
	var id processID
	var l api.Limit
	return s.ownerChange(msg, s.processOwner(pid, &id), func() (err error) {
		if err = validWhen(when); err == nil {
			l, err = validLimit(down, up, traffic)
			l.When = when
		}
		if err == nil {
			err = s.sameProcess(pid, id)
		}
		return err
	}, func(ac api.Caller) error { return s.engine.SetProcessLimit(ac, int(pid), id.start, l) })
}

// RemoveProcessLimit implements api.MethodRemoveProcessLimit.
func (s *Server) RemoveProcessLimit(msg dbus.Message, pid uint32) (derr *dbus.Error) {
	defer s.guard(api.MethodRemoveProcessLimit, &derr)
	var id processID
	return s.ownerChange(msg, s.processOwner(pid, &id), func() error { return s.sameProcess(pid, id) },
		func(ac api.Caller) error { return s.engine.RemoveProcessLimit(ac, int(pid), id.start) })
}

// SetPaused implements api.MethodSetPaused: a caller holding manage pauses
// everyone's limits, one holding limit-own only its own (and not those an
// administrator set).
func (s *Server) SetPaused(msg dbus.Message, paused bool) (derr *dbus.Error) {
	defer s.guard(api.MethodSetPaused, &derr)
	c, done, derr := s.authorize(msg, api.ActionLimitOwn)
	if derr != nil {
		return derr
	}
	defer done()
	all := s.manages(c)
	if c.ctx.Err() != nil {
		return s.fail(c.ctx.Err())
	}
	return s.mapErr(s.engine.SetPaused(c.uid, all, paused))
}

// processID is what a call read of a process before asking polkit.
type processID struct {
	owner uint32
	start uint64
}

func (s *Server) processOwner(pid uint32, id *processID) func() (uint32, error) {
	return func() (uint32, error) {
		if err := validPID(pid); err != nil {
			return 0, err
		}
		owner, start, err := s.engine.ProcessIdentity(int(pid))
		*id = processID{owner, start}
		return owner, err
	}
}

// sameProcess checks, after polkit answered, that pid is still the process
// (same start time, same owner) the answer was for.
func (s *Server) sameProcess(pid uint32, id processID) error {
	owner, start, err := s.engine.ProcessIdentity(int(pid))
	if err != nil {
		return err
	}
	if start != id.start || owner != id.owner {
		return fmt.Errorf("%w: process %d exited or changed its owner while the call was authorized", errNotFound, pid)
	}
	return nil
}
