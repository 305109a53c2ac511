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
// (absent from this kernel). One goroutine per direction reads packets from
// one TUN device and a second writes them, in order, to the other once due.
type DelayLine struct {
	Delay   time.Duration // one way
	passed  atomic.Uint64 // packets
	dropped atomic.Uint64 // packets over the queue's bounds
	files   []*os.File
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
		f, err := openTUN(nsPath, name)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.files = append(d.files, f)
	}
	d.direction(d.files[0], d.files[1])
	d.direction(d.files[1], d.files[0])
	return d, nil
}

type delayed struct {
	due time.Time
	pkt []byte
}

// direction moves packets from in to out.
func (d *DelayLine) direction(in, out *os.File) {
	q := make(chan delayed, DelayMaxPackets)
	var queued atomic.Int64 // bytes
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		defer close(q)
		buf := make([]byte, 65536)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return // closed
			}
			if queued.Load()+int64(n) > DelayMaxBytes {
				d.dropped.Add(1)
				continue
			}
			select {
			case q <- delayed{time.Now().Add(d.Delay), append([]byte(nil), buf[:n]...)}:
				queued.Add(int64(n))
			default:
				d.dropped.Add(1)
			}
		}
	}()
	go func() {
		defer d.wg.Done()
		for p := range q {
			if w := time.Until(p.due); w > 0 {
				time.Sleep(w)
			}
			queued.Add(-int64(len(p.pkt)))
			if _, err := out.Write(p.pkt); err == nil {
				d.passed.Add(1)
			}
		}
	}()
}

// Close stops the line, closes its TUN devices (which removes them) and
// waits for its goroutines.
func (d *DelayLine) Close() {
	for _, f := range d.files {
		f.Close()
	}
	d.wg.Wait()
}

// openTUN creates TUN device name (IP packets, no packet information
// header) in the network namespace at nsPath and returns its descriptor,
// non-blocking so that Close interrupts a read.
func openTUN(nsPath, name string) (*os.File, error) {
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
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
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
