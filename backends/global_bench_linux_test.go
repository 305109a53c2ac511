//go:build bench && linux

package backends_test

import (
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
)

// expectedShares is what HTB's model gives two active priorities a and b
// under one limit: each its weight's share of all four weights, and the
// rest to critical if one of them is, else split by weight.
func expectedShares(a, b backends.AppPriority) (float64, float64) {
	const total = 15.0 // 1 + 2 + 4 + 8
	wa, wb := float64(a.Weight()), float64(b.Weight())
	ra, rb := wa/total, wb/total
	rest := 1 - ra - rb
	switch {
	case a == backends.PriorityCritical && b != backends.PriorityCritical:
		ra += rest
	case b == backends.PriorityCritical && a != backends.PriorityCritical:
		rb += rest
	default:
		ra += rest * wa / (wa + wb)
		rb += rest * wb / (wa + wb)
	}
	return ra, rb
}

// TestBenchGlobal prints, beside each throttler pair, the share accuracy
// of every priority pair under a 10 MB/s global download limit (measured
// ratio ÷ the model's) and what one download and two (high, low) get of
// the global limit at 1, 10 and 100 MB/s.
func TestBenchGlobal(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			g := newGlobalBed(t, p.up, p.down)
			const limit = 10_000_000
			if err := g.mgr.SetGlobal(backends.GlobalLimit{Down: limit}); err != nil {
				t.Fatal(err)
			}
			ps := backends.Priorities
			for i := 0; i < len(ps); i++ {
				for j := i + 1; j < len(ps); j++ {
					a := g.download(t, "a", backends.Limits{Priority: ps[i]})
					b := g.download(t, "b", backends.Limits{Priority: ps[j]})
					time.Sleep(2 * time.Second)
					r := g.rates(t, 5*time.Second, b, a)
					ea, eb := expectedShares(ps[i], ps[j])
					t.Logf("%-11s %-8s vs %-8s: %.2f:1 (model %.2f:1, accuracy %.3f), together %.3f of 10 MB/s",
						p.name, ps[j], ps[i], r[0]/r[1], eb/ea, (r[0]/r[1])/(eb/ea), (r[0]+r[1])/limit)
					g.stop(t, "a", a)
					g.stop(t, "b", b)
				}
			}
			for _, rate := range []backends.Rate{1_000_000, 10_000_000, 100_000_000} {
				if err := g.mgr.SetGlobal(backends.GlobalLimit{Down: rate}); err != nil {
					t.Fatal(err)
				}
				one := g.download(t, "one", backends.Limits{})
				time.Sleep(2 * time.Second)
				r1 := g.rates(t, 5*time.Second, one)
				hi := g.download(t, "hi", backends.Limits{Priority: backends.PriorityHigh})
				time.Sleep(2 * time.Second)
				r2 := g.rates(t, 5*time.Second, one, hi)
				t.Logf("%-11s global download %5.0f MB/s: one app %.3f of it; normal + high %.3f (%.2f:1, model 2:1)",
					p.name, float64(rate)/1e6, r1[0]/float64(rate), (r2[0]+r2[1])/float64(rate), r2[1]/r2[0])
				g.stop(t, "one", one)
				g.stop(t, "hi", hi)
			}
		})
	}
}

// TestBenchGlobalUpload prints the upload side: high vs low under a 10 MB/s
// global upload limit, then the high app with its own 2 MB/s upload limit.
func TestBenchGlobalUpload(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			g, hi, lo, r := highLow(t, p, true, 5*time.Second)
			t.Logf("%-11s upload high %.0f B/s, low %.0f B/s: %.2f:1 (model 4:1), together %.3f of 10 MB/s",
				p.name, r[0], r[1], r[0]/r[1], (r[0]+r[1])/shareLimit)
			r, _ = g.ownLimit(t, true, hi, lo, 5*time.Second)
			t.Logf("%-11s upload high with its own 2 MB/s limit %.0f B/s, low %.0f B/s, together %.3f of 10 MB/s",
				p.name, r[0], r[1], (r[0]+r[1])/shareLimit)
		})
	}
}
