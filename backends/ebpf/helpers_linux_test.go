//go:build linux && !no_ebpf

package ebpf

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// sink is a TCP receiver in the bed's peer namespace that counts the
// payload bytes it reads: the exact goodput of an upload.
type sink struct {
	Port  int
	total atomic.Uint64
}

func (s *sink) Total() uint64 { return s.total.Load() }

func newSink(t testing.TB, bed *testenv.Bed) *sink {
	t.Helper()
	fd, err := procnet.SocketAt(testenv.Path(bed.Peer), unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("sink socket: %v", err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	if err := unix.Bind(fd, &unix.SockaddrInet6{}); err != nil {
		unix.Close(fd)
		t.Fatalf("bind sink: %v", err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		unix.Close(fd)
		t.Fatalf("listen sink: %v", err)
	}
	sa, _ := unix.Getsockname(fd)
	f := os.NewFile(uintptr(fd), "sink")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatalf("sink listener: %v", err)
	}
	s := &sink{Port: sa.(*unix.SockaddrInet6).Port}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					s.total.Add(uint64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return s
}

// rateOf returns the mean rate of a byte counter over dur.
func rateOf(total func() uint64, dur time.Duration) float64 {
	a, t0 := total(), time.Now()
	time.Sleep(dur)
	return float64(total()-a) / time.Since(t0).Seconds()
}

// loadTotal returns the last total a ctload client reported.
func loadTotal(l *testenv.Load) func() uint64 {
	return func() uint64 {
		s := l.Samples()
		if len(s) == 0 {
			return 0
		}
		return s[len(s)-1].Total
	}
}

func newPlacer(t testing.TB) *cgroupv2.Leaf {
	t.Helper()
	p, err := cgroupv2.NewLeaf(backends.Options{Tag: testenv.UniqueName("ebpf")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(); err != nil {
		t.Fatalf("placer Init: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Cleanup(); err != nil {
			t.Errorf("placer Cleanup: %v", err)
		}
	})
	return p
}

// deferredLoad starts `sh -c 'read x; ctload client -mode MODE …; true'` in
// the bed's local namespace: the shell exists at once, its ctload child
// (and the child's socket) only once Start is called, after the test has
// placed the shell in a cgroup. Total is what ctload reports it moved.
type deferredLoad struct {
	PID   int
	stdin io.WriteCloser
	total atomic.Uint64
}

func newDeferredLoad(t testing.TB, bed *testenv.Bed, mode, addr string, dur time.Duration) *deferredLoad {
	t.Helper()
	// "; true" keeps the shell from exec'ing ctload: ctload is its child.
	script := "read x; " + testenv.Ctload(t) + " client -mode " + mode + " -connect " + addr +
		" -duration " + dur.String() + " -interval 100ms; true"
	cmd := bed.Command(bed.Local, "sh", "-c", script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &deferredLoad{PID: cmd.Process.Pid, stdin: stdin}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var s testenv.Sample
			if json.Unmarshal(sc.Bytes(), &s) == nil && s.Total > 0 {
				d.total.Store(s.Total)
			}
		}
	}()
	t.Cleanup(func() {
		// Kill the shell's child too: it is in the shell's process group
		// only if job control were on, so find it by parent.
		for _, pid := range childrenOf(d.PID) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
	return d
}

func (d *deferredLoad) Start()        { io.WriteString(d.stdin, "go\n") }
func (d *deferredLoad) Total() uint64 { return d.total.Load() }

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	pids, _ := procnet.PIDs()
	var out []int
	for _, p := range pids {
		if info, err := procnet.ReadProcess(p); err == nil && info.PPID == pid {
			out = append(out, p)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

var _ = exec.Command
