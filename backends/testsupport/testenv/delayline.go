package testenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of one direction of a delay line (ctload delay): a packet that
// would take the queue over either is dropped (counted in
// DelayLine.Dropped), as a router with a full buffer would. 8 MB holds
// 0.8 s at 10 MB/s, far beyond any round trip a bed emulates.
const (
	DelayMaxBytes   = 8 << 20
	DelayMaxPackets = 20_000
)

// DelayLine is a running "ctload delay" in a bed's router namespace: it
// moves IP packets between two TUN devices, holding each for a fixed
// one-way delay, a userspace stand-in for netem (absent from this kernel).
// It runs as its own process (nice -20) with a thread per direction at
// real-time priority (SCHED_FIFO 1), so that neither the test's goroutines
// nor the machine's load hold it up: in the test process, under a load of
// 7 on 2 cores, packets left up to 470 ms late; at nice -20 in a process of
// its own up to 285 ms; at SCHED_FIFO 3–16 ms (MaxLate). It carries 50–90
// MB/s at most, then taking most of both cores: run limited flows across
// it. Its counters arrive every 100 ms.
type DelayLine struct {
	Delay   time.Duration // one way
	cmd     *exec.Cmd
	stdin   io.Closer
	passed  atomic.Uint64
	dropped atomic.Uint64
	late    atomic.Int64
	done    chan struct{}
}

// Passed returns how many packets the line delivered (both directions).
func (d *DelayLine) Passed() uint64 { return d.passed.Load() }

// Dropped returns how many packets the line dropped because a direction's
// queue was full (DelayMaxBytes, DelayMaxPackets).
func (d *DelayLine) Dropped() uint64 { return d.dropped.Load() }

// MaxLate returns the most any packet left after its time: how far the
// line's own scheduling stretched the delay (a loaded machine).
func (d *DelayLine) MaxLate() time.Duration { return time.Duration(d.late.Load()) }

// CPU returns the CPU time the line's process used so far.
func (d *DelayLine) CPU() time.Duration { return ProcCPU(d.cmd.Process.Pid) }

// Settle waits for the line's next report, so its counters cover what was
// sent before the call.
func (d *DelayLine) Settle() { time.Sleep(250 * time.Millisecond) }

// startDelayLine starts "ctload delay" in namespace ns creating TUN devices
// a and b, with the given one-way delay, and waits until they exist.
func (b *Bed) startDelayLine(ns, a, tb string, delay time.Duration) (*DelayLine, error) {
	d := &DelayLine{Delay: delay, done: make(chan struct{})}
	d.cmd = b.Command(ns, "nice", "-n", "-20", Ctload(b.t), "delay", "-a", a, "-b", tb, "-delay", delay.String())
	var stderr Buffer
	d.cmd.Stderr = &stderr
	stdin, err := d.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	d.stdin = stdin
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ctload delay: %w", err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		close(d.done)
		d.Close()
		return nil, fmt.Errorf("ctload delay did not start: %s", strings.TrimSpace(stderr.String()))
	}
	go func() {
		defer close(d.done)
		for sc.Scan() {
			var c struct {
				Passed  uint64 `json:"passed"`
				Dropped uint64 `json:"dropped"`
				LateNS  uint64 `json:"late_ns"`
			}
			if json.Unmarshal(sc.Bytes(), &c) == nil {
				d.passed.Store(c.Passed)
				d.dropped.Store(c.Dropped)
				d.late.Store(int64(c.LateNS))
			}
		}
	}()
	return d, nil
}

// Close stops the line (its TUN devices go with it) and waits for it.
func (d *DelayLine) Close() {
	d.stdin.Close()
	d.cmd.Process.Kill()
	d.cmd.Wait()
	<-d.done
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
