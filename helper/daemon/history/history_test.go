package history

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var berlin = func() *time.Location {
	l, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return l
}()

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(f string, a ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
	l.mu.Unlock()
}

func (l *logs) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func open(t *testing.T, dir string, c *clock, lg *logs) *Store {
	t.Helper()
	s, err := Open(Config{Dir: dir, Now: c.now, Loc: berlin, Logf: lg.logf})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var app = Key{1000, "/usr/bin/curl"}

func total(t *testing.T, s *Store, q Query) (uint64, uint64) {
	t.Helper()
	ss, err := s.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var rx, tx uint64
	for _, sr := range ss {
		rx += sr.Rx
		tx += sr.Tx
	}
	return rx, tx
}

// TestRollupsAndRetention: one sample a minute for 100 days into a real
// file with an injected clock; each resolution keeps its window and sums
// the same bytes.
func TestRollupsAndRetention(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 30, 0, berlin)}
	lg := &logs{}
	s := open(t, t.TempDir(), c, lg)
	defer s.Close()
	start := c.now()
	const days = 100
	for m := 0; m < days*24*60; m += 10 { // every 10 minutes, 1000 B down, 10 B up
		now := c.add(10 * time.Minute)
		s.Add(now, []Delta{{Key: app, Name: "curl", Rx: 1000, Tx: 10}})
		if m%(6*60) == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	end := c.now()
	samples := uint64(days * 24 * 6)
	rx, tx := total(t, s, Query{From: start, Until: end.Add(time.Minute), By: Day})
	if rx != samples*1000 || tx != samples*10 {
		t.Errorf("days hold %d/%d bytes, want %d/%d", rx, tx, samples*1000, samples*10)
	}
	rx, _ = total(t, s, Query{From: start, Until: end.Add(time.Minute), By: Month})
	if rx != samples*1000 {
		t.Errorf("months hold %d bytes, want %d", rx, samples*1000)
	}
	// Hours: only the last 90 days are kept.
	ss, _ := s.Query(Query{From: start, Until: end.Add(time.Minute), By: Hour})
	if first := ss[0].Buckets[0].Start; first.Before(end.Add(-HourRetention - time.Hour)) {
		t.Errorf("oldest hour bucket %v is older than 90 days before %v", first, end)
	}
	// Minutes: only the last 48 hours.
	ss, _ = s.Query(Query{From: start, Until: end.Add(time.Minute), By: Minute})
	if first := ss[0].Buckets[0].Start; first.Before(end.Add(-MinuteRetention - time.Minute)) {
		t.Errorf("oldest minute bucket %v is older than 48 h before %v", first, end)
	}
	if n := len(ss[0].Buckets); n > 48*6+1 || n < 48*6-1 {
		t.Errorf("%d minute buckets in the last 48 h, want about %d", n, 48*6)
	}
	// Day buckets start at local midnight (calendar days in Berlin).
	ds, _ := s.Query(Query{From: start, Until: end, By: Day})
	for _, b := range ds[0].Buckets {
		if b.Start.In(berlin).Hour() != 0 || b.Start.Minute() != 0 {
			t.Fatalf("day bucket starts at %v, not local midnight", b.Start)
		}
	}
}

// TestPendingCountsAndFileMode: unflushed samples are in queries; the
// file and its WAL are 0600 and readable as SQLite in WAL mode.
func TestPendingCountsAndFileMode(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 3, 29, 1, 59, 0, 0, berlin)} // DST change
	s := open(t, dir, c, &logs{})
	s.Add(c.now(), []Delta{{Key: app, Rx: 5, Tx: 7}})
	if rx, tx := total(t, s, Query{From: c.now().Add(-time.Hour), Until: c.now().Add(time.Hour), By: Hour}); rx != 5 || tx != 7 {
		t.Fatalf("pending: %d/%d, want 5/7", rx, tx)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.Add(c.add(2*time.Minute), []Delta{{Key: app, Rx: 5, Tx: 7}})
	if rx, _, _ := s.Usage(app, s.Start(Day, c.now())); rx != 10 {
		t.Fatalf("usage %d, want 10", rx)
	}
	for _, f := range []string{FileName, FileName + "-wal"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	var mode string
	s.db.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal mode %q, want wal", mode)
	}
	s.Close()
}

// TestCorruptFileSetAside: garbage, a truncated database and a directory
// in the database's place: each is set aside with a log line and a fresh
// database serves.
func TestCorruptFileSetAside(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(path string) error
	}{
		{"garbage", func(p string) error { return os.WriteFile(p, []byte(strings.Repeat("not a database ", 1000)), 0o600) }},
		{"torn", func(p string) error {
			c := &clock{t: time.Now()}
			s, err := Open(Config{Dir: filepath.Dir(p), Now: c.now, Logf: func(string, ...any) {}})
			if err != nil {
				return err
			}
			for i := 0; i < 200; i++ {
				s.Add(c.add(time.Minute), []Delta{{Key: Key{uint32(i), fmt.Sprintf("/bin/x%d", i)}, Rx: 1}})
			}
			s.Close()
			st, _ := os.Stat(p)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			// Overwrite the middle pages with garbage.
			_, err = f.WriteAt([]byte(strings.Repeat("\xff", 8192)), st.Size()/2)
			return err
		}},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }},
		{"newer", func(p string) error {
			db, err := sql.Open("sqlite", p)
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = db.Exec("PRAGMA user_version = 99")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tc.make(filepath.Join(dir, FileName)); err != nil {
				t.Fatal(err)
			}
			lg := &logs{}
			c := &clock{t: time.Now()}
			s := open(t, dir, c, lg)
			defer s.Close()
			s.Add(c.now(), []Delta{{Key: app, Rx: 1}})
			if err := s.Flush(); err != nil {
				t.Fatalf("fresh database: %v", err)
			}
			aside, _ := filepath.Glob(filepath.Join(dir, FileName+".corrupt-*"))
			if len(aside) == 0 || !lg.has("set aside") {
				t.Fatalf("not set aside: files %v, log %v", aside, lg.lines)
			}
			t.Logf("log: %s", lg.lines[0])
		})
	}
}

// TestMigrationFromVersion1: a version-1 file (before quotas) with data
// opens at the current version with its data and a quotas table.
func TestMigrationFromVersion1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(db, 0, 1); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin).Unix()
	for _, q := range []string{
		"INSERT INTO apps(id, uid, exe, name) VALUES(1, 1000, '/usr/bin/curl', 'curl')",
		fmt.Sprintf("INSERT INTO day(app, t, rx, tx) VALUES(1, %d, 123, 4)", day),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	c := &clock{t: time.Date(2026, 5, 2, 0, 0, 0, 0, berlin)}
	s := open(t, dir, c, &logs{})
	defer s.Close()
	var v int
	s.db.QueryRow("PRAGMA user_version").Scan(&v)
	if v != SchemaVersion {
		t.Fatalf("schema version %d, want %d", v, SchemaVersion)
	}
	if rx, _ := total(t, s, Query{From: time.Unix(day, 0), Until: c.now(), By: Day}); rx != 123 {
		t.Fatalf("migrated data: %d bytes, want 123", rx)
	}
	if err := s.PutQuota(QuotaRecord{Key: app, Period: "day", Cap: 1, Direction: "both", Action: "throttle", Rate: 1}); err != nil {
		t.Fatal(err)
	}
	qs, err := s.Quotas()
	if err != nil || len(qs) != 1 {
		t.Fatalf("quotas %v, %v", qs, err)
	}
}

// TestSizeCap: a tiny cap deletes the oldest minutes and says so.
func TestSizeCap(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, berlin)}
	lg := &logs{}
	s, err := Open(Config{Dir: t.TempDir(), Now: c.now, Loc: berlin, Logf: lg.logf, MaxBytes: 200 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ds []Delta
	for i := 0; i < 100; i++ {
		ds = append(ds, Delta{Key: Key{1000, fmt.Sprintf("/opt/app%d", i)}, Rx: 1, Tx: 1})
	}
	for m := 0; m < 60; m++ {
		s.Add(c.add(time.Minute), ds)
	}
	c.add(retentionEvery)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	size, _ := s.Size()
	if !lg.has("over its cap") || size > 200<<10 {
		t.Fatalf("size %d, log %v", size, lg.lines)
	}
	t.Logf("%s", lg.lines[0])
}

// TestAppsPerUIDBounded: a user's 1025th app is recorded as [other].
func TestAppsPerUIDBounded(t *testing.T) {
	c := &clock{t: time.Now()}
	s := open(t, t.TempDir(), c, &logs{})
	defer s.Close()
	var ds []Delta
	for i := 0; i < MaxAppsPerUID+10; i++ {
		ds = append(ds, Delta{Key: Key{1000, fmt.Sprintf("/tmp/a%d", i)}, Rx: 1})
	}
	s.Add(c.now(), ds)
	ss, _ := s.Query(Query{From: c.now().Add(-time.Minute), Until: c.now().Add(time.Minute), By: Minute})
	if len(ss) != MaxAppsPerUID+1 || ss[0].Exe != OtherExe || ss[0].Rx != 10 {
		t.Fatalf("%d apps, first %+v", len(ss), ss[0].Key)
	}
}

// TestKillLosesAtMostOneBatch: a child writes a flushed batch and an
// unflushed one and is killed with SIGKILL; the flushed bytes are there.
func TestKillLosesAtMostOneBatch(t *testing.T) {
	if dir := os.Getenv("HISTORY_KILL_CHILD"); dir != "" {
		s, err := Open(Config{Dir: dir})
		if err != nil {
			os.Exit(3)
		}
		s.Add(time.Now(), []Delta{{Key: app, Rx: 1000}})
		if err := s.Flush(); err != nil {
			os.Exit(4)
		}
		s.Add(time.Now(), []Delta{{Key: app, Rx: 1}})
		fmt.Println("flushed")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillLosesAtMostOneBatch$")
	cmd.Env = append(os.Environ(), "HISTORY_KILL_CHILD="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.Contains(string(buf[:n]), "flushed") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", buf[:n])
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	lg := &logs{}
	s := open(t, dir, &clock{t: time.Now()}, lg)
	defer s.Close()
	rx, _ := total(t, s, Query{From: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour), By: Minute})
	if rx != 1000 {
		t.Fatalf("after SIGKILL: %d bytes, want the flushed 1000 (the unflushed 1 lost)", rx)
	}
	if lg.has("set aside") {
		t.Fatalf("a killed writer's file was set aside: %v", lg.lines)
	}
}
