package gui

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The Fake's traffic history and quotas (StatsBackend).

// SetHistory replaces the history the Fake serves: per app, hourly buckets.
func (f *Fake) SetHistory(h []api.AppHistory) {
	f.mu.Lock()
	f.history = h
	f.mu.Unlock()
}

// SetQuotas replaces the Fake's quotas.
func (f *Fake) SetQuotas(qs []api.Quota) {
	f.mu.Lock()
	f.quotas = append([]api.Quota(nil), qs...)
	f.mu.Unlock()
}

// History implements StatsBackend: the buckets in [from, until), summed
// into hours or days (local time).
func (f *Fake) History(ctx context.Context, exe string, uid uint32, from, until time.Time, by string) ([]api.AppHistory, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.AppHistory
	for _, a := range f.history {
		if exe != "" && (a.Exe != exe || a.UID != uid) {
			continue
		}
		sums := map[int64]*api.HistoryBucket{}
		r := api.AppHistory{Exe: a.Exe, UID: a.UID, Name: a.Name}
		for _, b := range a.Buckets {
			t := time.Unix(b.Start, 0)
			if t.Before(from) || !t.Before(until) {
				continue
			}
			if by != api.HistoryHour {
				y, m, d := t.Date()
				t = time.Date(y, m, d, 0, 0, 0, 0, t.Location())
			}
			s := sums[t.Unix()]
			if s == nil {
				s = &api.HistoryBucket{Start: t.Unix()}
				sums[t.Unix()] = s
			}
			s.RxBytes += b.RxBytes
			s.TxBytes += b.TxBytes
			r.RxBytes += b.RxBytes
			r.TxBytes += b.TxBytes
		}
		if len(sums) == 0 {
			continue
		}
		for _, s := range sums {
			r.Buckets = append(r.Buckets, *s)
		}
		sort.Slice(r.Buckets, func(i, j int) bool { return r.Buckets[i].Start < r.Buckets[j].Start })
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RxBytes+out[i].TxBytes > out[j].RxBytes+out[j].TxBytes })
	return out, nil
}

// Quotas implements StatsBackend.
func (f *Fake) Quotas(ctx context.Context) ([]api.Quota, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Quota(nil), f.quotas...), nil
}

// SetQuota implements StatsBackend (recorded as a FakeCall "SetQuota").
func (f *Fake) SetQuota(ctx context.Context, q api.Quota) error {
	return f.record(FakeCall{Method: "SetQuota", Exe: q.Exe, UID: q.UID, Quota: q}, func() {
		q.State = api.QuotaOK
		for i := range f.quotas {
			if f.quotas[i].Exe == q.Exe && f.quotas[i].UID == q.UID {
				q.Used = f.quotas[i].Used
				f.quotas[i] = q
				return
			}
		}
		f.quotas = append(f.quotas, q)
	})
}

// RemoveQuota implements StatsBackend.
func (f *Fake) RemoveQuota(ctx context.Context, exe string, uid uint32) error {
	return f.record(FakeCall{Method: "RemoveQuota", Exe: exe, UID: uid}, func() {
		for i := range f.quotas {
			if f.quotas[i].Exe == exe && f.quotas[i].UID == uid {
				f.quotas = append(f.quotas[:i], f.quotas[i+1:]...)
				return
			}
		}
	})
}

// GeneratedHistory is a week (days) of hourly history ending at now for a
// few desktop apps, with evening peaks and a big game download: the
// Statistics view's test and screenshot data.
func GeneratedHistory(now time.Time, days int) []api.AppHistory {
	apps := []struct {
		name, exe string
		rx, tx    float64 // MB an hour at the daily peak
		phase     float64
	}{
		{"Steam", "/usr/lib/steam/steam", 1800, 20, 20},
		{"Firefox", "/usr/lib/firefox/firefox", 350, 40, 14},
		{"Spotify", "/usr/share/spotify/spotify", 120, 4, 10},
		{"Thunderbird", "/usr/lib/thunderbird/thunderbird", 40, 15, 9},
		{"Dropbox", "/opt/dropbox/dropbox", 30, 160, 3},
		{"apt", "/usr/lib/apt/methods/http", 90, 2, 6},
		{"Signal", "/opt/Signal/signal-desktop", 12, 8, 18},
		{"ssh", "/usr/bin/ssh", 3, 2, 11},
	}
	start := now.Truncate(time.Hour).Add(-time.Duration(days*24) * time.Hour)
	var out []api.AppHistory
	for i, a := range apps {
		h := api.AppHistory{Name: a.name, Exe: a.exe, UID: 1000}
		for t := start; t.Before(now); t = t.Add(time.Hour) {
			hour := float64(t.Hour())
			shape := math.Max(0, math.Cos((hour-a.phase)/24*2*math.Pi))
			day := float64(t.YearDay()%7+i) / 7
			if a.name == "Steam" && t.Weekday() != time.Saturday && t.Weekday() != time.Sunday && t.Weekday() != time.Wednesday {
				shape /= 8
			}
			rx := uint64(a.rx * 1e6 * shape * (0.6 + 0.4*day))
			tx := uint64(a.tx * 1e6 * shape * (0.6 + 0.4*day))
			if rx+tx == 0 {
				continue
			}
			h.Buckets = append(h.Buckets, api.HistoryBucket{Start: t.Unix(), RxBytes: rx, TxBytes: tx})
		}
		out = append(out, h)
	}
	return out
}
