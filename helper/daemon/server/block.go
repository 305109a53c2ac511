package server

import (
	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// BlockEngine is the engine's blocking part (issue #16; see the BLOCK API
// in helper/daemon/engine).
type BlockEngine interface {
	// SetAppBlock blocks uid's app exe (traffic all, internet or local;
	// when a schedule), as c; part of its persisted rule.
	SetAppBlock(c api.Caller, exe string, uid uint32, traffic, when string) error
	// RemoveAppBlock lifts it, as c.
	RemoveAppBlock(c api.Caller, exe string, uid uint32) error
	// SetProcessBlock blocks one process (and its children), as c, at the
	// times when says; start is the start time the caller was authorized
	// for.
	SetProcessBlock(c api.Caller, pid int, start uint64, traffic, when string) error
	// RemoveProcessBlock lifts it, as c.
	RemoveProcessBlock(c api.Caller, pid int, start uint64) error
}

// validWhen checks a schedule's text.
func validWhen(when string) error {
	if len(when) > api.MaxScheduleLen {
		return invalid("schedule is %d bytes long (at most %d)", len(when), api.MaxScheduleLen)
	}
	if _, err := api.ParseSchedule(when); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// SetAppBlock implements api.MethodSetAppBlock: limit-own for the caller's
// own uid, manage for another uid or a rule an administrator set.
func (s *Server) SetAppBlock(msg dbus.Message, exe string, uid uint32, traffic, when string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetAppBlock, &derr)
	check := func() error {
		if err := validExe(exe); err != nil {
			return err
		}
		if err := validWhen(when); err != nil {
			return err
		}
		_, err := api.ValidateLimit(api.Limit{Block: orAll(traffic), BlockWhen: when})
		return err
	}
	return s.ownerChange(msg, uidOwner(uid), check, func(ac api.Caller) error {
		return s.engine.SetAppBlock(ac, exe, uid, traffic, when)
	})
}

// RemoveAppBlock implements api.MethodRemoveAppBlock.
func (s *Server) RemoveAppBlock(msg dbus.Message, exe string, uid uint32) (derr *dbus.Error) {
	defer s.guard(api.MethodRemoveAppBlock, &derr)
	return s.ownerChange(msg, uidOwner(uid), func() error { return validExe(exe) }, func(ac api.Caller) error {
		return s.engine.RemoveAppBlock(ac, exe, uid)
	})
}

// SetAppLimitWhen implements api.MethodSetAppLimitWhen: SetAppLimit with a
// schedule for the rates.
func (s *Server) SetAppLimitWhen(msg dbus.Message, exe string, uid uint32, down, up uint64, traffic, when string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetAppLimitWhen, &derr)
	var l api.Limit
	check := func() (err error) {
		if err = validExe(exe); err == nil {
			if err = validWhen(when); err == nil {
				l, err = validLimit(down, up, traffic)
				l.When = when
			}
		}
		return err
	}
	return s.ownerChange(msg, uidOwner(uid), check, func(ac api.Caller) error { return s.engine.SetAppLimit(ac, exe, uid, l) })
}

// SetProcessBlock implements api.MethodSetProcessBlock: limit-own when the
// process is the caller's, manage otherwise; bound to the process it was
// authorized for, like SetProcessLimit.
func (s *Server) SetProcessBlock(msg dbus.Message, pid uint32, traffic string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetProcessBlock, &derr)
	return s.setProcessBlock(msg, pid, traffic, "")
}

// SetProcessBlockWhen implements api.MethodSetProcessBlockWhen:
// SetProcessBlock with a schedule.
func (s *Server) SetProcessBlockWhen(msg dbus.Message, pid uint32, traffic, when string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetProcessBlockWhen, &derr)
	return s.setProcessBlock(msg, pid, traffic, when)
}

// SetProcessLimitWhen implements api.MethodSetProcessLimitWhen:
// SetProcessLimit with a schedule for the rates.
func (s *Server) SetProcessLimitWhen(msg dbus.Message, pid uint32, down, up uint64, traffic, when string) (derr *dbus.Error) {
	defer s.guard(api.MethodSetProcessLimitWhen, &derr)
	return s.setProcessLimit(msg, pid, down, up, traffic, when)
}

func (s *Server) setProcessBlock(msg dbus.Message, pid uint32, traffic, when string) *dbus.Error {
	var id processID
	check := func() error {
		if err := validWhen(when); err != nil {
			return err
		}
		if _, err := api.ValidateLimit(api.Limit{Block: orAll(traffic), BlockWhen: when}); err != nil {
			return err
		}
		return s.sameProcess(pid, id)
	}
	return s.ownerChange(msg, s.processOwner(pid, &id), check, func(ac api.Caller) error {
		return s.engine.SetProcessBlock(ac, int(pid), id.start, traffic, when)
	})
}

// RemoveProcessBlock implements api.MethodRemoveProcessBlock.
func (s *Server) RemoveProcessBlock(msg dbus.Message, pid uint32) (derr *dbus.Error) {
	defer s.guard(api.MethodRemoveProcessBlock, &derr)
	var id processID
	check := func() error { return s.sameProcess(pid, id) }
	return s.ownerChange(msg, s.processOwner(pid, &id), check, func(ac api.Caller) error {
		return s.engine.RemoveProcessBlock(ac, int(pid), id.start)
	})
}

// orAll is a block's traffic type: "" means all.
func orAll(traffic string) string {
	if traffic == "" {
		return api.TrafficAll
	}
	return traffic
}
