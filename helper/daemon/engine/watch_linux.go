//go:build linux

package engine

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"

	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// watchExecs subscribes to the kernel's proc connector and reports exec
// and credential-change events (and lost events, as pid 0) to fn from its own goroutine until
// stop is closed. A process that execs a program with a rule is then
// limited within milliseconds instead of at the next /proc scan. It returns
// an error when the connector cannot be used (not root, not the initial
// user namespace); the engine then relies on scanning alone.
func watchExecs(fn func(pid int), stop <-chan struct{}) error {
	w, err := procnet.WatchProcesses()
	if err != nil {
		// The connector exists only in the initial network namespace; a
		// helper running in another one (tests, --netns setups) opens its
		// socket there. The socket keeps that namespace after the thread
		// switches back.
		var err2 error
		if w, err2 = watchInInitNetns(); err2 != nil {
			return fmt.Errorf("%w (from the initial network namespace: %v)", err, err2)
		}
	}
	go func() {
		<-stop
		w.Close()
	}()
	go func() {
		for ev := range w.C {
			switch ev.Kind {
			case procnet.EventExec, procnet.EventCreds:
				fn(ev.PID) // re-read: another program or other credentials
			case procnet.EventLost:
				fn(0)
			}
		}
	}()
	return nil
}

func watchInInitNetns() (*procnet.Watcher, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	initNS, err := initNetns()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer initNS.Close()
	if initNS.Equal(orig) {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("already in the initial network namespace")
	}
	if err := netns.Set(initNS); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter the initial network namespace: %w", err)
	}
	w, err := procnet.WatchProcesses()
	if err2 := netns.Set(orig); err2 != nil {
		// This thread must not run anything else: leave it locked so the
		// runtime discards it when the goroutine ends.
		if w != nil {
			w.Close()
		}
		return nil, fmt.Errorf("return to the helper's network namespace: %w", err2)
	}
	runtime.UnlockOSThread()
	return w, err
}

// initNetns opens the initial network namespace: init's, or that of
// kthreadd (pid 2; kernel threads live in the initial namespaces) when
// init's cannot be opened.
func initNetns() (netns.NsHandle, error) {
	h, err := netns.GetFromPath("/proc/1/ns/net")
	if err == nil {
		return h, nil
	}
	_, _, kthread, _, serr := procFS{root: "/proc"}.stat(2)
	if serr != nil || !kthread {
		return 0, fmt.Errorf("initial network namespace: %w", err)
	}
	h, err2 := netns.GetFromPath("/proc/2/ns/net")
	if err2 != nil {
		return 0, fmt.Errorf("initial network namespace: %w (kthreadd's: %v)", err, err2)
	}
	return h, nil
}
