package server

import (
	"errors"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// History is what the server needs of the traffic history and the data
// quotas (helper/daemon/quota's Manager). Config.History nil means the
// helper has neither: the methods answer api.ErrUnavailable.
type History interface {
	// History returns the apps' bytes over [from, until) in buckets of by;
	// exe "" means all apps (of uid only, when only is set).
	History(c api.Caller, exe string, uid uint32, from, until time.Time, by string, only *uint32) ([]api.AppHistory, error)
	// Quotas returns every quota with its usage.
	Quotas() []api.Quota
	// SetQuota creates or replaces a quota, as c.
	SetQuota(c api.Caller, q api.Quota) error
	// RemoveQuota removes a quota, as c.
	RemoveQuota(c api.Caller, exe string, uid uint32) error
}

// historyMethods are the exported history and quota methods.
func (s *Server) historyMethods() []exported {
	return []exported{
		{api.MethodGetHistory, s.GetHistory, args(arg("exe", "s", "in"), arg("uid", "u", "in"), arg("from", "x", "in"),
			arg("until", "x", "in"), arg("by", "s", "in"), arg("apps", signatureOf([]api.AppHistory{}), "out"))},
		{api.MethodGetQuotas, s.GetQuotas, args(arg("quotas", signatureOf([]api.Quota{}), "out"))},
		{api.MethodSetQuota, s.SetQuota, args(arg("exe", "s", "in"), arg("uid", "u", "in"), arg("period", "s", "in"),
			arg("bytes", "t", "in"), arg("direction", "s", "in"), arg("action", "s", "in"), arg("rate", "t", "in"))},
		{api.MethodRemoveQuota, s.RemoveQuota, args(arg("exe", "s", "in"), arg("uid", "u", "in"))},
	}
}

var errNoHistory = errors.New("this helper keeps no traffic history (its database could not be opened; see its log)")

// historySlots bounds the history queries served at once.
var historySlots = make(chan struct{}, 2)

// GetHistory implements api.MethodGetHistory: monitor for one's own apps,
// manage for another uid's app; without manage "all apps" means the
// caller's own.
func (s *Server) GetHistory(msg dbus.Message, exe string, uid uint32, from, until int64, by string) (out []api.AppHistory, derr *dbus.Error) {
	defer s.guard(api.MethodGetHistory, &derr)
	c, done, derr := s.begin(msg)
	if derr != nil {
		return nil, derr
	}
	defer done()
	action := api.ActionMonitor
	if exe != "" && uid != c.uid {
		action = api.ActionManage
	}
	if derr := s.check(c, msg, action); derr != nil {
		return nil, derr
	}
	if s.history == nil {
		return nil, s.mapErr(api.WithKind(api.ErrNotHere, errNoHistory))
	}
	if exe != "" {
		if err := validExe(exe); err != nil {
			return nil, s.mapErr(err)
		}
	}
	f, u, err := validRange(from, until, by)
	if err != nil {
		return nil, s.mapErr(err)
	}
	var only *uint32
	admin := s.manages(c)
	if !admin {
		only = &c.uid
	}
	select {
	case historySlots <- struct{}{}:
		defer func() { <-historySlots }()
	case <-c.ctx.Done():
		return nil, s.fail(c.ctx.Err())
	case <-time.After(5 * time.Second):
		return nil, newError(api.ErrTooManyCalls, "the helper is busy with other history queries; try again")
	}
	out, err = s.history.History(api.Caller{UID: c.uid, Admin: admin}, exe, uid, f, u, by, only)
	if err != nil {
		return nil, s.mapErr(err)
	}
	for i := range out {
		out[i].Exe, out[i].Name = clean(out[i].Exe), clean(out[i].Name)
		if out[i].Buckets == nil {
			out[i].Buckets = []api.HistoryBucket{}
		}
	}
	if out == nil {
		out = []api.AppHistory{}
	}
	return out, nil
}

// validRange checks a history range and resolution: from before until,
// both between 2000 and 2200, at most api.MaxHistoryBuckets buckets.
func validRange(from, until int64, by string) (time.Time, time.Time, error) {
	var step int64
	switch by {
	case api.HistoryMinute:
		step = 60
	case api.HistoryHour:
		step = 3600
	case api.HistoryDay:
		step = 86400
	case api.HistoryMonth:
		step = 28 * 86400
	default:
		return time.Time{}, time.Time{}, invalid("resolution %q is not minute, hour, day or month", clipArg(by))
	}
	const lo, hi = 946684800, 7258118400 // 2000-01-01, 2200-01-01
	switch {
	case from < lo || from > hi || until < lo || until > hi:
		return time.Time{}, time.Time{}, invalid("range %d–%d is outside the years 2000–2200", from, until)
	case until <= from:
		return time.Time{}, time.Time{}, invalid("range ends (%d) before it starts (%d)", until, from)
	case (until-from)/step > api.MaxHistoryBuckets:
		return time.Time{}, time.Time{}, invalid("range of %d %ss is more than %d buckets: choose a coarser resolution", (until-from)/step, by, api.MaxHistoryBuckets)
	}
	return time.Unix(from, 0), time.Unix(until, 0), nil
}

func clipArg(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// GetQuotas implements api.MethodGetQuotas: a caller without manage sees
// its own quotas only.
func (s *Server) GetQuotas(msg dbus.Message) (qs []api.Quota, derr *dbus.Error) {
	defer s.guard(api.MethodGetQuotas, &derr)
	return query(s, msg, func(c caller) ([]api.Quota, *dbus.Error) {
		qs = []api.Quota{}
		if s.history == nil {
			return qs, nil
		}
		all := s.manages(c)
		for _, q := range s.history.Quotas() {
			if all || q.UID == c.uid {
				q.Exe = clean(q.Exe)
				qs = append(qs, q)
			}
		}
		return qs, nil
	})
}

// SetQuota implements api.MethodSetQuota: limit-own for the caller's own
// uid, manage for another uid or a quota an administrator set.
func (s *Server) SetQuota(msg dbus.Message, exe string, uid uint32, period string, bytes uint64, direction, action string, rate uint64) (derr *dbus.Error) {
	defer s.guard(api.MethodSetQuota, &derr)
	q := api.Quota{Exe: exe, UID: uid, Period: period, Bytes: bytes, Direction: direction, Action: action, Rate: rate}
	return s.ownerChange(msg, uidOwner(uid), s.quotaCheck(exe), func(ac api.Caller) error { return s.history.SetQuota(ac, q) })
}

// RemoveQuota implements api.MethodRemoveQuota.
func (s *Server) RemoveQuota(msg dbus.Message, exe string, uid uint32) (derr *dbus.Error) {
	defer s.guard(api.MethodRemoveQuota, &derr)
	return s.ownerChange(msg, uidOwner(uid), s.quotaCheck(exe), func(ac api.Caller) error { return s.history.RemoveQuota(ac, exe, uid) })
}

// quotaCheck checks a quota call's executable, and that there are quotas.
func (s *Server) quotaCheck(exe string) func() error {
	return func() error {
		if s.history == nil {
			return api.WithKind(api.ErrNotHere, errNoHistory)
		}
		return validExe(exe)
	}
}

// EmitChanged emits LimitsChanged: the quotas' states changed.
func (s *Server) EmitChanged() { s.emitChanged() }
