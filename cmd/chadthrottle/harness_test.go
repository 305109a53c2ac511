package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// The GUI's test hooks (testhooks.go) are compiled in only with this build
// tag; startGUI builds the binary with it when env sets one of them.
const (
	// prodTags: the tags make build gives the GUI (Makefile BUILD_TAGS);
	// the binaries the tests run are built with them too
	prodTags      = "no_emoji"
	hooksTag      = "testhooks"
	envHookPrefix = "CHADTHROTTLE_TEST_"
	envSynthetic  = envHookPrefix + "SYNTHETIC_APPS" // testhooks.go: hookSynthetic
	envCallLog    = envHookPrefix + "CALL_LOG"       // testhooks.go: hookCallLog
)

type built struct {
	bin string
	err error
}

var (
	guiMu  sync.Mutex
	guiBin = map[string]built{} // by build tags
)

// TestMain removes the binaries buildGUITags made.
func TestMain(m *testing.M) {
	code := m.Run()
	bustest.RemoveBuilt()
	for _, b := range guiBin {
		if b.bin != "" {
			os.RemoveAll(filepath.Dir(b.bin))
		}
	}
	os.Exit(code)
}

// buildGUI builds the production binary of this command once per test
// binary (cgo; minutes when the build cache is cold).
func buildGUI(t testing.TB) string {
	t.Helper()
	return buildGUITags(t, "")
}

// buildGUITags builds this command with build tags, once per test binary
// and tags.
func buildGUITags(t testing.TB, tags string) string {
	t.Helper()
	guiMu.Lock()
	defer guiMu.Unlock()
	b, ok := guiBin[tags]
	if !ok {
		b = goBuildGUI(tags)
		guiBin[tags] = b
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

func goBuildGUI(tags string) built {
	dir, err := os.MkdirTemp("", "chadthrottle-gui-")
	if err != nil {
		return built{err: err}
	}
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "chadthrottle")
	cmd := exec.Command("go", "build", "-tags", strings.TrimSpace(prodTags+" "+tags), "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return built{err: fmt.Errorf("go build -tags '%s' ./cmd/chadthrottle: %v\n%s", tags, err, out)}
	}
	return built{bin: bin}
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
	tags := "" // the production binary, unless a test hook is asked for
	for _, e := range env {
		if strings.HasPrefix(e, envHookPrefix) {
			tags = hooksTag
		}
	}
	cmd := exec.Command(buildGUITags(t, tags), args...)
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

// waitWindow waits, polling every poll, for a visible window of the GUI's
// display whose title matches name (an xdotool regular expression) and
// returns its id; it fails when the GUI exits first or no such window
// shows within d.
func (g *guiProc) waitWindow(t *testing.T, display, name string, d, poll time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", name)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		out, _ := cmd.Output()
		if f := strings.Fields(string(out)); len(f) > 0 {
			return f[0]
		}
		select {
		case <-g.exited:
			t.Fatalf("the GUI exited before a window %q showed:\n%s", name, g.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no window %q within %v:\n%s", name, d, g.out.String())
		}
		time.Sleep(poll)
	}
}
