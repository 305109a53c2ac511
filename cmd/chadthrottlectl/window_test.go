//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// The window attached to the remote helper over ssh: `chadthrottle --host`
// runs on the workstation as the workstation user (in Xvfb), shows the
// remote side's apps and the limit set there, and names the host in its
// title. The screenshot lands in $CHADTHROTTLE_SCREENSHOT_DIR when set,
// else in the test's artifact directory.
func TestRemoteWindow(t *testing.T) {
	testenv.RequireTool(t, "Xvfb", "xdotool", "import")
	r := newRemoteBed(t)
	gui := bustest.BuildBinary(t, "./cmd/chadthrottle")
	display := testenv.StartXvfb(t)
	host := r.Host(r.Admin)

	sink := r.bed.StartServer(r.bed.Peer, "sink", "[::]:5201", false)
	r.bed.StartClient(r.bed.Local, "send", r.bed.PeerIP+":5201", 90*time.Second, 500*time.Millisecond)
	if out, errOut, code := r.Ctl(t, "", "-H", host, "--bus", r.bus.Address, "limit", "--app", testenv.Ctload(t), "--uid", "0",
		"--up", "1MB/s", "--down", "4MB/s"); code != 0 {
		t.Fatalf("limit over ssh: %d %s%s", code, out, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runtime := filepath.Join(r.LocalHome, "run")
	os.MkdirAll(runtime, 0o700)
	must(t, "chown", "-R", r.Local.Name+":", r.LocalHome)
	cmd := r.AsLocal(ctx, "/usr/bin:/bin", gui, "--host", host, "--bus", r.bus.Address)
	cmd.Env = append(cmd.Env, "DISPLAY="+display, "XDG_RUNTIME_DIR="+runtime)
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("chadthrottle output:\n%s", out.String())
		}
	})
	title := "ChadThrottle — " + host
	testenv.AwaitDaemon(t, "a window titled "+title, exited, out, 60*time.Second, func() bool {
		c := exec.Command("xdotool", "search", "--name", title)
		c.Env = append(os.Environ(), "DISPLAY="+display)
		b, err := c.Output()
		return err == nil && strings.TrimSpace(string(b)) != ""
	})
	time.Sleep(6 * time.Second) // a few polls: rates, the graph, the limit
	rx := testenv.NewTCPCounter(t, r.bed.Peer).Rate(t, false, 3*time.Second, sink.Process.Pid)
	top, _, _ := r.Ctl(t, "", "-H", host, "--bus", r.bus.Address, "top")
	t.Logf("the receiver gets %.0f B/s from the limited remote sender (rule: up 1 MB/s); the helper's top says:\n%s", rx, top)
	if !strings.Contains(r.sshdOut.String(), "Starting session: command for "+r.Admin.Name) {
		t.Errorf("sshd did not start the window's bridge session:\n%s", r.sshdOut.String())
	}
	dir := os.Getenv("CHADTHROTTLE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.ArtifactDir()
	}
	path := filepath.Join(dir, "remote-window.png")
	shot := exec.Command("import", "-window", "root", path)
	shot.Env = append(os.Environ(), "DISPLAY="+display)
	if b, err := shot.CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v: %s", err, b)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	t.Logf("screenshot: %s", path)
}
