//go:build linux

package engine

import (
	"fmt"
	"os"

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
	initNS, err := initNetns()
	if err != nil {
		return nil, err
	}
	defer initNS.Close()
	var w *procnet.Watcher
	err = procnet.InNetNS(int(initNS.Fd()), func() (err error) {
		w, err = procnet.WatchProcesses()
		return err
	})
	return w, err
}

// initNetns opens the initial network namespace: init's, or that of
// kthreadd (pid 2; kernel threads live in the initial namespaces) when
// init's cannot be opened.
func initNetns() (*os.File, error) {
	f, err := os.Open("/proc/1/ns/net")
	if err == nil {
		return f, nil
	}
	_, _, kthread, _, serr := procFS{root: "/proc"}.stat(2)
	if serr != nil || !kthread {
		return nil, fmt.Errorf("initial network namespace: %w", err)
	}
	f, err2 := os.Open("/proc/2/ns/net")
	if err2 != nil {
		return nil, fmt.Errorf("initial network namespace: %w (kthreadd's: %v)", err, err2)
	}
	return f, nil
}
