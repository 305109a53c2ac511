//go:build linux

package engine

import (
	"github.com/chadthrottle/chadthrottle/backends/procnet"
)

// watchExecs subscribes to the kernel's proc connector and reports exec
// events (and lost events, as pid 0) to fn from its own goroutine until
// stop is closed. A process that execs a program with a rule is then
// limited within milliseconds instead of at the next /proc scan. It returns
// an error when the connector cannot be used (not root, not the initial
// user namespace); the engine then relies on scanning alone.
func watchExecs(fn func(pid int), stop <-chan struct{}) error {
	w, err := procnet.WatchProcesses()
	if err != nil {
		return err
	}
	go func() {
		<-stop
		w.Close()
	}()
	go func() {
		for ev := range w.C {
			switch ev.Kind {
			case procnet.EventExec:
				fn(ev.PID)
			case procnet.EventLost:
				fn(0)
			}
		}
	}()
	return nil
}
