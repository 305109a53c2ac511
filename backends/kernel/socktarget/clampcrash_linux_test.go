//go:build linux

package socktarget_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

const clampCrashEnv = "CHADTHROTTLE_SOCKTARGET_CLAMPCRASH_CHILD" // "NETNS TAG EXE PINROOT [up]"

// clampCrashChild is a stand-in helper: a 1 MB/s download rule on EXE with
// the ebpf pair (a receive window clamp) or, with "up", a 1 MB/s upload
// rule with the tc pair (a send buffer clamp), the clamp records pinned
// under PINROOT, until killed.
func clampCrashChild(arg string) {
	f := strings.Fields(arg)
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	if len(f) != 4 && len(f) != 5 {
		fail(fmt.Errorf("bad %s %q", clampCrashEnv, arg))
	}
	socktarget.PinRoot = f[3]
	o := backends.Options{NetNS: f[0], Tag: f[1]}
	p, l := pairs[0], backends.Limits{Down: backends.Limit{Rate: 1_000_000}}
	if len(f) == 5 {
		p, l = pairs[1], backends.Limits{Up: backends.Limit{Rate: 1_000_000}}
	}
	u, err := p.up.New(o)
	if err != nil {
		fail(err)
	}
	d, err := p.down.New(o)
	if err != nil {
		fail(err)
	}
	m, err := backends.NewManager(u, d, nil, socktarget.NewPlacer(o))
	if err == nil {
		err = m.Init()
	}
	if err == nil {
		err = m.Apply(backends.Target{ID: "app", Kind: backends.TargetApp, Exe: f[2]}, l)
	}
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// TestKilledHelperClampsUndone: a helper killed with SIGKILL leaves its
// download's connection clamped (a socket option outlives the helper);
// the next helper of the same tag finds the pinned record map and undoes
// the clamp — window clamp back to the largest, autotuning unlocked — and
// removes the pin.
func TestKilledHelperClampsUndone(t *testing.T) {
	killedHelper(t, false, func(pid int) {
		checkClamp(t, "under the stand-in's limit", pid, 1_000_000, false) // the ebpf pair: a policer
	}, func(pid int) {
		if clamp, _ := clampOf(t, pid); clamp >= 1<<29 {
			t.Fatalf("the clamp went with the killed helper (%d): nothing to recover", clamp)
		}
	}, func(pid int) {
		checkUnclamped(t, "after the next helper started", pid, 1_000_000)
	})
}

// TestKilledHelperSendClampsUndone: the same for a tc upload's send buffer
// clamp: a helper killed with SIGKILL leaves the connection's send buffer
// locked at the clamp; the next helper of the same tag unlocks it (SO_BUF_LOCK)
// and removes the pin.
func TestKilledHelperSendClampsUndone(t *testing.T) {
	killedHelper(t, true, func(pid int) {
		want := 2 * int(socktarget.SendBuffer(1_000_000, 0)) // the kernel doubles SO_SNDBUF
		if buf, locks := sendState(t, pid); buf < want || buf > 2*want || locks&unix.SOCK_SNDBUF_LOCK == 0 {
			t.Fatalf("under the stand-in's limit: SO_SNDBUF %d (want %d–%d), buffer locks %#x", buf, want, 2*want, locks)
		}
	}, func(pid int) {
		if _, locks := sendState(t, pid); locks&unix.SOCK_SNDBUF_LOCK == 0 {
			t.Fatal("the send buffer lock went with the killed helper: nothing to recover")
		}
	}, func(pid int) {
		if _, locks := sendState(t, pid); locks&unix.SOCK_SNDBUF_LOCK != 0 {
			t.Errorf("after the next helper started: buffer locks %#x; want send buffer autotuning unlocked", locks)
		}
	})
}

// killedHelper runs a stand-in helper with a 1 MB/s rule (a download with
// the ebpf pair, or with up an upload with the tc pair) on a ctload copy
// whose transfer it clamps, checks the clamp (limited), kills the stand-in
// with SIGKILL, checks the clamp stayed (kept), starts the next tagger of
// the same tag, which must recover one clamp, checks it is undone (undone)
// and the pin gone.
func killedHelper(t *testing.T, up bool, limited, kept, undone func(pid int)) {
	requireTagger(t)
	root := testenv.MountBPF(t)
	defer func(old string) { socktarget.PinRoot = old }(socktarget.PinRoot)
	socktarget.PinRoot = root

	bed := testenv.NewBed(t)
	server, mode, args := "source", "recv", []string{}
	if up {
		server, mode, args = "sink", "send", []string{"up"}
	}
	bed.StartServer(bed.Peer, server, "[::]:5201", false)
	ct := copyExe(t, testenv.Ctload(t))
	tag := testenv.UniqueName("cc")
	child, _ := testenv.StandIn(t, clampCrashEnv, strings.Join(append([]string{testenv.Path(bed.Local), tag, ct, root}, args...), " "))
	load := testenv.StartLoad(t, bed.Command(bed.Local, ct, "client", "-mode", mode,
		"-connect", bed.PeerIP+":5201", "-duration", "20s", "-interval", "250ms"))
	time.Sleep(700 * time.Millisecond)
	limited(load.PID)
	pin := filepath.Join(root, "chadthrottle_rwnd_"+tag)
	if _, err := os.Stat(pin); err != nil {
		t.Fatalf("no pinned clamp records while clamped: %v", err)
	}

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	time.Sleep(300 * time.Millisecond)
	kept(load.PID)

	tg, err := socktarget.Acquire(tag)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	n, err := tg.RecoveredClamps()
	if err != nil || n != 1 {
		t.Errorf("recovered %d clamps (%v), want 1", n, err)
	}
	undone(load.PID)
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("the pin %s is still there (%v)", pin, err)
	}
}

// sendState returns SO_SNDBUF and SO_BUF_LOCK of pid's established TCP
// connection, read through a copy of its descriptor.
func sendState(t *testing.T, pid int) (sndbuf, locks int) {
	t.Helper()
	if !testenv.EstablishedTCP(t, pid, func(fd int) (err error) {
		sndbuf, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		if err == nil {
			locks, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK)
		}
		return err
	}) {
		t.Fatalf("process %d has no established TCP connection", pid)
	}
	return sndbuf, locks
}
