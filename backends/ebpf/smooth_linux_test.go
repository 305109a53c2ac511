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
		time.Sleep(3 * time.Second)
		bad := 0
		var got []float64
		for i := 0; i < 4; i++ {
			r := window()
			got = append(got, r/rate)
			if !within(r, rate, tol) {
				bad++
			}
		}
		t.Logf("1-s windows ÷ limit from 3 s after the clamp: %.3f", got)
		if bad > 0 {
			t.Errorf("%d of %d one-second windows outside ±%.0f %% of the limit", bad, len(got), tol*100)
		}
		if mean := (got[0] + got[1] + got[2] + got[3]) / 4; !within(mean, 1, 0.15) {
			t.Errorf("the four windows average %.3f × the limit", mean)
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
