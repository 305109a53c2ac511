package testenv

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ServeHTTP serves a small page ("ok") on every address of namespace ns,
// IPv4 and IPv6, port chosen by the kernel, until the test ends; it
// returns the port. Keep-alive is off: every request is a new connection,
// so a client making requests in a loop connects each time.
func (b *Bed) ServeHTTP(ns string) int {
	b.t.Helper()
	ln, err := listenIn(Path(ns))
	if err != nil {
		b.t.Fatalf("http server in %s: %v", ns, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })}
	srv.SetKeepAlivesEnabled(false)
	go srv.Serve(ln)
	b.t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// listenIn opens a dual-stack TCP listener in the network namespace at
// path, from a thread switched there and back.
func listenIn(path string) (net.Listener, error) {
	fd := -1
	err := inNetns(path, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	if err := unix.Bind(fd, &unix.SockaddrInet6{}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "http")
	defer f.Close()
	return net.FileListener(f)
}

// CurlLoop is a running curl that fetches URLs one after another (see
// CurlLoopArgs); it counts the fetches that succeeded and those refused
// with EPERM ("Operation not permitted").
type CurlLoop struct {
	mu           sync.Mutex
	ok, refused  int
	firstRefused time.Time
	lastOK       time.Time
}

// CurlLoopArgs are curl's arguments to fetch url n times, rate a second, a
// new connection each time (ServeHTTP has keep-alive off), verbosely so
// the loop can read the outcome of each.
func CurlLoopArgs(url string, n, rate int) []string {
	args := []string{"-v", "-sS", "-m", "2", "--rate", fmt.Sprintf("%d/s", rate), "-o", "/dev/null"}
	for i := 0; i < n; i++ {
		args = append(args, url)
	}
	return args
}

// StartCurlLoop starts cmd (a curl with CurlLoopArgs, perhaps wrapped in
// nsenter) and counts its fetches until it ends; it is killed at cleanup.
func StartCurlLoop(t testing.TB, cmd *exec.Cmd) *CurlLoop {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &CurlLoop{}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			switch {
			case strings.HasPrefix(line, "< HTTP/1.1 200"):
				c.ok++
				c.lastOK = time.Now()
			case strings.Contains(line, "Operation not permitted"):
				if c.refused == 0 {
					c.firstRefused = time.Now()
				}
				c.refused++
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// Counts returns the fetches that succeeded and those refused so far.
func (c *CurlLoop) Counts() (ok, refused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok, c.refused
}

// FirstRefused is when the first refusal was read (zero: none yet).
func (c *CurlLoop) FirstRefused() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.firstRefused
}

// LastOK is when the last success was read.
func (c *CurlLoop) LastOK() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastOK
}

// WaitUntil polls cond every 20 ms for up to d and reports whether it held.
func WaitUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
