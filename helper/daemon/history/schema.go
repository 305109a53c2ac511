package history

import (
	"database/sql"
	"fmt"
	"time"
)

// SchemaVersion is the schema this code writes (PRAGMA user_version).
var SchemaVersion = len(migrations)

// migrations[i] takes a database from version i to i+1. Append only.
var migrations = []string{
	// 1: apps and three resolutions of bytes per app.
	`CREATE TABLE apps(id INTEGER PRIMARY KEY, uid INTEGER NOT NULL, exe TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
		UNIQUE(uid, exe));
	CREATE TABLE minute(app INTEGER NOT NULL, t INTEGER NOT NULL, rx INTEGER NOT NULL, tx INTEGER NOT NULL,
		PRIMARY KEY(app, t)) WITHOUT ROWID;
	CREATE TABLE hour(app INTEGER NOT NULL, t INTEGER NOT NULL, rx INTEGER NOT NULL, tx INTEGER NOT NULL,
		PRIMARY KEY(app, t)) WITHOUT ROWID;
	CREATE TABLE day(app INTEGER NOT NULL, t INTEGER NOT NULL, rx INTEGER NOT NULL, tx INTEGER NOT NULL,
		PRIMARY KEY(app, t)) WITHOUT ROWID;
	CREATE INDEX minute_t ON minute(t);
	CREATE INDEX hour_t ON hour(t);
	CREATE INDEX day_t ON day(t);`,
	// 2: data quotas (rules: they persist and follow new processes).
	`CREATE TABLE quotas(uid INTEGER NOT NULL, exe TEXT NOT NULL, period TEXT NOT NULL, cap INTEGER NOT NULL,
		direction TEXT NOT NULL, action TEXT NOT NULL, rate INTEGER NOT NULL, admin INTEGER NOT NULL,
		PRIMARY KEY(uid, exe));`,
}

// migrate brings db to SchemaVersion, one transaction per step. A file
// written by a newer version is refused (and so set aside by Open).
func migrate(db *sql.DB) error {
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("schema version %d is newer than this helper's %d", v, SchemaVersion)
	}
	return migrateTo(db, v, SchemaVersion)
}

func migrateTo(db *sql.DB, from, to int) error {
	for v := from; v < to; v++ {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate schema %d → %d: %w", v, v+1, err)
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate schema %d → %d: %w", v, v+1, err)
		}
	}
	return nil
}

// Resolution is a bucket size of history.
type Resolution int

// Resolutions. Month buckets are summed from day buckets.
const (
	Minute Resolution = iota
	Hour
	Day
	Month
)

// ParseResolution parses minute, hour, day or month.
func ParseResolution(s string) (Resolution, error) {
	for r := Minute; r <= Month; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("resolution %q is not minute, hour, day or month", s)
}

func (r Resolution) String() string {
	switch r {
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	case Day:
		return "day"
	case Month:
		return "month"
	}
	return fmt.Sprintf("resolution(%d)", int(r))
}

// table is where the resolution's rows live (months: in day).
func (r Resolution) table() string {
	switch r {
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	}
	return "day"
}

func (r Resolution) retention() time.Duration {
	switch r {
	case Minute:
		return MinuteRetention
	case Hour:
		return HourRetention
	}
	return DayRetention
}

// start returns the start (unix seconds) of the bucket holding unix time
// u: minutes are UTC minutes, hours, days and months start on the local
// clock's hour, midnight and first of the month.
func (r Resolution) start(u int64, loc *time.Location) int64 {
	if r == Minute {
		return u - u%60
	}
	t := time.Unix(u, 0).In(loc)
	y, m, d := t.Date()
	switch r {
	case Hour:
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, loc).Unix()
	case Day:
		return time.Date(y, m, d, 0, 0, 0, 0, loc).Unix()
	}
	return time.Date(y, m, 1, 0, 0, 0, 0, loc).Unix()
}

// Start returns the start of the bucket of resolution r holding t, in the
// store's time zone.
func (s *Store) Start(r Resolution, t time.Time) time.Time {
	return time.Unix(r.start(t.Unix(), s.cfg.Loc), 0).In(s.cfg.Loc)
}
