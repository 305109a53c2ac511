package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/chadthrottle/chadthrottle/gui"
)

// ChadThrottle in the tray runs without Fyne's driver (gui.RunTray); the
// window needs it, and Fyne's driver cannot be stopped once started. So
// the process switches between the two by executing itself again (same
// pid; the session-bus connection closes, so the single-instance name and
// the tray item are taken again by the new image within a second), and
// hands what the next mode must know over in the environment.

// envHandover carries gui.Handover across the exec.
const envHandover = "CHADTHROTTLE_HANDOVER"

// takeHandover returns what the previous image of this process handed
// over (zero for a fresh start) and removes it from the environment, so
// that no child (ssh) and no later exec sees it.
func takeHandover() gui.Handover {
	v, ok := os.LookupEnv(envHandover)
	if !ok {
		return gui.Handover{}
	}
	os.Unsetenv(envHandover)
	h, err := gui.DecodeHandover(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chadthrottle: ignoring", envHandover+":", err)
		return gui.Handover{}
	}
	return h
}

// reexec executes this binary again for h's mode: the window, or the tray
// only (--hidden). It returns only on failure, which ends the program.
func reexec(bus, host string, h gui.Handover) {
	args := reexecArgs(bus, host, h)
	env := append(os.Environ(), envHandover+"="+h.Encode())
	err := syscall.Exec("/proc/self/exe", args, env)
	fmt.Fprintf(os.Stderr, "chadthrottle: cannot run %s again to %s: %v\n", strings.Join(args, " "),
		map[gui.Next]string{gui.NextWindow: "show the window", gui.NextTray: "hide in the tray"}[h.Next], err)
	os.Exit(1)
}

// reexecArgs are the command line of the next image: the machine and bus
// of this start, --hidden for the tray-only mode.
func reexecArgs(bus, host string, h gui.Handover) []string {
	args := []string{os.Args[0], "--bus", bus}
	if host != "" {
		args = append(args, "--host", host)
	}
	if h.Next == gui.NextTray {
		args = append(args, "--hidden")
	}
	return args
}
