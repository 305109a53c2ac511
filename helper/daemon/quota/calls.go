package quota

import (
	"fmt"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/history"
)

// PeriodBounds returns the calendar period of kind per holding t in loc:
// a day from midnight, a week from Monday's midnight, a month from the
// first's midnight.
func PeriodBounds(per string, t time.Time, loc *time.Location) (start, end time.Time) {
	t = t.In(loc)
	y, m, d := t.Date()
	switch per {
	case api.QuotaWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, m, d-back, 0, 0, 0, 0, loc)
		return start, time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
	case api.QuotaMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// validate checks a quota's fields and spells out defaults.
func validate(q *api.Quota) error {
	switch q.Period {
	case api.QuotaDay, api.QuotaWeek, api.QuotaMonth:
	default:
		return fmt.Errorf("%w: period %q is not day, week or month", ErrInvalid, clip(q.Period))
	}
	if q.Direction == "" {
		q.Direction = api.QuotaBoth
	}
	switch q.Direction {
	case api.QuotaDown, api.QuotaUp, api.QuotaBoth:
	default:
		return fmt.Errorf("%w: direction %q is not down, up or both", ErrInvalid, clip(q.Direction))
	}
	if q.Bytes == 0 || q.Bytes > api.MaxQuotaBytes {
		return fmt.Errorf("%w: cap of %d bytes is out of range (1 byte to 1 EB)", ErrInvalid, q.Bytes)
	}
	switch q.Action {
	case api.QuotaThrottle:
		if q.Rate == 0 || q.Rate > api.MaxRate {
			return fmt.Errorf("%w: throttle rate %d B/s is out of range (1 to %d)", ErrInvalid, q.Rate, api.MaxRate)
		}
	case api.QuotaBlock:
		q.Rate = 0
	default:
		return fmt.Errorf("%w: action %q is not throttle or block", ErrInvalid, clip(q.Action))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

func fromRecord(r history.QuotaRecord) api.Quota {
	return api.Quota{Exe: r.Exe, UID: r.UID, Period: r.Period, Bytes: r.Cap, Direction: r.Direction,
		Action: r.Action, Rate: r.Rate, Admin: r.Admin}
}

// SetQuota creates or replaces the quota on q.Exe of q.UID for caller c. A
// quota an administrator set needs c.Admin to change; without it a user
// may hold MaxUserQuotas. Usage in the current period is read from the
// history, and the action starts or ends at once.
func (m *Manager) SetQuota(c api.Caller, q api.Quota) error {
	if err := validate(&q); err != nil {
		return err
	}
	if q.Action == api.QuotaBlock {
		if err := m.cfg.Engine.BlockAvailable(); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	} else if err := m.cfg.Engine.CheckQuotaRate(actionLimit(q)); err != nil {
		return err
	}
	exe, err := m.cfg.Engine.ResolveExe(c, q.Exe, q.UID)
	if err != nil {
		return err
	}
	q.Exe, q.Admin = exe, c.Admin
	q.Used, q.State, q.PeriodStart, q.PeriodEnd = 0, "", 0, 0
	k := history.Key{UID: q.UID, Exe: exe}
	m.mu.Lock()
	prev := m.quotas[k]
	if err := m.mayChangeLocked(c, prev); err != nil {
		m.mu.Unlock()
		return err
	}
	if prev == nil {
		if err := m.boundLocked(c); err != nil {
			m.mu.Unlock()
			return err
		}
	}
	e := &entry{q: q}
	if err := m.reload(e, m.cfg.Now()); err != nil {
		m.mu.Unlock()
		return err
	}
	m.carryBudget(e, prev)
	if err := m.cfg.Store.PutQuota(history.QuotaRecord{Key: k, Period: q.Period, Cap: q.Bytes, Direction: q.Direction,
		Action: q.Action, Rate: q.Rate, Admin: q.Admin}); err != nil {
		m.mu.Unlock()
		return err
	}
	m.quotas[k] = e
	m.evaluateLocked(m.cfg.Now())
	m.mu.Unlock()
	m.notify()
	return nil
}

func (m *Manager) mayChangeLocked(c api.Caller, prev *entry) error {
	if prev != nil && prev.q.Admin && !c.Admin {
		return fmt.Errorf("%w: the quota on %s was set by an administrator", ErrNeedsManage, prev.q.Exe)
	}
	return nil
}

// boundLocked checks that c may add one more quota.
func (m *Manager) boundLocked(c api.Caller) error {
	if len(m.quotas) >= MaxQuotas {
		return fmt.Errorf("%w: the helper holds %d quotas, its maximum", ErrLimit, MaxQuotas)
	}
	if c.Admin {
		return nil
	}
	n := 0
	for k, e := range m.quotas {
		if k.UID == c.UID && !e.q.Admin {
			n++
		}
	}
	if n >= MaxUserQuotas {
		return fmt.Errorf("%w: uid %d has %d quotas, the most a user may set without the manage permission", ErrLimit, c.UID, MaxUserQuotas)
	}
	return nil
}

// RemoveQuota deletes the quota on exe of uid for caller c; its action ends at
// once.
func (m *Manager) RemoveQuota(c api.Caller, exe string, uid uint32) error {
	resolved, err := m.cfg.Engine.ResolveExe(c, exe, uid)
	if err != nil {
		return err
	}
	m.mu.Lock()
	k := history.Key{UID: uid, Exe: resolved}
	e := m.quotas[k]
	if e == nil {
		m.mu.Unlock()
		return fmt.Errorf("%w: no quota for uid %d on %s", ErrNotFound, uid, clip(exe))
	}
	if err := m.mayChangeLocked(c, e); err != nil {
		m.mu.Unlock()
		return err
	}
	if _, err := m.cfg.Store.DeleteQuota(k); err != nil {
		m.mu.Unlock()
		return err
	}
	delete(m.quotas, k)
	m.evaluateLocked(m.cfg.Now())
	m.mu.Unlock()
	m.notify()
	return nil
}
