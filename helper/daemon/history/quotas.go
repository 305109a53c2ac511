package history

import "fmt"

// QuotaRecord is a persisted data quota (the on-disk form, not the wire
// type).
type QuotaRecord struct {
	Key
	Period    string // day, week, month
	Cap       uint64 // bytes
	Direction string // down, up, both
	Action    string // block, throttle
	Rate      uint64 // B/s of a throttle action
	Admin     bool   // set with manage
}

// Quotas returns every persisted quota.
func (s *Store) Quotas() ([]QuotaRecord, error) {
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	rows, err := db.Query("SELECT uid, exe, period, cap, direction, action, rate, admin FROM quotas ORDER BY uid, exe")
	if err != nil {
		return nil, fmt.Errorf("read quotas: %w", err)
	}
	defer rows.Close()
	var out []QuotaRecord
	for rows.Next() {
		var q QuotaRecord
		var capb, rate int64
		if err := rows.Scan(&q.UID, &q.Exe, &q.Period, &capb, &q.Direction, &q.Action, &rate, &q.Admin); err != nil {
			return nil, fmt.Errorf("read quotas: %w", err)
		}
		q.Cap, q.Rate = uint64(capb), uint64(rate)
		out = append(out, q)
	}
	return out, rows.Err()
}

// PutQuota creates or replaces a quota (written at once: a quota is a
// rule, not a sample).
func (s *Store) PutQuota(q QuotaRecord) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	_, err := s.db.Exec(`INSERT INTO quotas(uid, exe, period, cap, direction, action, rate, admin) VALUES(?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(uid, exe) DO UPDATE SET period = excluded.period, cap = excluded.cap, direction = excluded.direction,
		action = excluded.action, rate = excluded.rate, admin = excluded.admin`,
		q.UID, q.Exe, q.Period, int64(q.Cap), q.Direction, q.Action, int64(q.Rate), q.Admin)
	if err != nil {
		return fmt.Errorf("save quota: %w", err)
	}
	return nil
}

// DeleteQuota removes a quota; it reports whether there was one.
func (s *Store) DeleteQuota(k Key) (bool, error) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	r, err := s.db.Exec("DELETE FROM quotas WHERE uid = ? AND exe = ?", k.UID, k.Exe)
	if err != nil {
		return false, fmt.Errorf("delete quota: %w", err)
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}
