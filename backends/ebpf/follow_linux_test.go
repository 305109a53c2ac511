//go:build linux && !no_ebpf

package ebpf

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
// helper's engine runs once a second) puts it in the target's bucket by
// cookie, and forgets the cookie when the connection closes.
func TestFollowAcceptedSockets(t *testing.T) {
	requireEBPF(t)
	for _, d := range []struct {
		name                  string
		serveMode, clientMode string // upload: the server sends
		new                   func(backends.Options) backends.Throttler
	}{
		{"upload", "source", "recv", func(o backends.Options) backends.Throttler { return NewUpload(o) }},
		{"download", "sink", "send", func(o backends.Options) backends.Throttler { return NewDownload(o) }},
	} {
		t.Run(d.name, func(t *testing.T) {
			bed := testenv.NewBed(t)
			placer := newPlacer(t)
			b := d.new(backends.Options{NetNS: testenv.Path(bed.Local)})
			if err := b.Init(); err != nil {
				t.Fatalf("Init: %v", err)
			}
			t.Cleanup(func() { b.Cleanup() })
			f, ok := b.(backends.SocketFollower)
			if !ok {
				t.Fatalf("%s does not implement backends.SocketFollower", b.Name())
			}
			srv := bed.StartServer(bed.Local, d.serveMode, "[::]:5230", false)
			pid := srv.Process.Pid
			target := backends.Target{ID: "server", Kind: backends.TargetProcess, PIDs: []int{pid}}
			cg, err := placer.Place(target.ID, target.PIDs)
			if err != nil {
				t.Fatal(err)
			}
			target.Cgroup = cg
			const rate = 1_000_000
			if err := b.SetLimit(target, backends.Limit{Rate: rate}); err != nil {
				t.Fatalf("SetLimit: %v", err)
			}
			cl := bed.StartClient(bed.Peer, d.clientMode, testenv.LocalIP+":5230", 20*time.Second, 100*time.Millisecond)
			// The server's side as the kernel counts it: acknowledged
			// (upload) or received (download) payload.
			tcp, sent := testenv.NewTCPCounter(t, bed.Local), d.serveMode == "source"
			time.Sleep(time.Second)
			before := tcp.Rate(t, sent, time.Second, pid)
			t.Logf("accepted connection, not yet followed: %.0f B/s", before)
			if before < 3*rate {
				t.Errorf("the accepted connection ran at %.0f B/s before FollowSockets; this test expects it unlimited (listener's cgroup)", before)
			}
			if err := f.FollowSockets(target); err != nil {
				t.Fatalf("FollowSockets: %v", err)
			}
			time.Sleep(1500 * time.Millisecond)
			after := tcp.Rate(t, sent, 2*time.Second, pid)
			t.Logf("after FollowSockets: %.0f B/s (limit %d)", after, rate)
			testenv.Settles(t, "the followed connection", after, func() float64 {
				return tcp.Rate(t, sent, 3*time.Second, pid)
			}, rate, 0.3, 1.25)
			var th *throttler
			switch x := b.(type) {
			case uploadThrottler:
				th = x.throttler
			case downloadThrottler:
				th = x.throttler
			default:
				t.Fatalf("unexpected backend type %T", b)
			}
			th.mu.Lock()
			followed := len(th.targets[target.ID].cookies)
			th.mu.Unlock()
			cl.Cmd.Process.Kill()
			cl.Wait()
			for end := time.Now().Add(10 * time.Second); len(procnet.SocketInodesOf([]int{pid})) > 1 && time.Now().Before(end); {
				time.Sleep(50 * time.Millisecond)
			}
			if err := f.FollowSockets(target); err != nil {
				t.Fatalf("FollowSockets after the connection closed: %v", err)
			}
			th.mu.Lock()
			left := len(th.targets[target.ID].cookies)
			th.mu.Unlock()
			if left >= followed {
				t.Errorf("%d socket cookies matched after the connection closed, %d while it was open", left, followed)
			}
			if err := f.FollowSockets(backends.Target{ID: "no-such-target", PIDs: []int{pid}}); err != nil {
				t.Errorf("FollowSockets of an unknown target: %v", err)
			}
		})
	}
}
