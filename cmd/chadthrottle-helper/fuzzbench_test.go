//go:build bench && linux

package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// TestBenchFuzzBusAsUser sends at least 100,000 random method calls with
// random arguments (wrong signatures, hostile strings, the user's own pids
// and others') as an unprivileged user with monitor and limit-own to the
// real helper with the real backends in a bed: no crash, no call over 1 s,
// and no kernel object left once the user's processes are gone and the
// helper stops.
func TestBenchFuzzBusAsUser(t *testing.T) {
	testenv.RequireRoot(t)
	bed := testenv.NewBed(t)
	bus := bustest.StartBus(t)
	bustest.InstallPolicy(t)
	own := bustest.AddUser(t)
	bustest.WriteRules(t, ownRules(own, false))
	bustest.StartPolkit(t, bus)
	in := realInstance(t, bus, bed, "--user-call-rate", "1000000")
	h := in.start(t)
	peer := bustest.NewPeer(t, bus, &own)
	total, over, ok := 0, 0, 0
	var slowest time.Duration
	errs := map[string]int{}
	lastTransport := ""
	begin := time.Now()
	for round := int64(0); total < 100_000; round++ {
		st := peer.Fuzz(t, 25_000, round)
		total += st.Calls
		over += st.Over1s
		ok += st.OK
		slowest = max(slowest, st.Max)
		for k, v := range st.Errors {
			errs[k] += v
		}
		if st.LastFail != "" {
			lastTransport = st.LastFail
		}
		if st.Lost {
			t.Fatalf("round %d: the connection broke after %d calls (%s):\n%s", round, st.Calls, st.LastFail, h.out.String())
		}
		select {
		case <-h.exited:
			t.Fatalf("round %d: the helper exited: %v\n%s", round, h.err, h.out.String())
		default:
		}
	}
	took := time.Since(begin)
	fmt.Printf("\nD-Bus fuzz as an unprivileged user (monitor + limit-own), real helper and backends:\n")
	fmt.Printf("  %d calls in %.1f s (%.0f/s), %d succeeded, slowest %v, %d over 1 s\n", total, took.Seconds(),
		float64(total)/took.Seconds(), ok, slowest.Round(time.Millisecond), over)
	for k, v := range errs {
		fmt.Printf("  %-55s %d\n", k, v)
	}
	if lastTransport != "" {
		// godbus refuses to send what D-Bus cannot carry (invalid UTF-8,
		// NUL in a string): those calls never reach the helper.
		fmt.Printf("  last transport error (client side): %s\n", lastTransport)
	}
	if over > 0 {
		t.Errorf("%d calls took over 1 s (slowest %v)", over, slowest)
	}
	c := connect(t, bus.Address)
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("root after the fuzz: %v", err)
	}
	// The user's processes are gone with the fuzzing child: no target is
	// left, and after SIGTERM nothing at all.
	deadline := time.Now().Add(5 * time.Second)
	for k := readKernelState(t, bed, in); k.targets() > 0; k = readKernelState(t, bed, in) {
		if time.Now().After(deadline) {
			t.Errorf("targets left after the fuzzing user's processes exited: %+v", k)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := h.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	if k := readKernelState(t, bed, in); !k.empty() {
		t.Errorf("kernel state left after SIGTERM: %+v", k)
	}
}
