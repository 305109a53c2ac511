package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartXvfb starts a virtual X server (1280×800, 24 bit) on a free display
// and returns its DISPLAY value; it is stopped when the test ends.
// -noreset: without it the server regenerates whenever its last client
// leaves (each xdotool poll), and a client connecting during that reset
// fails to open the display (8 of 300 xdpyinfo runs beside an xdotool
// loop here; 0 of 300 with -noreset) — make run's window died so in CI.
func StartXvfb(t testing.TB) string {
	t.Helper()
	RequireTool(t, "Xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
		r.Close()
	}()
	select {
	case d := <-line:
		if d == "" {
			t.Fatal("Xvfb did not report its display")
		}
		return ":" + d
	case <-time.After(20 * time.Second):
		t.Fatal("Xvfb did not start within 20 s")
	}
	return ""
}

// StartDaemon starts cmd (its output going to out) and stops it when the
// test ends: SIGTERM, then SIGKILL after 20 s (the helper removes its
// kernel state first); if the test failed, out is
// logged under name. The returned channel is closed when it exits.
func StartDaemon(t testing.TB, name string, cmd *exec.Cmd, out *Buffer) <-chan struct{} {
	t.Helper()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return exited
}

// AwaitDaemon polls ready every 20 ms until it holds. It fails the test,
// showing out, when the daemon (exited closes when it ends) exits first or
// after timeout; what names the wait ("sshd listening").
func AwaitDaemon(t testing.TB, what string, exited <-chan struct{}, out *Buffer, timeout time.Duration, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case <-exited:
			t.Fatalf("%s: the process exited:\n%s", what, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v:\n%s", what, timeout, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
