//go:build bench && linux && !no_capture

package capture

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// The benchmark runs the monitor in a child process (this test binary
// re-executed), so its CPU time can be read from the child's rusage.
const childEnv = "CT_CAPTURE_BENCH_CHILD"

func TestMain(m *testing.M) {
	if ns, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(ns))
	}
	os.Exit(m.Run())
}

// childResult is what the child reports when its stdin closes.
type childResult struct {
	Bytes   map[int]uint64 // payload bytes (rx+tx) per pid
	Unknown backends.Counters
	Total   backends.Counters
	Drops   uint64
	Stats   string
}

func childMain(ns string) int {
	if os.Getenv("CT_CAPTURE_BENCH_NORT") != "" {
		realtimeSYN = false
	}
	if path := os.Getenv("CT_CAPTURE_BENCH_PROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	m, err := New(backends.Options{NetNS: ns})
	if err == nil {
		err = m.Init()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "capture child:", err)
		return 1
	}
	res := childResult{Bytes: map[int]uint64{}}
	update := func() {
		s, err := m.Update()
		if err != nil {
			fmt.Fprintln(os.Stderr, "capture child:", err)
			return
		}
		for _, p := range s.Processes {
			res.Bytes[p.PID] = p.RxBytes + p.TxBytes
		}
		res.Unknown, res.Total = s.Unknown, s.Total
	}
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(eof) }()
	fmt.Println("ready")
	for done := false; !done; {
		select {
		case <-eof:
			done = true
		case <-time.After(500 * time.Millisecond):
		}
		update()
	}
	res.Drops, res.Stats = m.Drops(), m.Stats()
	m.Cleanup()
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// child is a running monitor process: the capture child or nethogs.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   chan string // stdout lines
}

func startChild(t *testing.T, cmd *exec.Cmd, ready string) *child {
	t.Helper()
	c := &child{cmd: cmd, out: make(chan string, 1<<16)}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		defer close(c.out)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			c.out <- sc.Text()
		}
	}()
	if ready != "" {
		select {
		case l := <-c.out:
			if l != ready {
				t.Fatalf("%s said %q, want %q", cmd.Path, l, ready)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not start", cmd.Path)
		}
	}
	return c
}

// cpu returns the child's CPU seconds (user + system) after it exited.
func (c *child) cpu() float64 {
	return (c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()).Seconds()
}

func startCapture(t *testing.T, bed *testenv.Bed, env ...string) *child {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+testenv.Path(bed.Local)), env...)
	return startChild(t, cmd, "ready")
}

// stopCapture closes the child's stdin and returns its report and CPU.
func stopCapture(t *testing.T, c *child) (childResult, float64) {
	t.Helper()
	c.stdin.Close()
	var res childResult
	var last string
	for l := range c.out {
		last = l
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("capture child: %v", err)
	}
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		t.Fatalf("capture child report %q: %v", last, err)
	}
	return res, c.cpu()
}

// nethogsResult is what nethogs -t reported: the highest cumulative bytes
// (sent + received, headers included) per pid.
type nethogsResult struct {
	Bytes   map[int]uint64
	Unknown uint64
}

func startNethogs(t *testing.T, bed *testenv.Bed) *child {
	testenv.RequireTool(t, "nethogs")
	// nethogs -t: trace mode; -v 2: cumulative bytes; -d 1: refresh every second.
	return startChild(t, bed.Command(bed.Local, "nethogs", "-t", "-v", "2", "-d", "1", bed.LocalDev), "")
}

func stopNethogs(t *testing.T, c *child) (nethogsResult, float64) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	res := nethogsResult{Bytes: map[int]uint64{}}
	var raw strings.Builder
	defer func() {
		if path := os.Getenv("CT_NETHOGS_DUMP"); path != "" {
			os.WriteFile(path, []byte(raw.String()), 0o644)
		}
	}()
	for l := range c.out {
		raw.WriteString(l + "\n")
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			continue
		}
		sent, err1 := strconv.ParseFloat(f[1], 64)
		recv, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		name := strings.Split(f[0], "/")
		if len(name) < 3 {
			continue
		}
		pid, err := strconv.Atoi(name[len(name)-2])
		if err != nil {
			continue
		}
		b := uint64(sent + recv)
		if pid == 0 {
			res.Unknown = max(res.Unknown, b)
		} else {
			res.Bytes[pid] = max(res.Bytes[pid], b)
		}
	}
	c.cmd.Wait()
	return res, c.cpu()
}

// scores are one monitor's results on one traffic mix.
type scores struct {
	seen                int
	shortGot, longGot   uint64
	shortSent, longSent uint64
}

// runMix runs both monitors on the same traffic: n short processes sending
// 1 MB each, every 100 ms, plus, when withLong, one unthrottled long flow.
func runMix(t *testing.T, bed *testenv.Bed, n int, withLong bool, env ...string) (capS, nhS scores, capRes childResult) {
	capc := startCapture(t, bed, env...)
	nh := startNethogs(t, bed)
	time.Sleep(2 * time.Second) // nethogs reads /proc and opens pcap
	var long *testenv.Load
	if withLong {
		long = bed.StartClient(bed.Local, "send", testenv.PeerIP+":5201", 10*time.Second, time.Second)
		time.Sleep(time.Second)
	}
	var shorts []*testenv.Load
	for i := 0; i < n; i++ {
		shorts = append(shorts, bed.StartClient(bed.Local, "send", testenv.PeerIP+":5201", 20*time.Second, time.Second, "-bytes", "1000000"))
		time.Sleep(100 * time.Millisecond)
	}
	all := shorts
	if long != nil {
		all = append(all, long)
	}
	for _, l := range all {
		l.Wait()
	}
	time.Sleep(3 * time.Second) // let both report
	capRes, _ = stopCapture(t, capc)
	nhRes, _ := stopNethogs(t, nh)
	score := func(bytes map[int]uint64) scores {
		var sc scores
		for _, l := range shorts {
			s := total(l.Samples())
			sc.shortSent += s
			if b := bytes[l.PID]; b > 0 {
				sc.seen++
				sc.shortGot += min(b, s)
			}
		}
		if long != nil {
			sc.longSent = total(long.Samples())
			sc.longGot = min(bytes[long.PID], sc.longSent)
		}
		return sc
	}
	return score(capRes.Bytes), score(nhRes.Bytes), capRes
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestBenchMonitorAttribution runs the capture monitor and nethogs side by
// side on the same traffic (40 short processes sending 1 MB each plus a
// long flow; then the short processes alone), then measures the monitor's
// CPU per GB and its throughput cost on one unthrottled flow saturating the
// veth (monitor off/on, alternating).
func TestBenchMonitorAttribution(t *testing.T) {
	bed := testenv.NewBed(t)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	const n, pairs = 40, 5
	capMix, nhMix, capRes := runMix(t, bed, n, true)
	capShort, nhShort, capRes2 := runMix(t, bed, n, false)
	capNoRT, _, capRes3 := runMix(t, bed, n, true, "CT_CAPTURE_BENCH_NORT=1")

	flow := func() (rate float64, bytes uint64) {
		l := bed.StartClient(bed.Local, "send", testenv.PeerIP+":5201", 5*time.Second, 500*time.Millisecond)
		s := l.Wait()
		return testenv.RateBetween(s, 1, 5), total(s)
	}
	var offRates, onRates []float64
	var capCPU, capUser float64
	var capBytes, drops uint64
	on := func() {
		c := startCapture(t, bed)
		r, b := flow()
		res, cpu := stopCapture(t, c)
		capUser += c.cmd.ProcessState.UserTime().Seconds()
		onRates = append(onRates, r)
		capCPU += cpu
		capBytes += b
		drops += res.Drops
	}
	off := func() {
		r, _ := flow()
		offRates = append(offRates, r)
	}
	for i := 0; i < pairs; i++ { // alternate the order: the machine drifts
		if i%2 == 0 {
			off()
			on()
		} else {
			on()
			off()
		}
	}
	nh := startNethogs(t, bed)
	time.Sleep(time.Second)
	_, nhBytes := flow()
	_, nhCPU := stopNethogs(t, nh)

	pct := func(a, b uint64) float64 { return 100 * float64(a) / float64(b) }
	fmt.Printf("\nMonitor attribution: capture vs nethogs, both running on the same traffic\n")
	fmt.Printf("%-48s %14s %14s\n", "", "capture", "nethogs 0.8.7")
	fmt.Printf("%-48s %11d/%d %11d/%d\n", "short processes seen (with long flow)", capMix.seen, n, nhMix.seen, n)
	fmt.Printf("%-48s %13.1f%% %13.1f%%\n", "short processes' bytes attributed (with long)", pct(capMix.shortGot, capMix.shortSent), pct(nhMix.shortGot, nhMix.shortSent))
	fmt.Printf("%-48s %13.1f%% %13.1f%%\n", "long flow's bytes attributed", pct(capMix.longGot, capMix.longSent), pct(nhMix.longGot, nhMix.longSent))
	fmt.Printf("%-48s %11d/%d %11d/%d\n", "short processes seen (alone)", capShort.seen, n, nhShort.seen, n)
	fmt.Printf("%-48s %13.1f%% %13.1f%%\n", "short processes' bytes attributed (alone)", pct(capShort.shortGot, capShort.shortSent), pct(nhShort.shortGot, nhShort.shortSent))
	fmt.Printf("%-48s %11d/%d %13.1f%%\n", "capture, SYN thread at normal priority (mix)", capNoRT.seen, n, pct(capNoRT.shortGot, capNoRT.shortSent))
	fmt.Printf("%-48s %14.3f %14.3f\n", "CPU s per GB carried (one saturating flow)", capCPU/(float64(capBytes)/1e9), nhCPU/(float64(nhBytes)/1e9))
	fmt.Printf("%-48s %14.3f\n", "  of which user (capture)", capUser/(float64(capBytes)/1e9))
	fmt.Printf("%-48s %14.0f\n", fmt.Sprintf("flow rate, monitor off, median of %d (MB/s)", pairs), median(offRates)/1e6)
	fmt.Printf("%-48s %14.0f\n", fmt.Sprintf("flow rate, monitor on, median of %d (MB/s)", pairs), median(onRates)/1e6)
	fmt.Printf("%-48s %13.1f%%\n", "rate kept with monitor on", 100*median(onRates)/median(offRates))
	fmt.Printf("%-48s %14d\n", "capture ring drops (CPU runs)", drops)
	fmt.Printf("off runs %.0f MB/s, on runs %.0f MB/s\ncapture resolver (with long flow): %s\ncapture resolver (alone): %s\ncapture resolver (normal priority): %s\n", mbs(offRates), mbs(onRates), capRes.Stats, capRes2.Stats, capRes3.Stats)
	fmt.Printf("(short processes: %d B in the mix, %d B alone; long flow %d B; nethogs counts header bytes too, so its %% are capped per process at the payload sent)\n",
		capMix.shortSent, capShort.shortSent, capMix.longSent)
}

func mbs(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Round(v / 1e6)
	}
	return out
}
