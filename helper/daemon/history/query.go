package history

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// MaxRows bounds the rows one query reads.
const MaxRows = 1_000_000

// ErrTooLarge: a query would read more than MaxRows rows.
var ErrTooLarge = fmt.Errorf("history query too large (more than %d rows): choose a shorter range or a coarser resolution", MaxRows)

// Query selects history.
type Query struct {
	// UID and Exe select one app when Exe is set.
	UID uint32
	Exe string
	// OnlyUID, when set, selects the apps of one uid.
	OnlyUID *uint32
	// From and Until bound the range; buckets that start in [From, Until)
	// (From rounded down to its bucket) are returned.
	From, Until time.Time
	By          Resolution
}

// Bucket is the bytes of one bucket.
type Bucket struct {
	Start  time.Time
	Rx, Tx uint64
}

// Series is one app's history over a query's range.
type Series struct {
	Key
	Name    string
	Rx, Tx  uint64 // over the range
	Buckets []Bucket
}

// Query returns the apps with traffic in q's range (most bytes first),
// pending samples included.
func (s *Store) Query(q Query) ([]Series, error) {
	from := q.By.start(q.From.Unix(), s.cfg.Loc)
	until := q.Until.Unix()
	if until <= from {
		return []Series{}, nil
	}
	type cell = map[int64]*counts
	apps := map[Key]*Series{}
	cells := map[Key]cell{}
	add := func(k Key, name string, b int64, rx, tx uint64) {
		sr := apps[k]
		if sr == nil {
			sr = &Series{Key: k}
			apps[k] = sr
			cells[k] = cell{}
		}
		if name != "" {
			sr.Name = name
		}
		c := cells[k][b]
		if c == nil {
			c = &counts{}
			cells[k][b] = c
		}
		c.rx += rx
		c.tx += tx
	}
	sqlq := "SELECT a.uid, a.exe, a.name, x.t, x.rx, x.tx FROM " + q.By.table() + " x JOIN apps a ON a.id = x.app WHERE x.t >= ? AND x.t < ?"
	args := []any{from, until}
	if q.Exe != "" {
		sqlq += " AND a.uid = ? AND a.exe = ?"
		args = append(args, q.UID, q.Exe)
	}
	if q.OnlyUID != nil {
		sqlq += " AND a.uid = ?"
		args = append(args, *q.OnlyUID)
	}
	sqlq += fmt.Sprintf(" LIMIT %d", MaxRows+1)
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	rows, err := db.Query(sqlq, args...)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	n := 0
	for rows.Next() {
		var k Key
		var name string
		var t, rx, tx int64
		if err := rows.Scan(&k.UID, &k.Exe, &name, &t, &rx, &tx); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read history: %w", err)
		}
		if n++; n > MaxRows {
			rows.Close()
			return nil, ErrTooLarge
		}
		add(k, name, q.By.start(t, s.cfg.Loc), uint64(rx), uint64(tx))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	s.mu.Lock()
	for k, p := range s.pending {
		if (q.Exe != "" && (k.UID != q.UID || k.Exe != q.Exe)) || (q.OnlyUID != nil && k.UID != *q.OnlyUID) {
			continue
		}
		for m, c := range p.minutes {
			if m >= from && m < until {
				add(k, p.name, q.By.start(m, s.cfg.Loc), c.rx, c.tx)
			}
		}
	}
	s.mu.Unlock()
	return s.series(apps, cells), nil
}

func (s *Store) series(apps map[Key]*Series, cells map[Key]map[int64]*counts) []Series {
	out := make([]Series, 0, len(apps))
	for k, sr := range apps {
		for b, c := range cells[k] {
			sr.Buckets = append(sr.Buckets, Bucket{Start: time.Unix(b, 0).In(s.cfg.Loc), Rx: c.rx, Tx: c.tx})
			sr.Rx += c.rx
			sr.Tx += c.tx
		}
		sort.Slice(sr.Buckets, func(i, j int) bool { return sr.Buckets[i].Start.Before(sr.Buckets[j].Start) })
		if sr.Name == "" {
			sr.Name = baseName(k.Exe)
		}
		out = append(out, *sr)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Rx+out[i].Tx, out[j].Rx+out[j].Tx
		if a != b {
			return a > b
		}
		if out[i].UID != out[j].UID {
			return out[i].UID < out[j].UID
		}
		return out[i].Exe < out[j].Exe
	})
	return out
}

func baseName(exe string) string {
	if i := strings.LastIndexByte(exe, '/'); i >= 0 && i < len(exe)-1 {
		return exe[i+1:]
	}
	return exe
}

// Usage returns app k's bytes from the start of from's day until now,
// pending samples included: a quota's usage in its period.
func (s *Store) Usage(k Key, from time.Time) (rx, tx uint64, err error) {
	ss, err := s.Query(Query{UID: k.UID, Exe: k.Exe, From: from, Until: s.cfg.Now().Add(time.Hour), By: Day})
	if err != nil || len(ss) == 0 {
		return 0, 0, err
	}
	return ss[0].Rx, ss[0].Tx, nil
}
