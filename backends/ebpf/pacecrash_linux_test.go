//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

const paceCrashEnv = "CHADTHROTTLE_EBPF_PACECRASH_CHILD" // "NETNS TAG PID PINROOT"

// paceCrashChild is a stand-in helper: a 1 MB/s upload limit on PID (the
// pacer sets its sockets' pacing rate), records pinned under PINROOT,
// until killed.
func paceCrashChild(arg string) {
	f := strings.Fields(arg)
	pid, err := strconv.Atoi(f[2])
	if err == nil {
		socktarget.PinRoot = f[3]
		up := NewUpload(backends.Options{NetNS: f[0], Tag: f[1]})
		if err = up.Init(); err == nil {
			err = up.SetLimit(backends.Target{ID: "paced", Kind: backends.TargetProcess, PIDs: []int{pid}}, backends.Limit{Rate: 1_000_000})
		}
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// pacingOf returns SO_MAX_PACING_RATE of pid's established TCP connection.
func pacingOf(t *testing.T, pid int) uint64 {
	t.Helper()
	var rate uint64
	if !testenv.EstablishedTCP(t, pid, func(fd int) (err error) {
		rate, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE)
		return err
	}) {
		t.Fatalf("no established TCP connection of pid %d", pid)
	}
	return rate
}

// TestKilledHelperPacingUndone: the upload pacer of a helper killed with
// SIGKILL leaves its socket paced (a socket option outlives the helper);
// the next helper's upload throttler, at Init, finds the pinned record and
// gives the socket back the pacing rate it had.
func TestKilledHelperPacingUndone(t *testing.T) {
	requireEBPF(t)
	root := testenv.MountBPF(t)
	defer func(old string) { socktarget.PinRoot = old }(socktarget.PinRoot)
	socktarget.PinRoot = root

	bed := testenv.NewBed(t)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	load := bed.StartClient(bed.Local, "send", bed.PeerIP+":5201", 20*time.Second, 250*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	orig := pacingOf(t, load.PID)
	tag := testenv.UniqueName("pc")
	child, _ := testenv.StandIn(t, paceCrashEnv, strings.Join([]string{testenv.Path(bed.Local), tag, strconv.Itoa(load.PID), root}, " "))
	time.Sleep(500 * time.Millisecond)
	if paced := pacingOf(t, load.PID); paced > 2_000_000 {
		t.Fatalf("under the stand-in's 1 MB/s limit the socket's pacing rate is %d (was %d)", paced, orig)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	time.Sleep(300 * time.Millisecond)
	if paced := pacingOf(t, load.PID); paced == orig {
		t.Fatalf("the pacing went with the killed helper: nothing to recover")
	}

	up := NewUpload(backends.Options{NetNS: testenv.Path(bed.Local), Tag: tag}).(uploadThrottler)
	if err := up.Init(); err != nil {
		t.Fatal(err)
	}
	defer up.Cleanup()
	if n, err := up.pace.rec.recovered, up.pace.rec.err; n != 1 || err != nil {
		t.Errorf("recovered %d paced sockets (%v), want 1", n, err)
	}
	if got := pacingOf(t, load.PID); got != orig {
		t.Errorf("after the next helper's Init the pacing rate is %d, want %d (the socket's own)", got, orig)
	}
	if _, err := os.Stat(socktarget.PinPath(paceRecordPin, tag)); !os.IsNotExist(err) {
		t.Errorf("the pin is still there (%v)", err)
	}
}
