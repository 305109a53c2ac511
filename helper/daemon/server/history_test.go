package server

import (
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// fakeHistory serves the history and quota methods in unit tests of the
// server's authorization; the real one is tested in cmd/chadthrottle-helper.
type fakeHistory struct{ quotas []api.Quota }

func (f *fakeHistory) History(c api.Caller, exe string, uid uint32, from, until time.Time, by string, only *uint32) ([]api.AppHistory, error) {
	return nil, nil
}
func (f *fakeHistory) Quotas() []api.Quota                      { return f.quotas }
func (f *fakeHistory) SetQuota(c api.Caller, q api.Quota) error { return nil }
func (f *fakeHistory) RemoveQuota(c api.Caller, exe string, uid uint32) error {
	return nil
}

// historyCalls are the history and quota rows of TestAuthorizationTable:
// history of one's own apps with monitor, another uid's with manage;
// quotas like limits.
func historyCalls(s *Server) (map[string]func(m dbus.Message) *dbus.Error, map[string]map[string]string) {
	now := time.Now().Unix()
	quota := func(m dbus.Message, uid uint32) *dbus.Error {
		return s.SetQuota(m, "/bin/own", uid, "day", 1000, "down", "throttle", 100)
	}
	calls := map[string]func(m dbus.Message) *dbus.Error{
		"GetHistory(all)": func(m dbus.Message) *dbus.Error { _, e := s.GetHistory(m, "", 0, now-3600, now, "minute"); return e },
		"GetHistory(own)": func(m dbus.Message) *dbus.Error {
			_, e := s.GetHistory(m, "/bin/own", uidOf(m), now-3600, now, "hour")
			return e
		},
		"GetHistory(other)": func(m dbus.Message) *dbus.Error {
			_, e := s.GetHistory(m, "/bin/x", uidOf(m)+7, now-3600, now, "hour")
			return e
		},
		api.MethodGetQuotas: func(m dbus.Message) *dbus.Error { _, e := s.GetQuotas(m); return e },
		"SetQuota(own)":     func(m dbus.Message) *dbus.Error { return quota(m, uidOf(m)) },
		"SetQuota(other)":   func(m dbus.Message) *dbus.Error { return quota(m, uidOf(m)+7) },
		"RemoveQuota(own)":  func(m dbus.Message) *dbus.Error { return s.RemoveQuota(m, "/bin/own", uidOf(m)) },
		"RemoveQuota(other)": func(m dbus.Message) *dbus.Error {
			return s.RemoveQuota(m, "/bin/own", uidOf(m)+7)
		},
	}
	want := map[string]map[string]string{
		"GetHistory(all)": authOwn, "GetHistory(own)": authOwn, "GetHistory(other)": authManage, api.MethodGetQuotas: authOwn,
		"SetQuota(own)": authOwn, "SetQuota(other)": authManage, "RemoveQuota(own)": authOwn, "RemoveQuota(other)": authManage,
	}
	return calls, want
}
