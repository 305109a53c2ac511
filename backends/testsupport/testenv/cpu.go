package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The CPU-time and memory measures of the benchmarks, one of each.

// SelfCPU is this process's user+system CPU time.
func SelfCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ThreadCPU is the calling thread's CPU time (lock the goroutine to its
// thread first): on a loaded machine wall time measures the neighbours.
func ThreadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// ProcCPU is the user+system CPU time of pid (from /proc/PID/stat, in
// USER_HZ = 100 ticks); 0 when it cannot be read.
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100
}

// ProcStatusMB returns the named kB fields of /proc/PID/status ("VmRSS",
// "RssAnon", …) in MB.
func ProcStatusMB(t testing.TB, pid int, names ...string) []float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(names))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		for i, n := range names {
			if f[0] == n+":" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				out[i] = kb / 1024
			}
		}
	}
	return out
}
