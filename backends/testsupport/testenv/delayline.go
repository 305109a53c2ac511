package testenv

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of one direction of a delay line: a packet that would take the
// queue over either is dropped (counted in DelayLine.Dropped), as a router
// with a full buffer would. 8 MB holds 6.4 s at 10 MB/s, far beyond any
// round trip a bed emulates.
const (
	DelayMaxBytes   = 8 << 20
	DelayMaxPackets = 20_000
)

// DelayLine moves IP packets between two TUN devices in a router namespace,
// holding each for a fixed one-way delay: a userspace stand-in for netem
// (absent from this kernel). Each direction is one goroutine locked to its
// own thread at nice -20 (the line shares a loaded machine with the tests'
// traffic), which waits in ppoll(2) for a packet or for the next one due,
// whichever comes first, so a packet leaves within scheduling latency of
// its time and in order.
type DelayLine struct {
	Delay   time.Duration // one way
	passed  atomic.Uint64 // packets
	dropped atomic.Uint64 // packets over the queue's bounds
	stop    atomic.Bool
	fds     []int
	wg      sync.WaitGroup
}

// Passed returns how many packets the line delivered (both directions).
func (d *DelayLine) Passed() uint64 { return d.passed.Load() }

// Dropped returns how many packets the line dropped because a direction's
// queue was full (DelayMaxBytes, DelayMaxPackets).
func (d *DelayLine) Dropped() uint64 { return d.dropped.Load() }

// startDelayLine creates TUN devices a and b in the network namespace at
// nsPath and starts moving packets a→b and b→a with the given one-way
// delay. Close stops it and removes the devices.
func startDelayLine(nsPath, a, b string, delay time.Duration) (*DelayLine, error) {
	d := &DelayLine{Delay: delay}
	for _, name := range []string{a, b} {
		fd, err := openTUN(nsPath, name)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.fds = append(d.fds, fd)
	}
	d.wg.Add(2)
	go d.direction(d.fds[0], d.fds[1])
	go d.direction(d.fds[1], d.fds[0])
	return d, nil
}

type delayed struct {
	due time.Time
	pkt []byte
}

// pollIdle is how long a direction with nothing queued waits before it
// looks at the stop flag again.
const pollIdle = 100 * time.Millisecond

// direction moves packets from in to out until Close.
func (d *DelayLine) direction(in, out int) {
	defer d.wg.Done()
	runtime.LockOSThread() // the thread exits with the goroutine: its nice value goes with it
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -20)
	var q []delayed
	queued := 0 // bytes
	buf := make([]byte, 65536)
	fds := []unix.PollFd{{Fd: int32(in), Events: unix.POLLIN}}
	for !d.stop.Load() {
		wait := pollIdle
		if len(q) > 0 {
			wait = max(time.Until(q[0].due), 0)
		}
		ts := unix.NsecToTimespec(wait.Nanoseconds())
		if _, err := unix.Ppoll(fds, &ts, nil); err != nil && err != unix.EINTR {
			return
		}
		for range 256 { // what arrived, bounded so that due packets still leave
			n, err := unix.Read(in, buf)
			if err != nil || n <= 0 {
				break
			}
			if queued+n > DelayMaxBytes || len(q) >= DelayMaxPackets {
				d.dropped.Add(1)
				continue
			}
			q = append(q, delayed{time.Now().Add(d.Delay), append([]byte(nil), buf[:n]...)})
			queued += n
		}
		now := time.Now()
		sent := 0
		for sent < len(q) && !q[sent].due.After(now) {
			if _, err := unix.Write(out, q[sent].pkt); err == nil {
				d.passed.Add(1)
			}
			queued -= len(q[sent].pkt)
			sent++
		}
		q = q[sent:]
		if cap(q) > 4*DelayMaxPackets && len(q) < DelayMaxPackets { // let the array go
			q = append([]delayed(nil), q...)
		}
	}
}

// Close stops the line, waits for its threads and closes its TUN devices
// (which removes them).
func (d *DelayLine) Close() {
	d.stop.Store(true)
	d.wg.Wait()
	for _, fd := range d.fds {
		unix.Close(fd)
	}
	d.fds = nil
}

// openTUN creates TUN device name (IP packets, no packet information
// header) in the network namespace at nsPath and returns its descriptor,
// non-blocking: a direction reads what ppoll says arrived.
func openTUN(nsPath, name string) (int, error) {
	var fd int
	err := inNetns(nsPath, func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("create tun %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// inNetns runs fn on a thread switched into the network namespace at path
// and back. A thread that cannot switch back is left locked, so it dies
// with the goroutine instead of serving others.
func inNetns(path string, fn func() error) error {
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", path, err)
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("return from %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
