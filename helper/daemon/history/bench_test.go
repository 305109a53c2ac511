//go:build bench

package history

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// benchApps is the number of active apps of the benchmarks.
const benchApps = 200

func benchDeltas() []Delta {
	ds := make([]Delta, benchApps)
	for i := range ds {
		ds[i] = Delta{Key: Key{UID: 1000 + uint32(i%4), Exe: fmt.Sprintf("/usr/lib/app%03d/bin/app%03d", i, i)}, Name: fmt.Sprintf("App %d", i),
			Rx: 12345 + uint64(i), Tx: 678}
	}
	return ds
}

// ioCounter reads a /proc/self/io field (wchar: bytes passed to write
// calls; write_bytes: bytes sent to storage).
func ioCounter(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		testenv.Skip(t, "no /proc/self/io: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+": "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// TestBenchHistoryHour: one simulated hour of 200 active apps (one sample
// a second, one transaction every FlushInterval): CPU and bytes written, as the
// helper would spend them per hour.
func TestBenchHistoryHour(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "history-bench-") // a disk, not tmpfs
	if err != nil {
		dir = t.TempDir()
	}
	defer os.RemoveAll(dir)
	c := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.Local)}
	s, err := Open(Config{Dir: dir, Now: c.now, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ds := benchDeltas()
	// warm up: the apps exist
	s.Add(c.now(), ds)
	s.Flush()
	cpu0, w0, d0 := testenv.SelfCPU(), ioCounter(t, "wchar"), ioCounter(t, "write_bytes")
	start := time.Now()
	flushEvery := int(FlushInterval / time.Second)
	for sec := 0; sec < 3600; sec++ {
		s.Add(c.add(time.Second), ds)
		if (sec+1)%flushEvery == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cpu, wchar, disk := testenv.SelfCPU()-cpu0, ioCounter(t, "wchar")-w0, ioCounter(t, "write_bytes")-d0
	fi, _ := os.Stat(s.Path())
	t.Logf("history, %d active apps, one hour (3600 samples, %d transactions, one every %v) in %v wall: CPU %v (%.3f %% of one core), "+
		"written %.1f MB (write calls) / %.1f MB (to storage), database %.1f MB",
		benchApps, 3600/flushEvery, FlushInterval, time.Since(start).Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/3600,
		float64(wchar)/1e6, float64(disk)/1e6, float64(fi.Size())/1e6)
}

// TestBenchHistoryYear: the database after a year of 200 active apps: the
// rows retention keeps (48 h of minutes, 90 days of hours, a year of
// days), written as a year would leave them.
func TestBenchHistoryYear(t *testing.T) {
	dir := t.TempDir()
	end := time.Date(2027, 12, 3, 0, 0, 0, 0, time.Local)
	c := &clock{t: end.AddDate(-1, 0, 0)}
	s, err := Open(Config{Dir: dir, Now: c.now, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ds := benchDeltas()
	start := time.Now()
	feed := func(until time.Time, step time.Duration) {
		n := 0
		for c.now().Before(until) {
			s.Add(c.add(step), ds)
			if n++; n%60 == 0 {
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		s.Flush()
	}
	feed(end.Add(-HourRetention), 24*time.Hour)
	feed(end.Add(-MinuteRetention), time.Hour)
	feed(end, time.Minute)
	c.add(retentionEvery)
	s.Flush()
	size, _ := s.Size()
	fi, _ := os.Stat(s.Path())
	var rows [3]int64
	for i, tb := range []string{"minute", "hour", "day"} {
		s.db.QueryRow("SELECT COUNT(*) FROM " + tb).Scan(&rows[i])
	}
	t.Logf("history after a simulated year of %d apps: %.1f MB file (%.1f MB used), rows: %d minute, %d hour, %d day (built in %v)",
		benchApps, float64(fi.Size())/1e6, float64(size)/1e6, rows[0], rows[1], rows[2], time.Since(start).Round(time.Second))
	q0 := time.Now()
	if _, err := s.Query(Query{From: end.AddDate(0, -1, 0), Until: end, By: Day}); err != nil {
		t.Fatal(err)
	}
	q1 := time.Now()
	if _, err := s.Query(Query{From: end.Add(-24 * time.Hour), Until: end, By: Minute}); err != nil {
		t.Fatal(err)
	}
	t.Logf("queries: a month by day for all apps %v, a day by minute for all apps %v", q1.Sub(q0).Round(time.Millisecond), time.Since(q1).Round(time.Millisecond))
}
