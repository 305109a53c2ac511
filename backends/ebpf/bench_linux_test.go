//go:build bench && linux && !no_ebpf

package ebpf

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cilium "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/monitor/capture"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/backends/throttle/tc"
)

// TestBenchEBPF prints, from one run on namespace test beds: goodput ÷ limit
// of ebpf_cgroup beside tc_htb / ifb_tc at four rates both ways;
// attribution, CPU per GB and unthrottled throughput with monitoring on of
// the ebpf monitor beside capture and nethogs.
func TestBenchEBPF(t *testing.T) {
	requireEBPF(t)
	start := time.Now()
	for _, part := range []struct {
		name string
		run  func(*testing.T)
	}{{"throttle", benchThrottle}, {"shown", benchShown}, {"attribution", benchAttribution}, {"monitors", benchMonitors}} {
		if parts := os.Getenv("BENCH_PARTS"); parts == "" || strings.Contains(parts, part.name) {
			part.run(t) // BENCH_PARTS=throttle,shown narrows the run while tuning
		}
	}
	fmt.Printf("\nTestBenchEBPF took %s\n", time.Since(start).Round(time.Second))
}

var benchRates = []struct {
	name   string
	rate   backends.Rate
	window time.Duration
}{
	{"100 kB/s", 100_000, 16 * time.Second},
	{"1 MB/s", 1_000_000, 10 * time.Second},
	{"10 MB/s", 10_000_000, 10 * time.Second},
	{"100 MB/s", 100_000_000, 10 * time.Second},
}

type throttleResult struct {
	ratio     float64 // goodput ÷ limit over the window
	spread    float64 // coefficient of variation of the per-second rates
	lo, hi    float64 // the slowest and fastest second ÷ limit
	neighbour float64 // an unlimited neighbour's rate beside the limit ÷ alone (median of pairs)
	err       error
}

// benchThrottle prints the throttle table. While tuning,
// BENCH_THROTTLE=download/ebpf_cgroup narrows it to the rows whose
// "direction/backend" contains the value, BENCH_RATES=1000000,10000000 to
// those rates (bytes/s), and BENCH_PAIRS=0 skips the neighbour.
func benchThrottle(t *testing.T) {
	rows := throttleRows(t, "upload", Upload, tc.HTBUpload)
	rows = append(rows, throttleRows(t, "download", Download, tc.IFBDownload)...)
	printThrottle(rows)
}

// throttleRows measures each registered backend of one direction.
func throttleRows[B backends.Throttler](t *testing.T, dir string, ds ...*backends.Descriptor[B]) []throttleRow {
	var rows []throttleRow
	for _, d := range ds {
		if d == nil || !strings.Contains(dir+"/"+d.Name, os.Getenv("BENCH_THROTTLE")) {
			continue
		}
		rows = append(rows, throttleRow{dir, d.Name, benchThrottler(t, dir, func(o backends.Options) (backends.Throttler, error) {
			if err := d.Probe(o); err != nil {
				return nil, err
			}
			return d.New(o)
		})})
	}
	return rows
}

// benchThrottler measures one backend at every rate on a fresh bed.
func benchThrottler(t *testing.T, dir string, mk func(backends.Options) (backends.Throttler, error)) []throttleResult {
	out := make([]throttleResult, len(benchRates))
	t.Run(dir, func(t *testing.T) {
		bed := benchBed(t)
		opts := backends.Options{NetNS: testenv.Path(bed.Local), Interfaces: []string{bed.LocalDev}, Tag: testenv.UniqueName("b")}
		b, err := mk(opts)
		if err != nil {
			for i := range out {
				out[i].err = err
			}
			return
		}
		if err := b.Init(); err != nil {
			for i := range out {
				out[i].err = fmt.Errorf("init: %w", err)
			}
			return
		}
		defer b.Cleanup()
		p := newPlacer(t)
		if dir == "download" {
			bed.StartServer(bed.Peer, "source", "[::]:5203", false)
		}
		for i := range benchRates {
			if benchRateWanted(i) {
				out[i] = benchThrottleCell(t, bed, b, p, dir, i)
			} else {
				out[i].err = errSkipped
			}
		}
	})
	return out
}

// CT_EBPF_DOWN_BURST_MS sets the download bucket's depth for a run (as in
// socktarget's benches).
func init() {
	if v, err := strconv.ParseInt(os.Getenv("CT_EBPF_DOWN_BURST_MS"), 10, 64); err == nil && v > 0 {
		IngressBurstMS = v
	}
}

// benchBed is the throttle table's bed: veth (sub-millisecond), or with
// BENCH_RTT=20ms a delay line of that round trip (testenv.NewBedRTT).
func benchBed(t *testing.T) *testenv.Bed {
	if env := os.Getenv("BENCH_RTT"); env != "" {
		rtt, err := time.ParseDuration(env)
		if err != nil {
			t.Fatalf("BENCH_RTT: %v", err)
		}
		return testenv.NewBedRTT(t, rtt)
	}
	return testenv.NewBed(t)
}

var errSkipped = errors.New("not measured (BENCH_RATES)")

// benchRateWanted reports whether BENCH_RATES (bytes/s, comma-separated,
// as tc's TestBenchThrottle takes it; unset: all) asks for benchRates[i].
func benchRateWanted(i int) bool {
	env := os.Getenv("BENCH_RATES")
	if env == "" {
		return true
	}
	for _, f := range strings.Split(env, ",") {
		if n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64); err == nil && backends.Rate(n) == benchRates[i].rate {
			return true
		}
	}
	return false
}

func cv(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	if mean == 0 {
		return 0
	}
	return math.Sqrt(v/float64(len(xs)-1)) / mean
}

// monitorUnderTest is one monitor in the bench: an in-process backend or
// nethogs in a child process.
type monitorUnderTest struct {
	name  string
	start func(t *testing.T, bed *testenv.Bed) monitorRun
}

// monitorRun is a running monitor: bytes(pid) is the cumulative tx+rx it
// attributed to pid; cpu is the CPU time it used so far; stop ends it.
type monitorRun struct {
	bytes func() map[int]uint64
	cpu   func() time.Duration
	bpf   func() time.Duration // the part of cpu spent in BPF programs (ebpf only)
	// update is the part spent in Update calls (in-process monitors)
	update func() time.Duration
	stop   func()
}

func benchMonitors(t *testing.T) {
	monitors := []monitorUnderTest{{"ebpf", inProcess(Monitor)}}
	if capture.Monitor != nil {
		monitors = append(monitors, monitorUnderTest{"capture", inProcess(capture.Monitor)})
	}
	monitors = append(monitors, monitorUnderTest{"nethogs", nethogs})
	type result struct {
		name       string
		longShare  float64
		shortSeen  int
		shortShare float64
		cpuPerGB   float64
		bpfPerGB   float64
		updPerGB   float64
		throughput float64
		q1, q3     float64 // quartiles of the per-round throughput ratios
		err        error
	}
	var results []result
	for _, m := range monitors {
		r := result{name: m.name}
		t.Run("monitor-"+m.name, func(t *testing.T) {
			if m.name == "nethogs" {
				if _, err := exec.LookPath("nethogs"); err != nil {
					r.err = err
					return
				}
			}
			bed := testenv.NewBed(t)
			bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
			addr := hostPort(bed.PeerIP, 5201)

			// Attribution: one long flow, then 40 short processes.
			run := m.start(t, bed)
			l := bed.StartClient(bed.Local, "send", addr, 5*time.Second, time.Second)
			ls := l.Wait()
			longSent := ls[len(ls)-1].Total
			var short []int
			var shortSent uint64
			for i := 0; i < 40; i++ {
				pid, last := sendBytes(t, bed, addr, 1_000_000)
				n := last.Total
				short = append(short, pid)
				shortSent += n
			}
			time.Sleep(3 * time.Second)
			got := run.bytes()
			run.stop()
			r.longShare = float64(got[l.PID]) / float64(longSent)
			var attributed uint64
			for _, pid := range short {
				if got[pid] > 0 {
					r.shortSeen++
				}
				attributed += got[pid]
			}
			r.shortShare = float64(attributed) / float64(shortSent)

			// CPU per GB and throughput: one unthrottled flow saturating
			// the veth, monitor off / on alternately.
			// Rates come from ctload's own clock and counts (its reports),
			// so a busy machine delaying this process's reads of them does
			// not skew the windows.
			l = bed.StartClient(bed.Local, "send", addr, 90*time.Second, 100*time.Millisecond)
			t0 := time.Now()
			at := func() float64 { return time.Since(t0).Seconds() }
			time.Sleep(1500 * time.Millisecond)
			type window struct{ offFrom, offTo, onFrom, onTo float64 }
			var windows []window
			var cpu, bpf, upd time.Duration
			for round := 0; round < 10; round++ {
				var w window
				w.offFrom = at()
				time.Sleep(time.Second)
				w.offTo = at()
				run := m.start(t, bed)
				time.Sleep(500 * time.Millisecond)
				c0, k0, u0 := run.cpu(), run.bpf(), run.update()
				w.onFrom = at()
				time.Sleep(time.Second)
				w.onTo = at()
				cpu += run.cpu() - c0
				bpf += run.bpf() - k0
				upd += run.update() - u0
				run.stop()
				windows = append(windows, w)
				time.Sleep(500 * time.Millisecond)
			}
			l.Cmd.Process.Kill()
			samples := l.Wait()
			var ratios []float64
			var bytes float64
			for _, w := range windows {
				off := testenv.RateBetween(samples, w.offFrom, w.offTo)
				on := testenv.RateBetween(samples, w.onFrom, w.onTo)
				bytes += on * (w.onTo - w.onFrom)
				if off > 0 {
					ratios = append(ratios, on/off)
				}
			}
			r.cpuPerGB = cpu.Seconds() / (bytes / 1e9)
			r.bpfPerGB = bpf.Seconds() / (bytes / 1e9)
			r.updPerGB = upd.Seconds() / (bytes / 1e9)
			r.throughput = median(ratios)
			sort.Float64s(ratios)
			r.q1, r.q3 = ratios[len(ratios)/4], ratios[len(ratios)*3/4]
		})
		results = append(results, r)
	}
	fmt.Printf("\n== Monitors on the same traffic (targets: ≥ 99.5 %% of bytes, 40/40 short, ≤ 0.01 CPU·s/GB, ≥ 97 %% throughput) ==\n")
	fmt.Printf("%-8s %11s %11s %12s %10s %11s %11s %11s %14s\n", "monitor", "long flow", "short seen", "short bytes", "CPU·s/GB", "(BPF part)", "(Update)", "throughput", "(quartiles)")
	for _, r := range results {
		if r.err != nil {
			fmt.Printf("%-8s error: %v\n", r.name, r.err)
			continue
		}
		fmt.Printf("%-8s %10.2f%% %8d/40 %11.2f%% %10.4f %11.4f %11.4f %10.1f%% %6.0f%%–%4.0f%%\n", r.name, r.longShare*100, r.shortSeen, r.shortShare*100, r.cpuPerGB, r.bpfPerGB, r.updPerGB, r.throughput*100, r.q1*100, r.q3*100)
	}
	fmt.Println("  bytes: attributed ÷ payload the processes moved (ebpf counts payload; capture and nethogs count")
	fmt.Println("  packet bytes, so a share above 100 % is header overhead). CPU: ebpf = BPF program run time")
	fmt.Println("  (kernel bpf_stats) + this whole test process's CPU; capture = this process's CPU; nethogs = its")
	fmt.Println("  process CPU. (Update) = CPU of the once-a-second Update calls alone, on their own OS thread.")
	fmt.Println("  throughput = unthrottled flow with the monitor on ÷ off: median (and quartiles) of 10 rounds of")
	fmt.Println("  1 s off, 1 s on, rates from ctload's own reports.")
	fmt.Printf("  machine load during the bench: %s", loadavg())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return string(b)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// inProcess runs a monitor backend in this process with an engine-like
// one-second Update loop. Its CPU is this process's CPU (the traffic runs
// in other processes) plus, for ebpf, the BPF programs' run time.
func inProcess(d *backends.Descriptor[backends.MonitorBackend]) func(t *testing.T, bed *testenv.Bed) monitorRun {
	return func(t *testing.T, bed *testenv.Bed) monitorRun {
		m, err := d.New(backends.Options{NetNS: testenv.Path(bed.Local), Interfaces: []string{bed.LocalDev}, Tag: bed.Local})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Init(); err != nil {
			t.Fatalf("%s Init: %v", d.Name, err)
		}
		var statsCloser interface{ Close() error }
		if em, ok := m.(*monitorBackend); ok {
			if c, err := cilium.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err == nil {
				statsCloser = c
			}
			_ = em
		}
		var mu sync.Mutex
		got := map[int]uint64{}
		done := make(chan struct{})
		stopped := make(chan struct{})
		var updateCPU atomic.Int64 // ns of thread CPU spent in Update
		go func() {
			defer close(stopped)
			// The loop owns its OS thread, so the thread's CPU time is the
			// cost of the Update calls.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				c0 := testenv.ThreadCPU()
				s, err := m.Update()
				updateCPU.Add(int64(testenv.ThreadCPU() - c0))
				if err == nil {
					mu.Lock()
					for _, p := range s.Processes {
						if v := p.TxBytes + p.RxBytes; v > got[p.PID] {
							got[p.PID] = v
						}
					}
					mu.Unlock()
				}
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				close(done)
				<-stopped
				m.Cleanup()
				if statsCloser != nil {
					statsCloser.Close()
				}
			})
		}
		t.Cleanup(stop)
		return monitorRun{
			bytes: func() map[int]uint64 {
				// One last Update so the final second counts.
				if s, err := m.Update(); err == nil {
					mu.Lock()
					for _, p := range s.Processes {
						if v := p.TxBytes + p.RxBytes; v > got[p.PID] {
							got[p.PID] = v
						}
					}
					mu.Unlock()
				}
				mu.Lock()
				defer mu.Unlock()
				return maps.Clone(got)
			},
			cpu: func() time.Duration {
				c := testenv.SelfCPU()
				if em, ok := m.(*monitorBackend); ok {
					c += em.bpfRuntime()
				}
				return c
			},
			bpf: func() time.Duration {
				if em, ok := m.(*monitorBackend); ok {
					return em.bpfRuntime()
				}
				return 0
			},
			update: func() time.Duration { return time.Duration(updateCPU.Load()) },
			stop:   stop,
		}
	}
}

// bpfRuntime sums the run time of the monitor's programs (kernel bpf_stats
// must be enabled).
func (m *monitorBackend) bpfRuntime() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		return 0
	}
	var d time.Duration
	progs := []*cilium.Program{m.objs.CtCountEgress, m.objs.CtCountIngress, m.objs.CtSockCreate, m.objs.CtSockRelease}
	for _, p := range progs {
		if s, err := p.Stats(); err == nil {
			d += s.Runtime
		}
	}
	return d
}

// nethogs runs nethogs -t -v 2 (cumulative bytes) on the bed's local veth.
func nethogs(t *testing.T, bed *testenv.Bed) monitorRun {
	cmd := bed.Command(bed.Local, "nethogs", "-t", "-v", "2", "-d", "1", bed.LocalDev)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nethogs: %v", err)
	}
	var mu sync.Mutex
	got := map[int]uint64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			// name/pid/uid <TAB> sent <TAB> received (bytes, cumulative)
			f := strings.Split(sc.Text(), "\t")
			if len(f) != 3 {
				continue
			}
			parts := strings.Split(f[0], "/")
			if len(parts) < 3 {
				continue
			}
			pid, err := strconv.Atoi(parts[len(parts)-2])
			if err != nil || pid == 0 {
				continue
			}
			sent, _ := strconv.ParseFloat(f[1], 64)
			recv, _ := strconv.ParseFloat(f[2], 64)
			mu.Lock()
			if v := uint64(sent + recv); v > got[pid] {
				got[pid] = v
			}
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			time.AfterFunc(2*time.Second, func() { cmd.Process.Kill() })
			<-done
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	return monitorRun{
		bytes: func() map[int]uint64 {
			time.Sleep(1200 * time.Millisecond) // one more refresh
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(got)
		},
		cpu:    func() time.Duration { return procCPU(cmd.Process.Pid) },
		bpf:    func() time.Duration { return 0 },
		update: func() time.Duration { return 0 },
		stop:   stop,
	}
}

// procCPU returns utime+stime of pid from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
