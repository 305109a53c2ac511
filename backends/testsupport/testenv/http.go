package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"

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
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, err
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("enter %s: %w", path, err)
	}
	fd, serr := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the other namespace: let it die with the
		// locked goroutine rather than serve others.
		if serr == nil {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("return from %s: %w", path, err)
	}
	if serr != nil {
		return nil, serr
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
