//go:build bench && linux

package engine

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/rules"
)

func mean(d []time.Duration) time.Duration {
	var s time.Duration
	for _, x := range d {
		s += x
	}
	return s / time.Duration(len(d))
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

// TestBenchEngineCost measures the engine's work for 200 apps of 3
// processes each (a fake /proc, every process with traffic and two
// connections): a full 1 Hz tick (scan + monitor sample + snapshot), a
// 4 Hz quick scan, Snapshot and AppDetails.
func TestBenchEngineCost(t *testing.T) {
	const apps, per = 200, 3
	t.Setenv("TMPDIR", "/dev/shm") // the fake /proc on tmpfs, like the real one in memory
	b := newBench(t, func(p *fakeProc) {
		for a := 0; a < apps; a++ {
			for i := 0; i < per; i++ {
				pid := 1000 + a*per + i
				p.add(fp{pid: pid, ppid: 1, uid: 1000, exe: fmt.Sprintf("/usr/bin/app%03d", a)})
			}
		}
	})
	conn := func(i int) backends.Conn {
		return backends.Conn{Proto: backends.TCP, Local: netip.MustParseAddrPort(fmt.Sprintf("10.0.0.1:%d", 30000+i)),
			Remote: netip.MustParseAddrPort("93.184.216.34:443"), Counters: backends.Counters{RxBytes: 100, TxBytes: 10}}
	}
	feed := func() {
		for a := 0; a < apps; a++ {
			for i := 0; i < per; i++ {
				pid := 1000 + a*per + i
				b.mon.Add(backends.ProcessInfo{PID: pid, UID: 1000, Exe: fmt.Sprintf("/usr/bin/app%03d", a), StartTime: uint64(pid) * 10},
					backends.Counters{RxBytes: 1000, TxBytes: 100})
			}
		}
	}
	for a := 0; a < apps; a++ {
		pid := 1000 + a*per
		b.mon.Add(backends.ProcessInfo{PID: pid, UID: 1000, Exe: fmt.Sprintf("/usr/bin/app%03d", a), StartTime: uint64(pid) * 10},
			backends.Counters{}, conn(2*a), conn(2*a+1))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const rounds = 30
	var full, quick []time.Duration
	for i := 0; i < rounds; i++ {
		feed()
		now := b.mon.advance(time.Second)
		t0 := testenv.ThreadCPU()
		b.e.tick(now, true, true)
		full = append(full, testenv.ThreadCPU()-t0)
		for j := 0; j < 3; j++ {
			t0 = testenv.ThreadCPU()
			b.e.tick(now, false, false)
			quick = append(quick, testenv.ThreadCPU()-t0)
		}
	}
	if n := len(b.e.Snapshot().Apps); n != apps {
		t.Fatalf("snapshot has %d apps, want %d", n, apps)
	}
	const calls = 2000
	t0 := testenv.ThreadCPU()
	for i := 0; i < calls; i++ {
		_ = b.e.Snapshot()
	}
	snap := (testenv.ThreadCPU() - t0) / calls
	t0 = testenv.ThreadCPU()
	for i := 0; i < calls; i++ {
		if _, err := b.e.AppDetails("1000:/usr/bin/app042"); err != nil {
			t.Fatal(err)
		}
	}
	details := (testenv.ThreadCPU() - t0) / calls
	// CPU per second of wall time at 1 Hz full + 3 quick scans.
	perSecond := mean(full) + 3*mean(quick)
	fmt.Printf("\nengine CPU cost per operation (thread CPU time; wall time on this loaded 2-core VM is noise)\n")
	fmt.Printf("%d apps × %d processes (fake /proc on tmpfs, fake monitor)\n", apps, per)
	fmt.Printf("  %-34s %10s %10s\n", "operation", "p50", "p99")
	fmt.Printf("  %-34s %10v %10v\n", "full tick (scan+sample+snapshot)", percentile(full, 0.5).Round(time.Microsecond), percentile(full, 0.99).Round(time.Microsecond))
	fmt.Printf("  %-34s %10v %10v\n", "quick scan (4 Hz)", percentile(quick, 0.5).Round(time.Microsecond), percentile(quick, 0.99).Round(time.Microsecond))
	fmt.Printf("  %-34s %10v\n", "Snapshot()", snap)
	fmt.Printf("  %-34s %10v\n", "AppDetails()", details)
	fmt.Printf("  work per second (1 full tick + 3 quick scans, means) ≈ %v (%.2f %% of a core)\n", perSecond.Round(time.Microsecond), 100*perSecond.Seconds())

	// The same on this machine's real /proc.
	up := backends.NewFakeUpload()
	mgr, _ := backends.NewManager(up, nil, nil, backends.NewFakePlacer())
	store, _ := rules.Open(t.TempDir())
	mon := &clockMonitor{FakeMonitor: backends.NewFakeMonitor(), now: time.Now()}
	e, err := New(Config{Manager: mgr, Rules: store, Monitor: mon, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Let every process age past the young window, as on a running system.
	for i := 0; i <= youngScans; i++ {
		e.tick(mon.advance(time.Second), false, false)
	}
	var sampleOnly []time.Duration
	full, quick = nil, nil
	for i := 0; i < rounds; i++ {
		now := mon.advance(time.Second)
		t0 := testenv.ThreadCPU()
		e.tick(now, true, true)
		full = append(full, testenv.ThreadCPU()-t0)
		t0 = testenv.ThreadCPU()
		e.tick(now, true, false)
		sampleOnly = append(sampleOnly, testenv.ThreadCPU()-t0)
		for j := 0; j < 3; j++ {
			t0 = testenv.ThreadCPU()
			e.tick(now, false, false)
			quick = append(quick, testenv.ThreadCPU()-t0)
		}
	}
	e.stateMu.Lock()
	nproc := len(e.st.procs)
	e.stateMu.Unlock()
	polling := mean(full) + 3*mean(quick)
	connector := (mean(full)+(fullScanEvery-1)*mean(sampleOnly))/fullScanEvery + 3*mean(quick)
	fmt.Printf("real /proc, %d processes, %d apps listed\n", nproc, len(e.Snapshot().Apps))
	fmt.Printf("  %-34s %10v %10v\n", "1 Hz tick, every process re-read", percentile(full, 0.5).Round(time.Microsecond), percentile(full, 0.99).Round(time.Microsecond))
	fmt.Printf("  %-34s %10v %10v\n", "1 Hz tick, new processes only", percentile(sampleOnly, 0.5).Round(time.Microsecond), percentile(sampleOnly, 0.99).Round(time.Microsecond))
	fmt.Printf("  %-34s %10v %10v\n", "quick scan (4 Hz)", percentile(quick, 0.5).Round(time.Microsecond), percentile(quick, 0.99).Round(time.Microsecond))
	fmt.Printf("  work per second, scanning only       ≈ %v (%.2f %% of a core)\n", polling.Round(time.Microsecond), 100*polling.Seconds())
	fmt.Printf("  work per second, with proc connector ≈ %v (%.2f %% of a core)\n", connector.Round(time.Microsecond), 100*connector.Seconds())
}

// TestBenchRealProcRuleLatency measures on the real /proc how long a new
// process of an executable with a rule waits before it is in its target
// (fake throttlers and placer), with the proc connector and with /proc
// scanning alone, and the engine's CPU use while idle.
func TestBenchRealProcRuleLatency(t *testing.T) {
	testenv.RequireRoot(t)
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nrule → new process latency on the real /proc (20 processes each)\n")
	fmt.Printf("  %-22s %8s %8s %8s %14s\n", "discovery", "p50", "p99", "max", "idle CPU %")
	for _, noConn := range []bool{false, true} {
		up := backends.NewFakeUpload()
		mgr, _ := backends.NewManager(up, backends.NewFakeDownload(), nil, backends.NewFakePlacer())
		store, _ := rules.Open(t.TempDir())
		e, err := New(Config{Manager: mgr, Rules: store, NoProcConnector: noConn, Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		exe := copyExe(t, sleepBin, testenv.UniqueName("ctb"))
		if err := e.SetAppLimit(admin, exe, 0, api.Limit{Up: 1000}); err != nil {
			t.Fatal(err)
		}
		id := appTargetID(appKey{0, exe})
		time.Sleep(300 * time.Millisecond) // let Run subscribe
		var lat []time.Duration
		for i := 0; i < 20; i++ {
			cmd := exec.Command(exe, "30")
			t0 := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			for {
				tg, _ := up.TargetOf(id)
				if slices.Contains(tg.PIDs, pid) {
					lat = append(lat, time.Since(t0))
					break
				}
				if time.Since(t0) > 3*time.Second {
					t.Errorf("process %d not targeted within 3 s", pid)
					break
				}
				time.Sleep(time.Millisecond)
			}
			cmd.Process.Kill()
			cmd.Wait()
			time.Sleep(time.Duration(37*i%250) * time.Millisecond) // spread over the scan phase
		}
		time.Sleep(500 * time.Millisecond)
		c0, w0 := testenv.SelfCPU(), time.Now()
		time.Sleep(5 * time.Second)
		idle := float64(testenv.SelfCPU()-c0) / float64(time.Since(w0)) * 100
		cancel()
		<-done
		e.Close()
		name := "proc connector + scan"
		if noConn {
			name = "scan every 250 ms"
		}
		if len(lat) > 0 {
			fmt.Printf("  %-22s %8v %8v %8v %13.2f%%\n", name, percentile(lat, 0.5).Round(time.Millisecond),
				percentile(lat, 0.99).Round(time.Millisecond), slices.Max(lat).Round(time.Millisecond), idle)
		}
	}
}
