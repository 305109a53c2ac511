//go:build linux

package tc

import (
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/procnet"
	"github.com/chadthrottle/chadthrottle/backends/testenv"
)

// TestFollowAcceptedSockets: a server limited after it started listening
// accepts a connection. The connection carries the listener's old cgroup,
// so the target's cgroup does not catch it; FollowSockets (which the
// helper's engine runs once a second) puts it under the limit by cookie.
func TestFollowAcceptedSockets(t *testing.T) {
	for _, d := range directions() {
		t.Run(d.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.newBackend(t, d.dir)
			if err := b.Init(); err != nil {
				t.Fatalf("Init: %v", err)
			}
			t.Cleanup(func() { b.Cleanup() })
			f, ok := b.(backends.SocketFollower)
			if !ok {
				t.Fatalf("%s does not implement backends.SocketFollower", b.Name())
			}
			serveMode, clientMode := "source", "recv" // upload: the server sends
			if d.dir == ingress {
				serveMode, clientMode = "sink", "send"
			}
			srv := e.bed.StartServer(e.bed.Local, serveMode, "[::]:5230", false)
			pid := srv.Process.Pid
			target := e.place(t, "server", backends.TargetProcess, pid)
			const rate = 1_000_000
			if err := b.SetLimit(target, backends.Limit{Rate: rate}); err != nil {
				t.Fatalf("SetLimit: %v", err)
			}
			if err := f.FollowSockets(target); err != nil {
				t.Fatalf("FollowSockets with only the listener: %v", err)
			}
			listening := cookies(t, b)
			cl := e.bed.StartClient(e.bed.Peer, clientMode, testenv.LocalIP+":5230", 20*time.Second, time.Second)
			time.Sleep(time.Second)
			before := e.rate(t, d.dir, time.Second, pid)
			t.Logf("accepted connection, not yet followed: %.0f B/s", before)
			if before < 3*rate {
				t.Errorf("the accepted connection ran at %.0f B/s before FollowSockets; this test expects it unlimited (listener's cgroup)", before)
			}
			if err := f.FollowSockets(target); err != nil {
				t.Fatalf("FollowSockets: %v", err)
			}
			time.Sleep(1500 * time.Millisecond)
			after := e.rate(t, d.dir, 2*time.Second, pid)
			t.Logf("after FollowSockets: %.0f B/s (limit %d)", after, rate)
			testenv.Settles(t, "the followed connection", after, func() float64 {
				return e.rate(t, d.dir, 3*time.Second, pid)
			}, rate, 0.3, 1.25)
			// Nothing changed: a no-op; the limit still holds.
			if err := f.FollowSockets(target); err != nil {
				t.Fatalf("FollowSockets again: %v", err)
			}
			cl.Cmd.Process.Kill()
			cl.Wait()
			// The server closes its end once the FIN is through the shaper.
			for end := time.Now().Add(10 * time.Second); len(procnet.SocketInodesOf([]int{pid})) > 1 && time.Now().Before(end); {
				time.Sleep(50 * time.Millisecond)
			}
			if err := f.FollowSockets(target); err != nil {
				t.Fatalf("FollowSockets after the connection closed: %v", err)
			}
			if n := cookies(t, b); n != listening {
				t.Errorf("%d socket cookies mapped after the connection closed; %d before it opened", n, listening)
			}
			if err := f.FollowSockets(backends.Target{ID: "no-such-target", PIDs: []int{pid}}); err != nil {
				t.Errorf("FollowSockets of an unknown target: %v", err)
			}
		})
	}
}

// cookies counts the socket cookies in b's classifier map.
func cookies(t *testing.T, b backends.Throttler) int {
	t.Helper()
	var s *shaper
	switch x := b.(type) {
	case *Upload:
		s = x.shaper
	case *Download:
		s = x.shaper
	default:
		t.Fatalf("unexpected backend type %T", b)
	}
	var k uint64
	var v classifyTarget
	n := 0
	for it := s.objs.classifyMaps.Cookies.Iterate(); it.Next(&k, &v); {
		n++
	}
	return n
}
