package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of one direction of the delay line: a packet that would take the
// queue over either is dropped, as a router with a full buffer would.
const (
	delayMaxBytes   = 8 << 20
	delayMaxPackets = 20_000
)

// delayLine holds IP packets between two TUN devices for a fixed one-way
// delay, one goroutine per direction, each locked to its own thread, waiting
// in ppoll(2) for a packet or for the next one due, whichever comes first.
type delayLine struct {
	Delay   time.Duration
	passed  atomic.Uint64
	dropped atomic.Uint64
	late    [2]atomic.Int64 // per direction: most a packet left after its time (ns)
	stop    atomic.Bool
	wg      sync.WaitGroup
}

// delayMain is "ctload delay": it creates TUN devices -a and -b in its
// network namespace, moves packets a→b and b→a with -delay each way, prints
// "ready" and then a JSON line of counters every 100 ms ({"passed":n,
// "dropped":n,"late_ns":n}) until its standard input closes (the test that
// started it ended) or it is killed; the devices go with it. Its two
// threads run at real-time priority: it stands for a network path on a
// loaded machine.
func delayMain(args []string) error {
	fs := flag.NewFlagSet("delay", flag.ExitOnError)
	a := fs.String("a", "", "first TUN device to create")
	b := fs.String("b", "", "second TUN device to create")
	delay := fs.Duration("delay", 10*time.Millisecond, "one-way delay (≤ 1s)")
	fs.Parse(args)
	if *a == "" || *b == "" || *delay < 0 || *delay > time.Second {
		return fmt.Errorf("delay: need -a, -b and a delay in [0, 1s]")
	}
	// Each direction holds a P while it runs: never wait for one behind
	// the runtime's other threads.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 8))
	debug.SetGCPercent(400) // a packet is garbage once written: collect seldom
	fa, err := openTUN(*a)
	if err != nil {
		return err
	}
	fb, err := openTUN(*b)
	if err != nil {
		return err
	}
	d := &delayLine{Delay: *delay}
	d.wg.Add(2)
	go d.direction(0, fa, fb)
	go d.direction(1, fb, fa)
	fmt.Println("ready")
	go func() { io.Copy(io.Discard, os.Stdin); d.stop.Store(true) }()
	enc := json.NewEncoder(os.Stdout)
	for !d.stop.Load() {
		time.Sleep(100 * time.Millisecond)
		late := max(d.late[0].Load(), d.late[1].Load())
		if enc.Encode(map[string]uint64{"passed": d.passed.Load(), "dropped": d.dropped.Load(), "late_ns": uint64(late)}) != nil {
			d.stop.Store(true)
		}
	}
	d.wg.Wait()
	return nil
}

type delayed struct {
	due time.Time
	pkt []byte
}

// pollIdle is how long a direction with nothing queued waits before it
// looks at the stop flag again.
const pollIdle = 100 * time.Millisecond

// direction moves packets from in to out until Close.
func (d *delayLine) direction(dir int, in, out int) {
	defer d.wg.Done()
	// A thread of its own at real-time priority 1 (above every normal
	// task): at nice -20 a loaded 2-core VM still held packets up to
	// 285 ms past their time, at SCHED_FIFO 3–16 ms. It only runs while
	// packets come (the senders are normal tasks), but an unlimited flow
	// across it takes most of both cores: keep flows limited. Without the
	// privilege it stays at the process's nice value.
	runtime.LockOSThread()
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}, 0)
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
			if queued+n > delayMaxBytes || len(q) >= delayMaxPackets {
				d.dropped.Add(1)
				continue
			}
			q = append(q, delayed{time.Now().Add(d.Delay), append([]byte(nil), buf[:n]...)})
			queued += n
		}
		now := time.Now()
		if len(q) > 0 {
			if late := int64(now.Sub(q[0].due)); late > d.late[dir].Load() {
				d.late[dir].Store(late)
			}
		}
		sent := 0
		for sent < len(q) && !q[sent].due.After(now) {
			if _, err := unix.Write(out, q[sent].pkt); err == nil {
				d.passed.Add(1)
			}
			queued -= len(q[sent].pkt)
			sent++
		}
		q = q[sent:]
		if cap(q) > 4*delayMaxPackets && len(q) < delayMaxPackets { // let the array go
			q = append([]delayed(nil), q...)
		}
	}
}

// openTUN creates TUN device name (IP packets, no packet information
// header) in this network namespace and returns its descriptor,
// non-blocking: a direction reads what ppoll says arrived.
func openTUN(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("create tun %s: %w", name, err)
	}
	return fd, nil
}
