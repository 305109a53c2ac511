//go:build bench && linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// TestBenchHelperBus measures, against the real helper binary in a bed with
// the auto-selected and the tc backends: the round trip of limiting calls
// over the bus (target p99 ≤ 10 ms), the time from SetProcessLimit's reply
// to the sender's rate being within 5 % of the limit (target ≤ 1 s), and
// the cost of GetApps, which clients poll at 1 Hz.
func TestBenchHelperBus(t *testing.T) {
	testenv.RequireRoot(t)
	var rows []benchRow
	for _, v := range []struct {
		name  string
		extra []string
	}{
		{"fake", []string{"--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download"}},
		{"auto", nil},
		{"tc", []string{"--upload", "tc_htb", "--download", "ifb_tc"}},
	} {
		if only := os.Getenv("BENCH_VARIANTS"); only != "" && !strings.Contains(only, v.name) {
			continue // BENCH_VARIANTS=tc narrows the run while tuning
		}
		fake := v.name == "fake" // the bus, polkit-free server and engine alone
		bed := testenv.NewBed(t)
		bus := bustest.StartBus(t)
		sink := bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
		bed.StartServer(bed.Peer, "source", "[::]:5202", false)
		in := realInstance(t, bus, bed, v.extra...)
		if fake {
			in.bin = bustest.BuildBinary(t, "./cmd/chadthrottle-helper", "fakebackends")
		}
		h := in.start(t)
		c, err := client.Connect(bus.Address)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		st, _ := c.Status(ctx)
		backend := fmt.Sprintf("%s (%s/%s)", v.name, st.Upload, st.Download)
		// A process in the bed to limit while no traffic runs: round trips
		// measure the helper and the bus, not a CPU shared with 10 Gbit/s.
		sleeper := bed.Command(bed.Local, "sleep", "300")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		anchor := bed.Command(bed.Local, "sleep", "300")
		if err := anchor.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		target := int32(sleeper.Process.Pid)
		// The first limit builds the shaping tree and the last removes it
		// (tc keeps it 5 s: a limit right after reuses it); measure both,
		// then the usual case with another limit in place.
		var first, cold, last []time.Duration
		for i := 0; i < 24; i++ {
			if i%6 == 0 {
				time.Sleep(6 * time.Second) // past tc's grace: a cold first limit
			}
			t0 := time.Now()
			if err := c.SetProcessLimit(ctx, target, api.Limit{Up: 5_000_000, Down: 3_000_000}); err != nil {
				t.Fatal(err)
			}
			if i%6 == 0 {
				cold = append(cold, time.Since(t0))
			} else {
				first = append(first, time.Since(t0))
			}
			t0 = time.Now()
			if err := c.RemoveProcessLimit(ctx, target); err != nil {
				t.Fatal(err)
			}
			last = append(last, time.Since(t0))
		}
		rows = append(rows, benchRow{backend, "SetProcessLimit, first limit (cold)", ms(percentile(cold, .5)), ms(percentile(cold, .99)), ms(percentile(cold, 1)), "n=4, builds the shaping state"})
		rows = append(rows, benchRow{backend, "SetProcessLimit, first limit (again)", ms(percentile(first, .5)), ms(percentile(first, .99)), ms(percentile(first, 1)), "n=20, right after the last limit's removal"})
		rows = append(rows, benchRow{backend, "RemoveProcessLimit, last limit", ms(percentile(last, .5)), ms(percentile(last, .99)), ms(percentile(last, 1)), "n=24, unshapes; tc removes the tree 5 s later"})
		if err := c.SetProcessLimit(ctx, int32(anchor.Process.Pid), api.Limit{Up: 9_000_000, Down: 9_000_000}); err != nil {
			t.Fatal(err)
		}

		var newT, upd, rem, rule []time.Duration
		for i := 0; i < 200; i++ {
			t0 := time.Now()
			if err := c.SetProcessLimit(ctx, target, api.Limit{Up: uint64(5_000_000 + i*1000), Down: 3_000_000}); err != nil {
				t.Fatal(err)
			}
			newT = append(newT, time.Since(t0))
			for j := 0; j < 3; j++ {
				t0 = time.Now()
				if err := c.SetProcessLimit(ctx, target, api.Limit{Up: uint64(4_000_000 + i*1000 + j), Down: 3_000_000}); err != nil {
					t.Fatal(err)
				}
				upd = append(upd, time.Since(t0))
			}
			t0 = time.Now()
			if err := c.RemoveProcessLimit(ctx, target); err != nil {
				t.Fatal(err)
			}
			rem = append(rem, time.Since(t0))
			t0 = time.Now()
			if err := c.SetAppLimit(ctx, fmt.Sprintf("/opt/bench/app-%d", i), 0, api.Limit{Up: 1000}); err != nil {
				t.Fatal(err)
			}
			rule = append(rule, time.Since(t0))
		}
		for _, x := range []struct {
			what string
			d    []time.Duration
		}{{"SetProcessLimit, new target †", newT}, {"SetProcessLimit, update †", upd}, {"RemoveProcessLimit †", rem}, {"SetAppLimit (rule, no process)", rule}} {
			rows = append(rows, benchRow{backend, x.what, ms(percentile(x.d, .5)), ms(percentile(x.d, .99)), ms(percentile(x.d, 1)), fmt.Sprintf("n=%d", len(x.d))})
		}

		// GetApps: round trip, reply size, helper CPU beyond its own
		// sampling (measured over an equal idle period).
		var calls []time.Duration
		for i := 0; i < 300; i++ {
			t0 := time.Now()
			snap, err := c.Apps(ctx)
			if err != nil {
				t.Fatal(err)
			}
			calls = append(calls, time.Since(t0))
			if i == 0 {
				size := replySize(snap)
				rows = append(rows, benchRow{backend, "GetApps reply size", "", "", "", fmt.Sprintf("%d bytes for %d apps = %d B/s per client at 1 Hz", size, len(snap.Apps), size)})
			}
		}
		rows = append(rows, benchRow{backend, "GetApps round trip", ms(percentile(calls, .5)), ms(percentile(calls, .99)), ms(percentile(calls, 1)), "n=300"})
		pid := h.cmd.Process.Pid
		cpu0, t0 := testenv.ProcCPU(pid), time.Now()
		for i := 0; i < 500; i++ {
			if _, err := c.Apps(ctx); err != nil {
				t.Fatal(err)
			}
		}
		busy, wall := testenv.ProcCPU(pid)-cpu0, time.Since(t0)
		cpu1 := testenv.ProcCPU(pid)
		time.Sleep(wall)
		idle := testenv.ProcCPU(pid) - cpu1
		rows = append(rows, benchRow{backend, "GetApps helper CPU per call", "", "", "",
			fmt.Sprintf("%.0f µs (500 calls in %v: helper CPU %v, idle helper %v over the same time)",
				float64(busy-idle)/500/float64(time.Microsecond), wall.Round(time.Millisecond), busy, idle)})
		sleeper.Process.Kill()
		sleeper.Wait()
		c.RemoveProcessLimit(ctx, int32(anchor.Process.Pid))
		anchor.Process.Kill()
		anchor.Wait()

		if !fake { // fakes limit nothing
			rows = append(rows, timeToLimit(t, bed, c, backend, sink.Process.Pid)...)
		}
		c.Close()
		h.stop(t, syscall.SIGTERM)
	}
	fmt.Printf("\nchadthrottle-helper over D-Bus (real helper, real backends, namespace bed, 2-core VM)\n")
	fmt.Printf("%-34s %-34s %10s %10s %10s  %s\n", "backends", "measure", "p50", "p99", "max", "note")
	for _, r := range rows {
		fmt.Printf("%-34s %-34s %10s %10s %10s  %s\n", r.backend, r.what, r.p50, r.p99, r.max, r.note)
	}
	fmt.Println("† with another process's limit in place (the usual case)")
	fmt.Println("targets: limiting call p99 ≤ 10 ms (issue #13); time to the limited rate within ±5 %: median ≤ 0.5 s, max ≤ 1 s")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average during the run: %s", b)
	}
}

// benchRow is one line of the helper bench's table.
type benchRow struct{ backend, what, p50, p99, max, note string }

// timeToLimit sets a 2 MB/s limit on a free-running upload, then download,
// five times each, and reports the time to the limited rate and the steady
// rate over the last 2 of 4 s after the call: at the sender (tcp_info) and
// at the receiver (bytes the peer's sink server got, for the upload; the
// local client is the download's receiver). sinkPID is the sink server's.
func timeToLimit(t *testing.T, bed *testenv.Bed, c *client.Client, backend string, sinkPID int) []benchRow {
	ctx := context.Background()
	var rows []benchRow
	dirs := []struct {
		name, mode, port string
		lim              func(r uint64) api.Limit
	}{
		{"upload", "send", "5201", func(r uint64) api.Limit { return api.Limit{Up: r} }},
		{"download", "recv", "5202", func(r uint64) api.Limit { return api.Limit{Down: r} }},
	}
	for _, dir := range dirs {
		load := bed.StartClient(bed.Local, dir.mode, bed.PeerIP+":"+dir.port, 40*time.Second, 50*time.Millisecond)
		// Rates from tcp_info every 50 ms (acknowledged bytes for the
		// upload): the sender's write count runs ahead of the wire by
		// what its send buffer takes after the clamp.
		stopPoll := make(chan struct{})
		samples := testenv.NewTCPCounter(t, bed.Local).Poll(dir.mode == "send", 50*time.Millisecond, stopPoll, load.PID)
		received := samples
		if dir.mode == "send" {
			received = testenv.NewTCPCounter(t, bed.Peer).Poll(false, 50*time.Millisecond, stopPoll, sinkPID)
		}
		time.Sleep(time.Second)
		var settle, bite []time.Duration
		var ratios, atRecv, recvMean []string
		reached := 0
		for rep := 0; rep < 5; rep++ {
			const limit = 2_000_000
			c.RemoveProcessLimit(ctx, int32(load.PID))
			time.Sleep(time.Second)
			s0, r0 := len(samples()), len(received())
			if err := c.SetProcessLimit(ctx, int32(load.PID), dir.lim(limit)); err != nil {
				rows = append(rows, benchRow{backend, "time to limit, " + dir.name, "-", "-", "-", err.Error()})
				break
			}
			time.Sleep(4 * time.Second)
			r := settleTime(samples()[s0:], limit)
			bite = append(bite, r.bite)
			if r.settled {
				settle = append(settle, r.settle)
				reached++
			}
			ratios = append(ratios, fmt.Sprintf("%.3f", r.steady))
			rr := settleTime(received()[r0:], limit)
			atRecv = append(atRecv, fmt.Sprintf("%.3f", rr.steady))
			recvMean = append(recvMean, fmt.Sprintf("%.3f", rr.mean))
		}
		close(stopPoll)
		c.RemoveProcessLimit(ctx, int32(load.PID))
		load.Cmd.Process.Kill()
		rows = append(rows, benchRow{backend, "time to ≤ 1.05×limit, " + dir.name, ms(percentile(bite, .5)), "", ms(percentile(bite, 1)), "2 MB/s limit on a free-running flow"})
		// The last 2 s can hold the clamp's loss recovery: data that
		// reached the receiver out of order is delivered in order in a
		// rush (1.17 × the limit at both ends in the 2–4 s window under
		// load, the class passing 1.00); the mean from the first window
		// at the limit (all data since has passed the shaper) counts each
		// byte once.
		note := fmt.Sprintf("reached in %d of 5; rate/limit 2–4 s after the call %s (receiver %s; receiver's mean from the first window at ≤ 1.05×limit on %s)",
			reached, strings.Join(ratios, " "), strings.Join(atRecv, " "), strings.Join(recvMean, " "))
		if reached > 0 {
			rows = append(rows, benchRow{backend, "time to within ±5 %, " + dir.name, ms(percentile(settle, .5)), "", ms(percentile(settle, 1)), note})
		} else {
			rows = append(rows, benchRow{backend, "time to within ±5 %, " + dir.name, "never", "", "", note})
		}
	}
	return rows
}

// settled is what settleTime found.
type settled struct {
	bite    time.Duration // first 250 ms window at or below 1.05 × limit
	settle  time.Duration // first 500 ms window within ±5 % that stays so for the next second
	settled bool
	steady  float64 // mean rate / limit over the last 2 s
	mean    float64 // mean rate / limit from the bite on
}

// settleTime analyses the readings after a limit was set. samples start
// with the first reading after the call returned (readings come every
// 50 ms, so times are known to 50 ms).
func settleTime(samples []testenv.Sample, limit float64) settled {
	var r settled
	if len(samples) < 10 {
		return r
	}
	start := samples[0].T - 0.05
	last := samples[len(samples)-1].T
	r.steady = testenv.RateBetween(samples, last-2, last) / limit
	r.bite = -1
	for _, s := range samples {
		from := s.T
		if from+0.25 > last {
			break
		}
		if r.bite < 0 && testenv.RateBetween(samples, from, from+0.25) <= 1.05*limit {
			r.bite = time.Duration((from - start) * float64(time.Second))
			r.mean = testenv.RateBetween(samples, from, last) / limit
		}
		if !r.settled && from+1.5 <= last {
			w := testenv.RateBetween(samples, from, from+0.5)
			next := testenv.RateBetween(samples, from+0.5, from+1.5)
			if w >= 0.95*limit && w <= 1.05*limit && next >= 0.95*limit && next <= 1.05*limit {
				r.settle = time.Duration((from - start) * float64(time.Second))
				r.settled = true
			}
		}
	}
	return r
}

func replySize(snap api.Snapshot) int {
	m := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldReplySerial: dbus.MakeVariant(uint32(1)),
		dbus.FieldDestination: dbus.MakeVariant(":1.100"),
		dbus.FieldSender:      dbus.MakeVariant(":1.1"),
		dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(snap)),
	}, Body: []any{snap}}
	var buf bytes.Buffer
	if err := m.EncodeTo(&buf, nativeEndian()); err != nil {
		return -1
	}
	return buf.Len()
}
