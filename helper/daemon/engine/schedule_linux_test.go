//go:build linux && !no_ebpf

package engine

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/ebpf"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/rules"
)

// TestRealScheduledBlockSwitches: the engine running (Run, real /proc,
// real cgroups, the real ebpf_block blocker) with a clock set so that a
// scheduled block's window opens 1.5 s from now: a running curl of the app
// is refused within 1 s of the boundary, and fetches again within 1 s of
// the window's end.
func TestRealScheduledBlockSwitches(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "curl", "nsenter")
	if err := ebpf.Blocker.Probe(backends.Options{}); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			testenv.KernelLacks(t, "BPF cgroup connect programs", err)
		}
		t.Fatal(err)
	}
	bed := testenv.NewBed(t)
	curlBin, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	tag := testenv.UniqueName("sch")
	exe := copyExe(t, curlBin, "ct-curl-"+tag)
	url := fmt.Sprintf("http://%s:%d/", bed.PeerIP, bed.ServeHTTP(bed.Peer))
	loop := testenv.StartCurlLoop(t, exec.Command("nsenter", append([]string{"--net=" + testenv.Path(bed.Local), "--", exe},
		testenv.CurlLoopArgs(url, 100, 10)...)...))
	if !testenv.WaitUntil(5*time.Second, func() bool { ok, _ := loop.Counts(); return ok >= 2 }) {
		t.Fatal("curl does not fetch")
	}

	mgr, err := backends.NewManager(backends.NewFakeUpload(), backends.NewFakeDownload(), nil, newPlacer(t, tag))
	if err != nil {
		t.Fatal(err)
	}
	mgr.SetBlocker(ebpf.NewBlocker(backends.Options{NetNS: testenv.Path(bed.Local)}), nil)
	store, err := rules.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The schedule's window opens at a whole minute; the engine's clock
	// runs so that it does 1.5 s from now, and closes a minute later.
	boundary := time.Date(2026, 11, 30, 10, 0, 0, 0, time.Local) // a Monday
	opens := time.Now().Add(1500 * time.Millisecond)
	var offset atomic.Int64 // the engine's clock runs on its own goroutine
	offset.Store(int64(boundary.Sub(opens)))
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e, err := New(Config{Manager: mgr, Rules: store, Log: testLog(t), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	if err := e.SetAppBlock(api.Caller{Admin: true}, exe, 0, "all", "Mon 10:00-10:01"); err != nil {
		t.Fatal(err)
	}
	if !testenv.WaitUntil(4*time.Second, func() bool { _, r := loop.Counts(); return r > 0 }) {
		t.Fatal("not refused within 2.5 s of the window's start")
	}
	late := loop.FirstRefused().Sub(opens)
	t.Logf("first refusal %.0f ms after the window opened (curl fetches every 100 ms)", float64(late.Microseconds())/1000)
	if late < 0 {
		t.Errorf("refused %v before the window opened", -late)
	} else if late > time.Second {
		t.Errorf("refused %v after the window opened, want within 1 s", late)
	}
	// Jump to 1.5 s before the window's end.
	closes := time.Now().Add(1500 * time.Millisecond)
	offset.Store(int64(boundary.Add(time.Minute).Sub(closes)))
	okAt, _ := loop.Counts()
	if !testenv.WaitUntil(4*time.Second, func() bool { ok, _ := loop.Counts(); return ok > okAt }) {
		t.Fatal("no fetch within 2.5 s of the window's end")
	}
	t.Logf("first fetch %.0f ms after the window closed", float64(loop.LastOK().Sub(closes).Microseconds())/1000)
	if d := loop.LastOK().Sub(closes); d > time.Second || d < 0 {
		t.Errorf("fetched again %v after the window closed, want within 1 s", d)
	}
}
