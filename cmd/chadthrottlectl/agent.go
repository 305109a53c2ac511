package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startTTYAgent starts polkit's text authentication agent (pkttyagent)
// before a limiting call, as systemctl does, so that polkit can ask for a
// password in the terminal when no graphical agent runs (SSH, a console).
// It does so only when stdin is a terminal, the helper is on this machine
// and the caller is not root (root is never asked). stop ends the agent.
func startTTYAgent(c *call) (stop func()) {
	noop := func() {}
	if c.o.host != "" || sys.getuid() == 0 || !sys.stdinTTY() {
		return noop
	}
	path, err := exec.LookPath(sys.ttyAgent)
	if err != nil {
		return noop // polkit's agent is not installed: polkit cannot ask here
	}
	r, w, err := os.Pipe()
	if err != nil {
		return noop
	}
	defer r.Close()
	// The helper asks polkit about our bus name. polkit finds an agent
	// for that through the login session (logind), or — in versions that
	// look up the process behind a bus name — through this process. In a
	// session the agent registers for it as a fallback, so a graphical
	// agent, if one runs, asks instead (as with systemctl); without a
	// session (a container, no logind) it registers for this process.
	args := []string{"--process", strconv.Itoa(os.Getpid())}
	if sys.getenv("XDG_SESSION_ID") != "" {
		args = []string{"--fallback"}
	}
	// --notify-fd: the agent closes the pipe once it is registered; the
	// call must wait for that, or polkit finds no agent to ask.
	cmd := exec.Command(path, append(args, "--notify-fd", "3")...)
	// It asks on the controlling terminal; its complaints (another agent
	// is registered already) are not ours to show.
	cmd.Stdin = os.Stdin
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = os.Environ()
	if strings.Contains(c.o.bus, ":") {
		// polkitd listens on the bus the helper uses (a test's private bus).
		cmd.Env = append(cmd.Env, "DBUS_SYSTEM_BUS_ADDRESS="+c.o.bus)
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return noop
	}
	registered := make(chan struct{})
	go func() {
		var b [1]byte
		r.Read(b[:]) // EOF when the agent closed its end (or exited)
		close(registered)
	}()
	select {
	case <-registered:
	case <-time.After(5 * time.Second):
	case <-c.ctx.Done():
	}
	return func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
}
