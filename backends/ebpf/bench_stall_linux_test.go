//go:build bench && linux && !no_ebpf

package ebpf

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBenchUploadStall sets a 2 MB/s upload limit on a free-running flow
// BENCH_REPS times (default 15) and reads the receiving application's
// bytes every 25 ms: for each limit, the time until a 500-ms window and the
// second after it are within ±5 % of the limit, and whether the receiver
// got nothing for 100 ms in the first second (a segment the bucket stopped
// with nothing in flight waits for TCP's probe timer). It also prints how
// many segments the bucket let into debt as idle (throttle.c, take).
func TestBenchUploadStall(t *testing.T) {
	requireEBPF(t)
	const rate = 2_000_000
	reps := 15
	if n, err := strconv.Atoi(os.Getenv("BENCH_REPS")); err == nil && n > 0 && n <= 15 { // the sender runs 60 s (newUploadBed)
		reps = n
	}
	u := newUploadBed(t)
	b := NewUpload(backends.Options{NetNS: testenv.Path(u.bed.Local)}).(uploadThrottler)
	initThrottler(t, b)
	tg, s := u.sender(t, u.bed.PeerIP)
	tg = place(t, newPlacer(t), tg)
	var settles []time.Duration
	stalls, never := 0, 0
	var idle uint64
	for rep := 0; rep < reps; rep++ {
		b.RemoveLimit(tg.ID)
		time.Sleep(time.Second)
		at := time.Now()
		if err := b.SetLimit(tg, backends.Limit{Rate: rate}); err != nil {
			t.Fatal(err)
		}
		var samples []testenv.Sample // T: seconds since the call
		for last := s.Total(); time.Since(at) < 2500*time.Millisecond; {
			time.Sleep(25 * time.Millisecond)
			cur := s.Total()
			samples = append(samples, testenv.Sample{T: time.Since(at).Seconds(), Bytes: cur - last, Total: cur})
			last = cur
		}
		between := func(a, z float64) float64 { return testenv.RateBetween(samples, a, z) / rate }
		stalled := false
		for x := 0.1; x < 0.9; x += 0.025 {
			if between(x, x+0.1) < 0.05 {
				stalled = true
			}
		}
		if stalled {
			stalls++
		}
		settled := false
		for x := 0.0; x+1.5 <= 2.4; x += 0.025 {
			w, next := between(x, x+0.5), between(x+0.5, x+1.5)
			if w >= 0.95 && w <= 1.05 && next >= 0.95 && next <= 1.05 {
				settles = append(settles, time.Duration(x*float64(time.Second)))
				settled = true
				break
			}
		}
		if !settled {
			never++
		}
		idle += bucketIdle(t, b)
	}
	b.RemoveLimit(tg.ID)
	sort.Slice(settles, func(i, j int) bool { return settles[i] < settles[j] })
	med, worst := "-", "-"
	if len(settles) > 0 {
		med, worst = settles[len(settles)/2].String(), settles[len(settles)-1].String()
	}
	fmt.Printf("\nupload limit (2 MB/s) set on a free-running flow, %d times: time to within ±5 %% median %s, max %s (%d never within 2.4 s); "+
		"a 100-ms window of nothing in the first second after %d of them; segments passed into debt as idle: %d\n\n",
		reps, med, worst, never, stalls, idle)
}
