package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

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
