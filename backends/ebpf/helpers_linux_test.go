//go:build linux && !no_ebpf

package ebpf

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/procnet"
	"github.com/chadthrottle/chadthrottle/backends/testenv"
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

func newPlacer(t testing.TB) *cgroupv2.Placer {
	t.Helper()
	p, err := cgroupv2.New(backends.Options{Tag: testenv.UniqueName("ebpf")}, t.TempDir())
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

// deferredSender starts `sh -c 'read x; ctload client -mode send …'` in the
// bed's local namespace: the shell exists at once, and its ctload child
// (and the child's socket) only once start is called, after the test has
// placed the shell in a cgroup.
type deferredSender struct {
	PID   int
	stdin io.WriteCloser
}

func newDeferredSender(t testing.TB, bed *testenv.Bed, addr string, dur time.Duration) *deferredSender {
	t.Helper()
	// "; true" keeps the shell from exec'ing ctload: ctload is its child.
	script := "read x; " + testenv.Ctload(t) + " client -mode send -connect " + addr + " -duration " + dur.String() + " >/dev/null; true"
	cmd := bed.Command(bed.Local, "sh", "-c", script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, bufio.NewReader(out))
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &deferredSender{PID: cmd.Process.Pid, stdin: stdin}
}

func (d *deferredSender) Start() { io.WriteString(d.stdin, "go\n") }

func itoa(n int) string { return strconv.Itoa(n) }

var _ = exec.Command
