package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// desktopKey reads key from the [Desktop Entry] group of a .desktop file.
func desktopKey(t *testing.T, path, key string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok && k == key {
			return v
		}
	}
	return ""
}

// TestWMClass: the real window's WM_CLASS (read with xprop from the X
// server) is the StartupWMClass of the menu entry and the autostart entry,
// so docks and task bars group the window under ChadThrottle's icon.
func TestWMClass(t *testing.T) {
	testenv.RequireTool(t, "xdotool", "xprop")
	display := testenv.StartXvfb(t)
	g := startGUI(t, []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/chadthrottle-test-session",
		"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/chadthrottle-test"})
	var win string
	testenv.AwaitDaemon(t, "the window", g.exited, g.out, 60*time.Second, func() bool {
		w := visibleWindows(t, display)
		if len(w) > 0 {
			win = w[0]
		}
		return win != ""
	})
	cmd := exec.Command("xprop", "-id", win, "WM_CLASS")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xprop: %v", err)
	}
	m := regexp.MustCompile(`WM_CLASS\(STRING\) = "([^"]*)", "([^"]*)"`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("xprop printed %q", out)
	}
	t.Logf("WM_CLASS instance %q, class %q", m[1], m[2])
	for _, f := range []string{"packaging/desktop/io.github.chadthrottle.desktop", "packaging/autostart/io.github.chadthrottle.desktop"} {
		if got := desktopKey(t, filepath.Join(bustest.RepoRoot(), f), "StartupWMClass"); got != m[2] {
			t.Errorf("%s: StartupWMClass=%q, the window's class is %q", f, got, m[2])
		}
	}
}
