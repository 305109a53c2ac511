package history

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Flush writes the pending samples in one transaction, into all three
// resolutions, then applies retention and the size cap (at most every
// retentionEvery). On failure the samples stay pending; a database found
// corrupt is set aside and a fresh one started.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	var batch map[Key]*pendingApp
	if !s.whileOpen(func() { batch, s.pending = s.pending, map[Key]*pendingApp{} }) {
		return errClosed
	}
	if len(batch) > 0 {
		if err := s.write(batch); err != nil {
			s.requeue(batch)
			if isCorrupt(err) {
				s.recover(err)
			}
			return err
		}
	}
	now := s.cfg.Now()
	if now.Sub(s.lastRet) >= retentionEvery || now.Before(s.lastRet) {
		s.lastRet = now
		if err := s.retain(now); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
	}
	return nil
}

const retentionEvery = 10 * time.Minute

// requeue puts a batch that could not be written back in front of what
// arrived meanwhile.
func (s *Store) requeue(batch map[Key]*pendingApp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range s.pending {
		b := batch[k]
		if b == nil {
			batch[k] = p
			continue
		}
		for m, c := range p.minutes {
			if bc := b.minutes[m]; bc != nil {
				bc.rx += c.rx
				bc.tx += c.tx
			} else {
				b.minutes[m] = c
			}
		}
		if p.name != "" {
			b.name = p.name
		}
	}
	s.pending = batch
}

func isCorrupt(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "malformed") || strings.Contains(msg, "not a database") || strings.Contains(msg, "SQLITE_CORRUPT") || strings.Contains(msg, "SQLITE_NOTADB")
}

// recover sets a database that went corrupt while in use aside and starts
// a fresh one. Needs flushMu.
func (s *Store) recover(cause error) {
	s.db.Close()
	aside, err := setAside(s.path, s.cfg.Now())
	if err == nil {
		s.cfg.Logf("history: database %s is corrupt (%v): set aside as %s, starting a fresh one", s.path, cause, aside)
	}
	db, oerr := s.open()
	if oerr != nil {
		s.cfg.Logf("history: cannot start a fresh database %s: %v", s.path, oerr)
		db, _ = s.openMemory()
	}
	s.mu.Lock()
	s.db = db
	s.mu.Unlock()
	if err := s.loadApps(); err != nil {
		s.cfg.Logf("history: read apps: %v", err)
	}
}

// openMemory is the last resort when no file can be used: history lives
// until the helper exits.
func (s *Store) openMemory() (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, migrate(db)
}

// write stores one batch. Needs flushMu.
func (s *Store) write(batch map[Key]*pendingApp) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ids := map[Key]int64{}
	for k, p := range batch {
		id, err := s.appID(tx, k, p.name)
		if err != nil {
			return fmt.Errorf("app %d:%s: %w", k.UID, k.Exe, err)
		}
		ids[k] = id
	}
	for _, res := range []Resolution{Minute, Hour, Day} {
		stmt, err := tx.Prepare("INSERT INTO " + res.table() + "(app, t, rx, tx) VALUES(?, ?, ?, ?) " +
			"ON CONFLICT(app, t) DO UPDATE SET rx = rx + excluded.rx, tx = tx + excluded.tx")
		if err != nil {
			return err
		}
		for k, p := range batch {
			sums := map[int64]counts{}
			for m, c := range p.minutes {
				b := res.start(m, s.cfg.Loc)
				sc := sums[b]
				sc.rx += c.rx
				sc.tx += c.tx
				sums[b] = sc
			}
			for b, c := range sums {
				if _, err := stmt.Exec(ids[k], b, int64(c.rx), int64(c.tx)); err != nil {
					stmt.Close()
					return err
				}
			}
		}
		stmt.Close()
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.mu.Lock()
	for k, id := range ids {
		if _, ok := s.apps[k]; !ok {
			s.apps[k] = id
		}
	}
	s.mu.Unlock()
	return nil
}

// appID returns the row id of app k, creating the row (and renaming it
// when name is new).
func (s *Store) appID(tx *sql.Tx, k Key, name string) (int64, error) {
	s.mu.Lock()
	id, ok := s.apps[k]
	s.mu.Unlock()
	if ok {
		if name != "" {
			_, err := tx.Exec("UPDATE apps SET name = ? WHERE id = ? AND name != ?", name, id, name)
			return id, err
		}
		return id, nil
	}
	if _, err := tx.Exec("INSERT INTO apps(uid, exe, name) VALUES(?, ?, ?) ON CONFLICT(uid, exe) DO UPDATE SET name = excluded.name",
		k.UID, k.Exe, name); err != nil {
		return 0, err
	}
	err := tx.QueryRow("SELECT id FROM apps WHERE uid = ? AND exe = ?", k.UID, k.Exe).Scan(&id)
	return id, err
}

// retain deletes rows past their resolution's retention, then enforces
// the size cap.
func (s *Store) retain(now time.Time) error {
	for _, res := range []Resolution{Minute, Hour, Day} {
		if _, err := s.db.Exec("DELETE FROM "+res.table()+" WHERE t < ?", now.Add(-res.retention()).Unix()); err != nil {
			return err
		}
	}
	if err := s.enforceCap(); err != nil {
		return err
	}
	_, err := s.db.Exec("PRAGMA incremental_vacuum")
	return err
}

// Size returns the bytes the database's pages hold (free pages excluded).
func (s *Store) Size() (int64, error) {
	var pages, free, size int64
	if err := s.db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		return 0, err
	}
	if err := s.db.QueryRow("PRAGMA freelist_count").Scan(&free); err != nil {
		return 0, err
	}
	if err := s.db.QueryRow("PRAGMA page_size").Scan(&size); err != nil {
		return 0, err
	}
	return (pages - free) * size, nil
}

// enforceCap deletes the oldest quarter of the finest resolution that has
// rows while the database is over its cap, saying so in the log.
func (s *Store) enforceCap() error {
	for round := 0; round < 8; round++ {
		size, err := s.Size()
		if err != nil || size <= s.cfg.MaxBytes {
			return err
		}
		cut, res, err := s.oldestQuarter()
		if err != nil || cut == 0 {
			return err
		}
		r, err := s.db.Exec("DELETE FROM "+res.table()+" WHERE t < ?", cut)
		if err != nil {
			return err
		}
		n, _ := r.RowsAffected()
		s.cfg.Logf("history: database holds %d KiB, over its cap of %d KiB: deleted %d %s rows older than %s",
			size>>10, s.cfg.MaxBytes>>10, n, res, time.Unix(cut, 0).In(s.cfg.Loc).Format(time.RFC3339))
	}
	return nil
}

// oldestQuarter finds the finest resolution holding more than one bucket
// time and the time before which a quarter of its rows lie.
func (s *Store) oldestQuarter() (int64, Resolution, error) {
	for _, res := range []Resolution{Minute, Hour, Day} {
		var n int64
		if err := s.db.QueryRow("SELECT COUNT(DISTINCT t) FROM " + res.table()).Scan(&n); err != nil {
			return 0, res, err
		}
		if n < 2 {
			continue
		}
		var cut int64
		err := s.db.QueryRow("SELECT t FROM (SELECT DISTINCT t FROM "+res.table()+" ORDER BY t) LIMIT 1 OFFSET ?", max(n/4, 1)).Scan(&cut)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		return cut, res, err
	}
	return 0, Minute, nil
}
