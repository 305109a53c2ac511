//go:build bench && linux

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// settleLimit is the limit timeToLimit sets on a free-running flow.
const settleLimit = 2_000_000

// settleDir is one direction of timeToLimit.
type settleDir struct {
	name, mode, port string
	lim              func(r uint64) api.Limit
}

var settleDirs = []settleDir{
	{"upload", "send", "5201", func(r uint64) api.Limit { return api.Limit{Up: r} }},
	{"download", "recv", "5202", func(r uint64) api.Limit { return api.Limit{Down: r} }},
}

// poller is a tcp_info poll whose readings are on a known clock: T of a
// sample is seconds since start.
type poller struct {
	start   time.Time
	samples func() []testenv.Sample
}

func startPoll(t *testing.T, ns string, sent bool, stop <-chan struct{}, pid int) poller {
	start := time.Now()
	return poller{start, testenv.NewTCPCounter(t, ns).Poll(sent, 50*time.Millisecond, stop, pid)}
}

// since is the time of at on the poll's clock.
func (p poller) since(at time.Time) float64 { return at.Sub(p.start).Seconds() }

// timeToLimit sets a 2 MB/s limit on a free-running upload, then download,
// five times each, and reports the time from the call to the rate within
// ±5 % for good, at the receiver (upload: bytes the peer's sink received;
// download: bytes the local client received, both from tcp_info every
// 50 ms), and the rate over the last 2 of 4 s after the call. sinkPID is
// the sink server's. BENCH_TRACE=1 prints each case's first rep per 100 ms.
func timeToLimit(t *testing.T, bed *testenv.Bed, c *client.Client, backend string, sinkPID int) []benchRow {
	var rows []benchRow
	for _, dir := range settleDirs {
		if only := os.Getenv("BENCH_DIRS"); only != "" && !strings.Contains(only, dir.name) {
			continue
		}
		rows = append(rows, settleCase(t, bed, c, backend, sinkPID, dir)...)
	}
	return rows
}

func settleCase(t *testing.T, bed *testenv.Bed, c *client.Client, backend string, sinkPID int, dir settleDir) []benchRow {
	ctx := context.Background()
	load := bed.StartClient(bed.Local, dir.mode, bed.PeerIP+":"+dir.port, 40*time.Second, 50*time.Millisecond)
	stop := make(chan struct{})
	defer close(stop)
	// At the receiver: an upload's bytes_acked at the sender runs an
	// RTT ahead of it and is counted in acknowledgements.
	recv := startPoll(t, bed.Local, false, stop, load.PID)
	if dir.mode == "send" {
		recv = startPoll(t, bed.Peer, false, stop, sinkPID)
	}
	time.Sleep(time.Second)
	var settle, bite []time.Duration
	var steady []string
	reached := 0
	for rep := 0; rep < 5; rep++ {
		c.RemoveProcessLimit(ctx, int32(load.PID))
		time.Sleep(time.Second)
		at := time.Now()
		if err := c.SetProcessLimit(ctx, int32(load.PID), dir.lim(settleLimit)); err != nil {
			return []benchRow{{backend, "time to limit, " + dir.name, "-", "-", "-", err.Error()}}
		}
		time.Sleep(4 * time.Second)
		samples, callT := recv.samples(), recv.since(at)
		r := settleTime(samples, callT, settleLimit)
		if os.Getenv("BENCH_TRACE") != "" && (rep == 0 || os.Getenv("BENCH_TRACE") == "all") {
			printTrace(fmt.Sprintf("%s %s rep %d", backend, dir.name, rep), samples, callT, settleLimit, r)
		}
		bite = append(bite, r.bite)
		if r.settled {
			settle = append(settle, r.settle)
			reached++
		}
		steady = append(steady, fmt.Sprintf("%.3f", r.steady))
	}
	c.RemoveProcessLimit(ctx, int32(load.PID))
	load.Cmd.Process.Kill()
	rows := []benchRow{{backend, "time to ≤ 1.05×limit, " + dir.name, ms(percentile(bite, .5)), "", ms(percentile(bite, 1)), "2 MB/s limit on a free-running flow, at the receiver"}}
	note := fmt.Sprintf("reached in %d of 5; rate/limit 2–4 s after the call %s", reached, strings.Join(steady, " "))
	what := "time to within ±5 %, " + dir.name
	if reached == 0 {
		return append(rows, benchRow{backend, what, "never", "", "", note})
	}
	if reached < 5 {
		what += fmt.Sprintf(" (%d of 5 settled)", reached)
	}
	return append(rows, benchRow{backend, what, ms(percentile(settle, .5)), "", ms(percentile(settle, 1)), note})
}

// settled is what settleTime found.
type settled struct {
	bite    time.Duration // first 250 ms window at or below 1.05 × limit
	settle  time.Duration // first 500 ms window within ±5 % that stays so for the next second
	settled bool
	steady  float64 // mean rate / limit over the last 2 s
}

// settleTime analyses the readings of a poll in which a limit was set at
// callT (on the samples' clock; readings come every 50 ms, so times are
// known to 50 ms).
func settleTime(all []testenv.Sample, callT, limit float64) settled {
	r := settled{bite: -1}
	var samples []testenv.Sample
	for i, s := range all {
		if s.T > callT && i > 0 {
			if samples == nil {
				samples = append(samples, all[i-1]) // the reading the first window starts from
			}
			samples = append(samples, s)
		}
	}
	if len(samples) < 10 {
		return r
	}
	last := samples[len(samples)-1].T
	r.steady = testenv.RateBetween(samples, last-2, last) / limit
	for _, s := range samples {
		from := s.T
		if from+0.25 > last {
			break
		}
		if r.bite < 0 && testenv.RateBetween(samples, from, from+0.25) <= 1.05*limit {
			r.bite = time.Duration(max(from-callT, 0) * float64(time.Second))
		}
		if !r.settled && from+1.5 <= last {
			w := testenv.RateBetween(samples, from, from+0.5)
			next := testenv.RateBetween(samples, from+0.5, from+1.5)
			if w >= 0.95*limit && w <= 1.05*limit && next >= 0.95*limit && next <= 1.05*limit {
				r.settle = time.Duration(max(from-callT, 0) * float64(time.Second))
				r.settled = true
			}
		}
	}
	return r
}

// printTrace prints the rate ÷ limit per 100 ms from 0.3 s before the call
// to 3 s after it, and per 500 ms windows, for one rep.
func printTrace(what string, all []testenv.Sample, callT, limit float64, r settled) {
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s (rate ÷ limit per 100 ms from the call; bite %v, settle %v %v):\n ", what, r.bite, r.settle, r.settled)
	for x := -0.3; x < 3.0-1e-9; x += 0.1 {
		fmt.Fprintf(&b, " %+.1f:%.2f", x, testenv.RateBetween(all, callT+x, callT+x+0.1)/limit)
	}
	b.WriteString("\n  per 500 ms:")
	for x := 0.0; x < 3.5-1e-9; x += 0.5 {
		fmt.Fprintf(&b, " %.1f:%.3f", x, testenv.RateBetween(all, callT+x, callT+x+0.5)/limit)
	}
	fmt.Println(b.String())
}
