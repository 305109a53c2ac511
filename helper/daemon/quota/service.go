package quota

import (
	"errors"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/history"
)

// History returns the apps' bytes over [from, until) in buckets of by
// (api.History*): one app when exe is set (resolved as c would name it),
// otherwise every app, or uid *only's apps when only is set.
func (m *Manager) History(c api.Caller, exe string, uid uint32, from, until time.Time, by string, only *uint32) ([]api.AppHistory, error) {
	res, err := history.ParseResolution(by)
	if err != nil {
		return nil, api.WithKind(api.ErrInvalid, err)
	}
	q := history.Query{From: from, Until: until, By: res, OnlyUID: only}
	if exe != "" {
		if q.Exe, err = m.cfg.Engine.ResolveExe(c, exe, uid); err != nil {
			return nil, err
		}
		q.UID = uid
	}
	ss, err := m.cfg.Store.Query(q)
	if errors.Is(err, history.ErrTooLarge) {
		return nil, api.WithKind(api.ErrInvalid, err)
	} else if err != nil {
		return nil, err
	}
	out := make([]api.AppHistory, 0, len(ss))
	for _, s := range ss {
		a := api.AppHistory{Exe: s.Exe, UID: s.UID, Name: s.Name, RxBytes: s.Rx, TxBytes: s.Tx,
			Buckets: make([]api.HistoryBucket, 0, len(s.Buckets))}
		for _, b := range s.Buckets {
			a.Buckets = append(a.Buckets, api.HistoryBucket{Start: b.Start.Unix(), RxBytes: b.Rx, TxBytes: b.Tx})
		}
		out = append(out, a)
	}
	return out, nil
}
