package testenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bed is a test bed: two network namespaces, Local and Peer, joined by a
// veth pair with IPv4 10.77.0.1/30 (local) – 10.77.0.2/30 (peer) and IPv6
// fd77::1/64 – fd77::2/64. The product runs against Local; the peer plays
// the rest of the world. Everything is removed when the test ends.
type Bed struct {
	Local, Peer       string // namespace names (in /run/netns)
	LocalDev, PeerDev string // veth ends
	LocalIP, PeerIP   string
	LocalIP6, PeerIP6 string
	// Router and Line are set in a bed made by NewBedRTT: the namespace
	// between Local and Peer and the delay line in it.
	Router string
	Line   *DelayLine
	t      testing.TB
}

// Fixed addresses of every bed; namespaces keep beds apart.
const (
	LocalIP  = "10.77.0.1"
	PeerIP   = "10.77.0.2"
	LocalIP6 = "fd77::1"
	PeerIP6  = "fd77::2"
)

// NewBed creates a bed (root required; skips or fails per Skip otherwise).
func NewBed(t testing.TB) *Bed {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "ip", "nsenter")
	b := newBedNames(t)
	t.Cleanup(b.destroy)
	Run(t, "ip", "netns", "add", b.Local)
	Run(t, "ip", "netns", "add", b.Peer)
	Run(t, "ip", "link", "add", b.LocalDev, "netns", b.Local, "type", "veth", "peer", "name", b.PeerDev, "netns", b.Peer)
	b.configureHosts()
	return b
}

// newBedNames returns a bed with fresh names and the fixed addresses.
func newBedNames(t testing.TB) *Bed {
	return &Bed{
		Local: UniqueName("ctl"), Peer: UniqueName("ctp"),
		LocalDev: UniqueName("vl"), PeerDev: UniqueName("vp"),
		LocalIP: LocalIP, PeerIP: PeerIP, LocalIP6: LocalIP6, PeerIP6: PeerIP6, t: t,
	}
}

// configureHosts gives Local and Peer their addresses and routes.
func (b *Bed) configureHosts() {
	for _, c := range [][]string{
		{b.Local, "ip", "addr", "add", LocalIP + "/30", "dev", b.LocalDev},
		{b.Local, "ip", "-6", "addr", "add", LocalIP6 + "/64", "dev", b.LocalDev, "nodad"},
		{b.Local, "ip", "link", "set", b.LocalDev, "up"},
		{b.Local, "ip", "link", "set", "lo", "up"},
		{b.Local, "ip", "route", "add", "default", "via", PeerIP},
		{b.Local, "ip", "-6", "route", "add", "default", "via", PeerIP6},
		{b.Peer, "ip", "addr", "add", PeerIP + "/30", "dev", b.PeerDev},
		{b.Peer, "ip", "-6", "addr", "add", PeerIP6 + "/64", "dev", b.PeerDev, "nodad"},
		{b.Peer, "ip", "link", "set", b.PeerDev, "up"},
		{b.Peer, "ip", "link", "set", "lo", "up"},
	} {
		Run(b.t, "ip", append([]string{"netns", "exec"}, c...)...)
	}
}

// Path returns the namespace's bind-mount path, for nsenter --net= or
// backends.Options.NetNS.
func Path(ns string) string { return "/run/netns/" + ns }

func (b *Bed) destroy() {
	// Deleting a namespace removes its veth end, which removes the pair.
	if b.Line != nil {
		b.Line.Close()
	}
	for _, ns := range []string{b.Local, b.Peer, b.Router} {
		if ns == "" {
			continue
		}
		if _, err := Output("ip", "netns", "pids", ns); err == nil {
			out, _ := Output("ip", "netns", "pids", ns)
			for _, f := range strings.Fields(out) {
				var pid int
				fmt.Sscan(f, &pid)
				if pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		Output("ip", "netns", "del", ns)
	}
}

// Command returns a command that runs in namespace ns with nsenter (network
// namespace only, so the cgroup2 mount stays visible).
func (b *Bed) Command(ns string, name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + Path(ns), "--", name}, args...)...)
}

// Sample is one ctload report line.
type Sample struct {
	T     float64 `json:"t"`     // seconds since start
	Bytes uint64  `json:"bytes"` // payload bytes in this interval
	Total uint64  `json:"total"` // payload bytes since start
	// Retrans is the payload TCP sent again since start (tcpi_bytes_retrans):
	// a tap on the sender's side sees Total+Retrans bytes. Final only in the
	// last report of a client started with -drain.
	Retrans uint64 `json:"retrans"`
	Done    bool   `json:"done"`
}

// Load is a running ctload client.
type Load struct {
	Cmd     *exec.Cmd
	PID     int
	mu      sync.Mutex
	samples []Sample
	done    chan struct{}
	stderr  strings.Builder
}

// StartServer starts a ctload server in ns listening on addr ("[::]:5201");
// mode is "sink" (reads), "source" (writes) or "http". It is killed at
// cleanup. CT_TEST_CC=cubic (benchmarks) sets the TCP congestion control
// of its connections: namespaces here default to bbr and do not allow
// cubic, so every sender was bbr unless a socket asked.
func (b *Bed) StartServer(ns, mode, addr string, udp bool) *exec.Cmd {
	b.t.Helper()
	args := []string{"serve", "-mode", mode, "-listen", addr}
	if udp {
		args = append(args, "-udp")
	} else if cc := os.Getenv("CT_TEST_CC"); cc != "" {
		args = append(args, "-cc", cc)
	}
	cmd := b.Command(ns, Ctload(b.t), args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start ctload server: %v", err)
	}
	b.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait for "listening".
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening") {
		b.t.Fatalf("ctload server did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return cmd
}

// StartClient starts a ctload client in ns connecting to addr; mode "send"
// uploads, "recv" downloads. It runs for dur (at most 120 s) and reports
// every interval. The process is killed at cleanup.
func (b *Bed) StartClient(ns, mode, addr string, dur, interval time.Duration, extra ...string) *Load {
	b.t.Helper()
	args := append([]string{"client", "-mode", mode, "-connect", addr, "-duration", dur.String(), "-interval", interval.String()}, extra...)
	return StartLoad(b.t, b.Command(ns, Ctload(b.t), args...))
}

// StartLoad starts a prepared ctload client command and collects its reports.
func StartLoad(t testing.TB, cmd *exec.Cmd) *Load {
	t.Helper()
	l := &Load{Cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &l.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ctload: %v", err)
	}
	l.PID = cmd.Process.Pid
	t.Cleanup(func() { cmd.Process.Kill(); <-l.done })
	sc := bufio.NewScanner(stdout)
	first := make(chan int, 1)
	go func() {
		defer close(l.done)
		defer cmd.Wait()
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "pid ") {
				var pid int
				fmt.Sscan(strings.TrimPrefix(line, "pid "), &pid)
				first <- pid
				continue
			}
			var s Sample
			if json.Unmarshal([]byte(line), &s) == nil {
				l.mu.Lock()
				l.samples = append(l.samples, s)
				l.mu.Unlock()
			}
		}
	}()
	// nsenter execs ctload in place, so cmd.Process.Pid is ctload; ctload
	// also prints its pid first, which we check.
	select {
	case pid := <-first:
		l.PID = pid
	case <-time.After(10 * time.Second):
		t.Fatalf("ctload did not start: %s", l.stderr.String())
	case <-l.done:
		t.Fatalf("ctload exited at start: %s", l.stderr.String())
	}
	return l
}

// Samples returns the reports so far.
func (l *Load) Samples() []Sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Sample(nil), l.samples...)
}

// Wait waits for the client to finish and returns all reports.
func (l *Load) Wait() []Sample {
	<-l.done
	return l.Samples()
}

// Stderr returns what the client wrote to stderr.
func (l *Load) Stderr() string { return l.stderr.String() }

// RateBetween returns the mean payload rate (B/s) over reports with
// from < T <= to.
func RateBetween(samples []Sample, from, to float64) float64 {
	var bytes uint64
	var t0, t1 float64 = -1, 0
	prev := 0.0
	for _, s := range samples {
		if s.Done {
			continue
		}
		if s.T > from && s.T <= to {
			if t0 < 0 {
				t0 = prev
			}
			bytes += s.Bytes
			t1 = s.T
		}
		prev = s.T
	}
	if t0 < 0 || t1 <= t0 {
		return 0
	}
	return float64(bytes) / (t1 - t0)
}

// RateOver returns the load's payload rate (B/s) over the next d, from its
// own reports; it fails the test when the load made no progress.
func (l *Load) RateOver(t testing.TB, d time.Duration) float64 {
	t.Helper()
	last := func() Sample {
		s := l.Samples()
		if len(s) == 0 {
			return Sample{}
		}
		return s[len(s)-1]
	}
	s0 := last()
	time.Sleep(d)
	s1 := last()
	if s1.T <= s0.T {
		t.Fatalf("no progress from ctload: %s", l.Stderr())
	}
	return float64(s1.Total-s0.Total) / (s1.T - s0.T)
}
