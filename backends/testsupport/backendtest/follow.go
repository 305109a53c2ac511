//go:build linux

package backendtest

import (
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// FollowHarness tells RunFollowAccepted how to exercise one throttler that
// implements backends.SocketFollower.
type FollowHarness struct {
	// New returns a fresh, uninitialised backend for the namespace at netns.
	New func(t *testing.T, netns string) backends.Throttler
	// Upload says the backend limits what targets send (else what they
	// receive).
	Upload bool
	// Placer gives the target its cgroup, as the manager would.
	Placer backends.Placer
	// Matched returns how many sockets b matches by identity (cookie).
	Matched func(t *testing.T, b backends.Throttler) int
	// PacesProcesses says the backend also paces every TCP socket the
	// target's processes hold (ebpf_cgroup upload), so the accepted
	// connection is slowed before FollowSockets too: the check that it
	// runs free first is left out.
	PacesProcesses bool
}

// RunFollowAccepted: a server limited after it started listening accepts a
// connection. The connection carries the listener's old cgroup, so the
// target's cgroup does not catch it; FollowSockets (which the helper's
// engine runs once a second) puts it under the limit by cookie, and forgets
// the cookie when the connection closes. Rates are the server's side as
// tcp_info counts them.
func RunFollowAccepted(t *testing.T, h FollowHarness) {
	bed := testenv.NewBed(t)
	b := h.New(t, testenv.Path(bed.Local))
	if err := b.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { b.Cleanup() })
	f, ok := b.(backends.SocketFollower)
	if !ok {
		t.Fatalf("%s does not implement backends.SocketFollower", b.Name())
	}
	serveMode, clientMode := "sink", "send"
	if h.Upload {
		serveMode, clientMode = "source", "recv" // the server sends
	}
	pid := bed.StartServer(bed.Local, serveMode, "[::]:5230", false).Process.Pid
	target := backends.Target{ID: "server", Kind: backends.TargetProcess, PIDs: []int{pid}}
	cg, err := h.Placer.Place(target.ID, target.PIDs)
	if err != nil {
		t.Fatalf("place the server: %v", err)
	}
	t.Cleanup(func() { h.Placer.Release(target.ID) })
	target.Cgroup = cg
	const rate = 1_000_000
	if err := b.SetLimit(target, backends.Limit{Rate: rate}); err != nil {
		t.Fatalf("SetLimit: %v", err)
	}
	if err := f.FollowSockets(target); err != nil {
		t.Fatalf("FollowSockets with only the listener: %v", err)
	}
	listening := h.Matched(t, b)
	cl := bed.StartClient(bed.Peer, clientMode, testenv.LocalIP+":5230", 20*time.Second, time.Second)
	tcp := testenv.NewTCPCounter(t, bed.Local)
	time.Sleep(time.Second)
	before := tcp.Rate(t, h.Upload, time.Second, pid)
	t.Logf("accepted connection, not yet followed: %.0f B/s", before)
	if before < 3*rate && !h.PacesProcesses {
		t.Errorf("the accepted connection ran at %.0f B/s before FollowSockets; this test expects it unlimited (listener's cgroup)", before)
	}
	if err := f.FollowSockets(target); err != nil {
		t.Fatalf("FollowSockets: %v", err)
	}
	following := h.Matched(t, b)
	time.Sleep(1500 * time.Millisecond)
	after := tcp.Rate(t, h.Upload, 2*time.Second, pid)
	t.Logf("after FollowSockets: %.0f B/s (limit %d); sockets matched: %d with the listener alone, %d now", after, rate, listening, following)
	testenv.Settles(t, "the followed connection", after, func() float64 {
		return tcp.Rate(t, h.Upload, 3*time.Second, pid)
	}, rate, 0.3, 1.25)
	if following <= listening {
		t.Errorf("%d sockets matched after following the connection, %d before", following, listening)
	}
	// Nothing changed: a no-op.
	if err := f.FollowSockets(target); err != nil {
		t.Fatalf("FollowSockets again: %v", err)
	}
	// The client goes; the server closes its end once the FIN is through
	// the shaper.
	cl.Cmd.Process.Kill()
	cl.Wait()
	for end := time.Now().Add(10 * time.Second); len(testenv.SocketInodes([]int{pid})) > 1 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.FollowSockets(target); err != nil {
		t.Fatalf("FollowSockets after the connection closed: %v", err)
	}
	if n := h.Matched(t, b); n != listening {
		t.Errorf("%d sockets matched after the connection closed; %d before it opened", n, listening)
	}
	if err := f.FollowSockets(backends.Target{ID: "no-such-target", PIDs: []int{pid}}); err != nil {
		t.Errorf("FollowSockets of an unknown target: %v", err)
	}
}
