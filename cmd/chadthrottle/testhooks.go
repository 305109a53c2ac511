//go:build testhooks

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/chadthrottle/chadthrottle/gui"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Test hooks. They are compiled in only with -tags testhooks: the tests in
// this directory build the binary with it when they set one of these
// variables; production builds never have the tag (TestNoTestHooks).
//
// CHADTHROTTLE_TEST_SYNTHETIC_APPS=N replaces the helper with
// gui.NewSyntheticFake(N) (benchmarks, screenshots and the tray test run
// without a helper); CHADTHROTTLE_TEST_CALL_LOG=FILE then appends every
// limit call the fake receives to FILE as a JSON line.
const (
	hookSynthetic = "CHADTHROTTLE_TEST_SYNTHETIC_APPS"
	hookCallLog   = "CHADTHROTTLE_TEST_CALL_LOG"
)

// CHADTHROTTLE_TEST_CPUPROFILE=FILE writes a CPU profile of the run from
// 10 s after start (steady state) to SIGTERM or Quit, for benchmarks.
const hookCPUProfile = "CHADTHROTTLE_TEST_CPUPROFILE"

func startProfile() (stop func()) {
	heapProfileLater()
	path := os.Getenv(hookCPUProfile)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chadthrottle: cpu profile:", err)
		return func() {}
	}
	var mu sync.Mutex
	started, stopped := false, false
	time.AfterFunc(10*time.Second, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			started = pprof.StartCPUProfile(f) == nil
		}
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if started {
			pprof.StopCPUProfile()
		}
		f.Close()
	}
}

// CHADTHROTTLE_TEST_HEAPPROFILE=FILE writes a heap profile (after a GC)
// 30 s after start, for benchmarks: what the live Go heap holds.
const hookHeapProfile = "CHADTHROTTLE_TEST_HEAPPROFILE"

func heapProfileLater() {
	path := os.Getenv(hookHeapProfile)
	if path == "" {
		return
	}
	time.AfterFunc(30*time.Second, func() {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chadthrottle: heap profile:", err)
			return
		}
		defer f.Close()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(os.Stderr, "chadthrottle: go heap after GC: %.1f MB live, %.1f MB in use, %.1f MB from the OS, %.1f MB released\n",
			mb(m.HeapAlloc), mb(m.HeapInuse), mb(m.HeapSys), mb(m.HeapReleased))
		if err := pprof.WriteHeapProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "chadthrottle: heap profile:", err)
		}
	})
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// testBackend returns the synthetic fake (and how to close it) when
// CHADTHROTTLE_TEST_SYNTHETIC_APPS is set; ok is false when it is not.
func testBackend() (b gui.Backend, closeB func(), ok bool, err error) {
	v := os.Getenv(hookSynthetic)
	if v == "" {
		return nil, nil, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 100000 {
		return nil, nil, true, fmt.Errorf("%s=%q: want a number of apps", hookSynthetic, v)
	}
	fmt.Fprintf(os.Stderr, "chadthrottle: TEST MODE: %d synthetic apps, no helper\n", n)
	f := gui.NewSyntheticFake(n)
	seedHistory(f)
	if path := os.Getenv(hookCallLog); path != "" {
		log, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, true, fmt.Errorf("open %s: %w", hookCallLog, err)
		}
		var mu sync.Mutex
		f.SetCallHook(func(c gui.FakeCall) {
			mu.Lock()
			defer mu.Unlock()
			json.NewEncoder(log).Encode(c)
		})
		return f, func() { log.Close() }, true, nil
	}
	return f, func() {}, true, nil
}

// CHADTHROTTLE_TEST_HISTORY_DAYS=N gives the synthetic helper N days of
// generated history and a quota, and opens the Statistics window on this
// week at start.
const hookHistory = "CHADTHROTTLE_TEST_HISTORY_DAYS"

func seedHistory(f *gui.Fake) {
	n, err := strconv.Atoi(os.Getenv(hookHistory))
	if err != nil || n <= 0 || n > 400 {
		return
	}
	f.SetHistory(gui.GeneratedHistory(time.Now(), n))
	f.SetQuotas([]api.Quota{{Exe: "/usr/lib/steam/steam", UID: 1000, Period: api.QuotaDay, Bytes: 2e9, Used: 1.6e9,
		Direction: api.QuotaDown, Action: api.QuotaThrottle, Rate: 500e3, State: api.QuotaWarning}})
}

func openStatsHook() string {
	if os.Getenv(hookHistory) == "" {
		return ""
	}
	return gui.PeriodWeek
}
