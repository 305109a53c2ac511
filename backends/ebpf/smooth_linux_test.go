//go:build linux && !no_ebpf

package ebpf

import (
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestClampSmooth: after a limit is set on a running transfer, every
// one-second window the receiving application counts from 3 s after the
// clamp is within ±15 % of the limit for uploads (issue #13: the bucket
// alone ran them 1.31, 1.31, 1.31, 0 MB/s; paced, they hold). Downloads
// are policed (the sender is not ours to pace) and still swing: windows of
// 0.84–1.20 × the limit were seen, and once 1.384 (loaded machine, 3–4 s),
// so they are held to ±45 % per window and ±15 % over the four until that
// is fixed (issue #13). The bench reports the real spread (CV).
func TestClampSmooth(t *testing.T) {
	requireEBPF(t)
	const rate = 1_000_000
	windows := func(t *testing.T, tol float64, window func() float64) {
		time.Sleep(2 * time.Second)
		// got[0] is the 2–3 s window: not judged, but a stall there and its
		// catch-up at 3–4 s are one event (below).
		var got []float64
		for i := 0; i < 5; i++ {
			got = append(got, window()/rate)
		}
		t.Logf("1-s windows ÷ limit from 2 s after the clamp: %.3f", got)
		bad, sum, n := 0, 0.0, 0
		for i := 1; i < len(got); i++ {
			sum, n = sum+got[i], n+1
			if within(got[i], 1, tol) {
				continue
			}
			if j := stallPartner(got, i); j >= 0 {
				t.Logf("the %d–%d s window (%.3f) and the %d–%d s one (%.3f) are a stall and its catch-up (the policer's bucket refilled during the stall); together %.3f",
					i+2, i+3, got[i], j+2, j+3, got[j], (got[i]+got[j])/2)
				if j == 0 {
					sum, n = sum+got[0], n+1
				}
				continue
			}
			bad++
		}
		if bad > 0 {
			t.Errorf("%d of %d one-second windows from 3 s outside ±%.0f %% of the limit", bad, len(got)-1, tol*100)
		}
		if mean := sum / float64(n); !within(mean, 1, 0.15) {
			t.Errorf("the windows from 3 s average %.3f × the limit", mean)
		}
	}
	t.Run("upload", func(t *testing.T) {
		u := newUploadBed(t)
		b := NewUpload(backends.Options{NetNS: testenv.Path(u.bed.Local)})
		initThrottler(t, b)
		tg, s := u.sender(t, u.bed.PeerIP)
		tg = place(t, newPlacer(t), tg)
		if err := b.SetLimit(tg, backends.Limit{Rate: rate}); err != nil {
			t.Fatal(err)
		}
		windows(t, 0.15, func() float64 { return rateOf(s.Total, time.Second) })
	})
	t.Run("download", func(t *testing.T) {
		d := newDownloadBed(t)
		b := NewDownload(backends.Options{NetNS: testenv.Path(d.bed.Local)})
		initThrottler(t, b)
		tg, l := d.receiver(t, d.bed.PeerIP)
		time.Sleep(300 * time.Millisecond)
		tg = place(t, newPlacer(t), tg)
		if err := b.SetLimit(tg, backends.Limit{Rate: rate}); err != nil {
			t.Fatal(err)
		}
		windows(t, 0.45, func() float64 { return l.RateOver(t, time.Second) })
	})
}

// stallPartner returns the window next to got[i] that is on the other side
// of the limit (a stall before a policer's catch-up, or the catch-up after a
// stall) when the two together hold the limit within ±15 %, else -1. A
// download bucket holds 600 ms of tokens, so after a stall (a retransmission
// timeout, a starved receiver) the next window can run at up to ~1.6 × the
// limit: 1.679 once in CI, after which the windows ran 1.035, 0.931, 0.965.
func stallPartner(got []float64, i int) int {
	for _, j := range []int{i - 1, i + 1} {
		if j < 0 || j >= len(got) {
			continue
		}
		if (got[i] > 1) != (got[j] > 1) && within((got[i]+got[j])/2, 1, 0.15) {
			return j
		}
	}
	return -1
}
