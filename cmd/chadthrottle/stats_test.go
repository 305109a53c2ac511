package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestStatisticsScreenshot runs the real binary under Xvfb with a synthetic
// helper holding a week of generated history, opens the Statistics window
// and saves a screenshot of it (go test -artifacts keeps it).
func TestStatisticsScreenshot(t *testing.T) {
	testenv.RequireTool(t, "xdotool", "import")
	display := testenv.StartXvfb(t)
	env := []string{"DISPLAY=" + display, envSynthetic + "=12", envHookPrefix + "HISTORY_DAYS=7",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/chadthrottle-test"}
	g := startGUI(t, env)
	id := g.waitWindow(t, display, "Statistics", 60*time.Second, 100*time.Millisecond)
	time.Sleep(2 * time.Second) // loaded and drawn
	path := filepath.Join(t.ArtifactDir(), "statistics.png")
	cmd := exec.Command("import", "-window", id, path)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v\n%s", err, out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v, %v bytes", path, err, st)
	}
	t.Logf("screenshot: %s", path)
}
