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
// over the bus (target p99 ≤ 10 ms), the cost of GetApps, which clients
// poll at 1 Hz, the time from SetProcessLimit to the receiver's rate being
// within ±5 % of the limit for good (settle_bench_test.go; issue #13:
// median ≤ 0.5 s, max ≤ 1 s) and an unlimited neighbour's rate beside a
// limited flow ÷ alone (neighbour_bench_test.go; ≥ 0.95). BENCH_PARTS
// (calls, settle, neighbour) narrows the run.
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
		if os.Getenv("BENCH_PARTS") == "" || strings.Contains(os.Getenv("BENCH_PARTS"), "calls") {
			rows = append(rows, callLatency(t, bed, c, backend, h.cmd.Process.Pid)...)
		}
		if !fake && (os.Getenv("BENCH_PARTS") == "" || strings.Contains(os.Getenv("BENCH_PARTS"), "settle")) { // fakes limit nothing
			rows = append(rows, timeToLimit(t, bed, c, backend, sink.Process.Pid)...)
		}
		if !fake && (os.Getenv("BENCH_PARTS") == "" || strings.Contains(os.Getenv("BENCH_PARTS"), "neighbour")) {
			rows = append(rows, neighbourShare(t, bed, c, backend)...)
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
	fmt.Println("targets: limiting call p99 ≤ 10 ms; time to the limited rate within ±5 % median ≤ 0.5 s, max ≤ 1 s; neighbour ÷ solo ≥ 0.95")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average during the run: %s", b)
	}
}

// callLatency measures limiting calls and GetApps against helper pid,
// with a process in the bed to limit while no traffic runs: round trips
// measure the helper and the bus, not a CPU shared with 10 Gbit/s.
func callLatency(t *testing.T, bed *testenv.Bed, c *client.Client, backend string, pid int) []benchRow {
	ctx := context.Background()
	var rows []benchRow
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

	return rows
}

// benchRow is one line of the helper bench's table.
type benchRow struct{ backend, what, p50, p99, max, note string }

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
