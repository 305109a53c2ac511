// Package history is the helper's long-term traffic history: bytes
// received and sent per app (uid, executable) in one-minute buckets for
// 48 hours, one-hour buckets for 90 days and one-day buckets for 5 years,
// kept in an SQLite database (WAL mode) in the helper's state directory.
//
// Samples arrive once a second (Add) and are kept in memory; Run writes them
// in one transaction every FlushInterval, and Close writes what is left, so
// a killed helper loses at most one batch. The schema is versioned
// (PRAGMA user_version) and migrated forward at Open; a file that cannot be
// opened, checked or migrated is set aside as history.db.corrupt-<time> and
// a fresh one started, so the helper always starts. Hour and day buckets
// start at the machine's local hour and midnight, so days, weeks and months
// are calendar periods in local time.
package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// FileName is the database's name in the state directory.
const FileName = "history.db"

// Retention of each resolution, and how often data is written.
const (
	MinuteRetention = 48 * time.Hour
	HourRetention   = 90 * 24 * time.Hour
	DayRetention    = 5 * 366 * 24 * time.Hour
	FlushInterval   = 30 * time.Second
	// DefaultMaxBytes caps the database's size: when the data outgrow it,
	// the oldest per-minute, then per-hour rows are deleted (logged).
	DefaultMaxBytes = 256 << 20
	// MaxAppsPerUID bounds the apps recorded for one non-root uid (a user
	// can run copies of a program under any number of names); traffic of
	// further apps is recorded under OtherExe.
	MaxAppsPerUID = 1024
	// OtherExe names the app that holds a uid's traffic beyond MaxAppsPerUID.
	OtherExe = "[other]"
	// maxPending bounds the apps of one unflushed batch.
	maxPending = 1 << 16
)

// Key is an app: a user and an executable.
type Key struct {
	UID uint32
	Exe string
}

// Delta is an app's bytes since the previous sample.
type Delta struct {
	Key
	Name   string
	Rx, Tx uint64
}

// Config configures a Store.
type Config struct {
	// Dir is the state directory ("" means /var/lib/chadthrottle).
	Dir string
	// Now is the clock (nil: time.Now); tests inject one.
	Now func() time.Time
	// Loc is the time zone of hour and day buckets (nil: time.Local).
	Loc *time.Location
	// MaxBytes caps the database's size (0: DefaultMaxBytes).
	MaxBytes int64
	// Logf logs what the store handles by itself (nil: log.Printf).
	Logf func(format string, args ...any)
}

// Store is the history database. It is safe for concurrent use.
type Store struct {
	cfg  Config
	path string
	db   *sql.DB

	mu      sync.Mutex
	pending map[Key]*pendingApp
	apps    map[Key]int64 // app row ids
	perUID  map[uint32]int
	lastRet time.Time
	closed  bool
	flushMu sync.Mutex // one flush at a time
}

type pendingApp struct {
	name    string
	minutes map[int64]*counts // minute start (unix s) → bytes
}

type counts struct{ rx, tx uint64 }

// Open opens (creating it when missing) the database in cfg.Dir. A file
// that is not a usable database is set aside and a fresh one created; an
// error is returned only when not even a fresh file can be used.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		cfg.Dir = "/var/lib/chadthrottle"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Loc == nil {
		cfg.Loc = time.Local
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	s := &Store{cfg: cfg, path: filepath.Join(cfg.Dir, FileName), pending: map[Key]*pendingApp{}}
	db, err := s.open()
	if err != nil {
		aside, aerr := setAside(s.path, cfg.Now())
		if aerr != nil {
			return nil, fmt.Errorf("history database %s: %v; setting it aside failed: %w", s.path, err, aerr)
		}
		cfg.Logf("history: database %s cannot be used (%v): set aside as %s, starting a fresh one", s.path, err, aside)
		if db, err = s.open(); err != nil {
			return nil, fmt.Errorf("fresh history database %s: %w", s.path, err)
		}
	}
	s.db = db
	if err := s.loadApps(); err != nil {
		db.Close()
		return nil, fmt.Errorf("read apps of %s: %w", s.path, err)
	}
	return s, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// open opens, checks and migrates the file.
func (s *Store) open() (*sql.DB, error) {
	if err := createPrivate(s.path); err != nil {
		return nil, err
	}
	dsn := "file:" + s.path + "?_pragma=busy_timeout(5000)&_pragma=auto_vacuum(incremental)" +
		"&_pragma=journal_mode(wal)&_pragma=synchronous(normal)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; queries are short
	var check string
	if err := db.QueryRow("PRAGMA quick_check").Scan(&check); err != nil {
		db.Close()
		return nil, fmt.Errorf("check: %w", err)
	}
	if check != "ok" {
		db.Close()
		return nil, fmt.Errorf("check: %s", check)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, err
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Chmod(s.path+suffix, 0o600)
	}
	return db, nil
}

// createPrivate creates path with mode 0600 when missing, and refuses
// anything but a regular file.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return f.Chmod(0o600)
}

// setAside renames the database and its WAL files to
// <name>.corrupt-<time><suffix> and returns the new name.
func setAside(path string, now time.Time) (string, error) {
	aside := path + ".corrupt-" + now.UTC().Format("20060102T150405")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			if suffix == "" {
				// Not even renamable (a directory?): try to remove it.
				if rerr := os.RemoveAll(path); rerr != nil {
					return "", err
				}
			}
		}
	}
	return aside, nil
}

func (s *Store) loadApps() error {
	s.apps = map[Key]int64{}
	s.perUID = map[uint32]int{}
	rows, err := s.db.Query("SELECT id, uid, exe FROM apps")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var k Key
		if err := rows.Scan(&id, &k.UID, &k.Exe); err != nil {
			return err
		}
		s.apps[k] = id
		s.perUID[k.UID]++
	}
	return rows.Err()
}

// Add records one sample's bytes at time t (kept in memory until the next
// flush). Apps beyond a uid's MaxAppsPerUID are recorded as OtherExe.
func (s *Store) Add(t time.Time, ds []Delta) {
	minute := t.Unix() - t.Unix()%60
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for _, d := range ds {
		if d.Rx == 0 && d.Tx == 0 {
			continue
		}
		k := s.boundedKey(d.Key)
		p := s.pending[k]
		if p == nil {
			if len(s.pending) >= maxPending {
				k = Key{d.UID, OtherExe}
				if p = s.pending[k]; p == nil {
					continue
				}
			} else {
				p = &pendingApp{minutes: map[int64]*counts{}}
				s.pending[k] = p
			}
		}
		if d.Name != "" && k.Exe != OtherExe {
			p.name = d.Name
		}
		c := p.minutes[minute]
		if c == nil {
			c = &counts{}
			p.minutes[minute] = c
		}
		c.rx += d.Rx
		c.tx += d.Tx
	}
}

// boundedKey returns k, or the uid's OtherExe when the uid has
// MaxAppsPerUID apps already. Needs mu.
func (s *Store) boundedKey(k Key) Key {
	if k.UID == 0 {
		return k
	}
	if _, ok := s.apps[k]; ok {
		return k
	}
	if _, ok := s.pending[k]; ok {
		return k
	}
	if s.perUID[k.UID] >= MaxAppsPerUID {
		return Key{k.UID, OtherExe}
	}
	s.perUID[k.UID]++ // counted now so a burst of new apps stays bounded
	return k
}

// Run flushes every FlushInterval until ctx is done, then flushes once
// more. Call it once; Close also flushes.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flushLogged()
			return
		case <-t.C:
			s.flushLogged()
		}
	}
}

func (s *Store) flushLogged() {
	if err := s.Flush(); err != nil && !errors.Is(err, errClosed) {
		s.cfg.Logf("history: write: %v", err)
	}
}

var errClosed = errors.New("history store is closed")

// whileOpen runs fn under mu unless the store is closed, and reports
// whether it ran.
func (s *Store) whileOpen(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	fn()
	return true
}

// Close writes what is pending and closes the database.
func (s *Store) Close() error {
	ferr := s.Flush()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if !s.whileOpen(func() { s.closed = true }) {
		return nil
	}
	if errors.Is(ferr, errClosed) {
		ferr = nil
	}
	return errors.Join(ferr, s.db.Close())
}
