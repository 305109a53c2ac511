//go:build linux

package socktarget_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

const clampCrashEnv = "CHADTHROTTLE_SOCKTARGET_CLAMPCRASH_CHILD" // "NETNS TAG EXE PINROOT"

// clampCrashChild is a stand-in helper: a 1 MB/s download rule on EXE with
// the ebpf pair, the clamp records pinned under PINROOT, until killed.
func clampCrashChild(arg string) {
	f := strings.Fields(arg)
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(1)
	}
	if len(f) != 4 {
		fail(fmt.Errorf("bad %s %q", clampCrashEnv, arg))
	}
	socktarget.PinRoot = f[3]
	o := backends.Options{NetNS: f[0], Tag: f[1]}
	u, err := pairs[0].up.New(o)
	if err != nil {
		fail(err)
	}
	d, err := pairs[0].down.New(o)
	if err != nil {
		fail(err)
	}
	m, err := backends.NewManager(u, d, nil, socktarget.NewPlacer(o))
	if err == nil {
		err = m.Init()
	}
	if err == nil {
		err = m.Apply(backends.Target{ID: "app", Kind: backends.TargetApp, Exe: f[2]}, backends.Limits{Down: backends.Limit{Rate: 1_000_000}})
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
	requireTagger(t)
	root := testenv.MountBPF(t)
	defer func(old string) { socktarget.PinRoot = old }(socktarget.PinRoot)
	socktarget.PinRoot = root

	bed := testenv.NewBed(t)
	bed.StartServer(bed.Peer, "source", "[::]:5201", false)
	ct := copyExe(t, testenv.Ctload(t))
	tag := testenv.UniqueName("cc")
	child, _ := testenv.StandIn(t, clampCrashEnv, strings.Join([]string{testenv.Path(bed.Local), tag, ct, root}, " "))
	load := testenv.StartLoad(t, bed.Command(bed.Local, ct, "client", "-mode", "recv",
		"-connect", bed.PeerIP+":5201", "-duration", "20s", "-interval", "250ms"))
	time.Sleep(700 * time.Millisecond)
	checkClamp(t, "under the stand-in's limit", load.PID, 1_000_000, false) // the ebpf pair: a policer
	pin := filepath.Join(root, "chadthrottle_rwnd_"+tag)
	if _, err := os.Stat(pin); err != nil {
		t.Fatalf("no pinned clamp records while clamped: %v", err)
	}

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	time.Sleep(300 * time.Millisecond)
	if clamp, _ := clampOf(t, load.PID); clamp >= 1<<29 {
		t.Fatalf("the clamp went with the killed helper (%d): nothing to recover", clamp)
	}

	tg, err := socktarget.Acquire(tag)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	n, err := tg.RecoveredClamps()
	if err != nil || n != 1 {
		t.Errorf("recovered %d clamps (%v), want 1", n, err)
	}
	checkUnclamped(t, "after the next helper started", load.PID, 1_000_000)
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("the pin %s is still there (%v)", pin, err)
	}
}
