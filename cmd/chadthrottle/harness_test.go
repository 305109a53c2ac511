package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testenv"
)

var (
	guiOnce sync.Once
	guiBin  string
	guiErr  error
)

// buildGUI builds this command once per test binary (cgo; minutes when
// the build cache is cold).
func buildGUI(t testing.TB) string {
	t.Helper()
	guiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chadthrottle-gui-")
		if err != nil {
			guiErr = err
			return
		}
		os.Chmod(dir, 0o755)
		guiBin = filepath.Join(dir, "chadthrottle")
		cmd := exec.Command("go", "build", "-o", guiBin, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			guiErr = fmt.Errorf("go build ./cmd/chadthrottle: %v\n%s", err, out)
		}
	})
	if guiErr != nil {
		t.Fatal(guiErr)
	}
	return guiBin
}

// startXvfb starts a virtual X server on a free display and returns its
// DISPLAY value; it is stopped when the test ends.
func startXvfb(t testing.TB) string {
	t.Helper()
	testenv.RequireTool(t, "Xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
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

// gui is a running chadthrottle binary.
type guiProc struct {
	cmd    *exec.Cmd
	out    *testenv.Buffer
	exited chan struct{}
}

// startGUI runs the GUI binary with env added to a minimal environment
// (its own HOME, so preferences start fresh); killed at the end.
func startGUI(t testing.TB, env []string, args ...string) *guiProc {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(buildGUI(t), args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR=" + home, "LANG=C.UTF-8",
	}, env...)
	g := &guiProc{cmd: cmd, out: &testenv.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = g.out, g.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chadthrottle: %v", err)
	}
	go func() { cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-g.exited
		if t.Failed() {
			t.Logf("chadthrottle output:\n%s", g.out.String())
		}
	})
	return g
}

// screenshot saves the X screen as a PNG in the test's artifact directory
// and returns its path.
func screenshot(t *testing.T, display, name string) string {
	t.Helper()
	path := filepath.Join(t.ArtifactDir(), name+".png")
	cmd := exec.Command("import", "-window", "root", path)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("screenshot %s: %v\n%s", name, err, out)
		return ""
	}
	t.Logf("screenshot: %s", path)
	return path
}
