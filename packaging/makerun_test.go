//go:build linux

package packaging

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// makeRun is a running `make run`.
type makeRun struct {
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
}

func startMakeRun(t *testing.T, display string, env ...string) *makeRun {
	t.Helper()
	m := &makeRun{out: &testenv.Buffer{}, done: make(chan struct{})}
	m.cmd = exec.Command("make", "-C", repoRoot(t), "--no-print-directory", "run")
	m.cmd.Env = append(append(os.Environ(), "DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS="), env...)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("make run: %v", err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		select {
		case <-m.done:
		default: // the test failed before closing the window
			if pid := m.guiPID(t); pid > 0 {
				syscall.Kill(pid, syscall.SIGTERM)
			}
			select {
			case <-m.done:
			case <-time.After(30 * time.Second):
				t.Errorf("make run did not end after its window closed")
				m.cmd.Process.Kill()
			}
		}
		t.Logf("make run output:\n%s", m.out)
	})
	return m
}

// guiPID finds the window's process: bin/chadthrottle below make run.
func (m *makeRun) guiPID(t testing.TB) int {
	gui := filepath.Join(repoRoot(t), "bin", "chadthrottle")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != gui {
			continue
		}
		for p := pid; p > 1; p = parentPID(p) {
			if p == m.cmd.Process.Pid {
				return pid
			}
		}
	}
	return 0
}

func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// waitWindow waits until a window titled ChadThrottle is mapped.
func (m *makeRun) waitWindow(t *testing.T, display string) {
	t.Helper()
	// the first build of the window can take minutes on a cold cache
	limit := 6 * time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl)-time.Minute < limit {
		limit = time.Until(dl) - time.Minute // fail, with cleanups, before the test binary times out
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		cmd := exec.CommandContext(ctx, "xdotool", "search", "--onlyvisible", "--name", "ChadThrottle")
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		if out, err := cmd.Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			return
		}
		select {
		case <-m.done:
			t.Fatalf("make run ended before a window appeared:\n%s", m.out)
		case <-ctx.Done():
			t.Fatalf("no ChadThrottle window within %v:\n%s", limit.Round(time.Second), m.out)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// closeWindow ends the window like a user quitting it and waits for make
// run to finish its cleanup.
func (m *makeRun) closeWindow(t testing.TB) {
	t.Helper()
	pid := m.guiPID(t)
	if pid == 0 {
		t.Fatalf("no window process below make run")
	}
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not end within 30 s of its window closing:\n%s", m.out)
	}
}

// TestMakeRun runs the newcomer's command in both of its modes, under Xvfb:
// on a machine without a system bus (private bus, polkitd and helper started
// by make run, removed when the window closes) and with one (system files
// installed under /usr/local, the helper D-Bus activated).
func TestMakeRun(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "make", "Xvfb", "xdotool", "dbus-daemon", "dbus-send", "dbus-run-session")
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Skip(t, "needs go on PATH")
	}
	if _, err := os.Stat(polkitd); err != nil {
		testenv.Skip(t, "needs %s (Debian package polkitd)", polkitd)
	}
	// (see TestDebInstall: a timeout would skip the cleanups)
	if dl, ok := t.Deadline(); ok && time.Until(dl) < 3*time.Minute {
		t.Fatalf("only %v left before the test deadline; make run may build for minutes (go test -timeout 20m)", time.Until(dl).Round(time.Second))
	}
	display := testenv.StartXvfb(t)
	// make run's helper keeps its rules where the package's would; remove
	// what this test created there.
	for _, dir := range []string{StateDir, RuntimeDir} {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			t.Cleanup(func() { os.RemoveAll(dir) })
		}
	}

	built := false // by make run in the first subtest
	t.Run("private bus", func(t *testing.T) {
		if busRunning() {
			t.Skip("a system bus runs here, so make run uses it (the other subtest)")
		}
		policy := "/usr/share/polkit-1/actions/" + AppID + ".policy"
		_, policyErr := os.Stat(policy)
		m := startMakeRun(t, display)
		m.waitWindow(t, display)
		built = true

		addr := regexp.MustCompile(`helper running on (unix:path=\S+)`).FindStringSubmatch(m.out.String())
		if addr == nil {
			t.Fatalf("make run did not print the bus address:\n%s", m.out)
		}
		ctl := filepath.Join(repoRoot(t), "bin", "chadthrottlectl")
		out := run(t, nil, ctl, "--bus", addr[1], "backends")
		if !strings.Contains(out, "upload") {
			t.Errorf("chadthrottlectl backends on make run's bus:\n%s", out)
		}
		sock := strings.TrimPrefix(addr[1], "unix:path=")
		rundir := filepath.Dir(sock)

		m.closeWindow(t)
		if _, err := os.Stat(rundir); !os.IsNotExist(err) {
			t.Errorf("make run left %s (%v)", rundir, err)
		}
		if _, err := os.Stat("/etc/polkit-1/rules.d/49-chadthrottle-make-run.rules"); !os.IsNotExist(err) {
			t.Errorf("make run left its polkit rule (%v)", err)
		}
		if _, err := os.Stat(policy); os.IsNotExist(err) != os.IsNotExist(policyErr) {
			t.Errorf("polkit policy %s: existed before: %v, now: %v", policy, policyErr == nil, err == nil)
		}
		for _, p := range processesMentioning(rundir) {
			t.Errorf("process still running after make run ended: %s", p)
		}
		if left := kernelState(t); len(left) > 0 {
			t.Errorf("kernel state left: %q", left)
		}
	})

	t.Run("system bus", func(t *testing.T) {
		helper := "/usr/local/libexec/chadthrottle/chadthrottle-helper"
		if _, err := os.Stat(helper); err == nil {
			t.Fatalf("%s exists already; this test installs and removes it, so it will not touch an existing installation", helper)
		}
		before := systemFiles(t)
		t.Cleanup(func() { // also when the test fails half way
			cmd := exec.Command("make", "-C", repoRoot(t), "--no-print-directory", "uninstall", "PREFIX=/usr/local")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("make uninstall PREFIX=/usr/local: %v\n%s", err, out)
			}
			if after := systemFiles(t); !slices.Equal(after, before) {
				t.Errorf("files after make uninstall differ from before make run:\nbefore %q\n after %q", before, after)
			}
		})
		if !busRunning() {
			startDaemon(t, nil, "dbus-daemon", "--system", "--nofork", "--nopidfile", "--nosyslog")
			waitFor(t, "the system bus", 10*time.Second, busRunning)
			t.Cleanup(func() { os.Remove(systemBusSocket) })
		}
		if _, err := nameOwnerPID("org.freedesktop.PolicyKit1"); err != nil {
			startDaemon(t, nil, polkitd, "--no-debug")
			waitFor(t, "polkitd on the bus", 20*time.Second, func() bool {
				_, err := nameOwnerPID("org.freedesktop.PolicyKit1")
				return err == nil
			})
		}
		if pid, err := nameOwnerPID(api.BusName); err == nil {
			t.Fatalf("%s already has an owner (pid %d)", api.BusName, pid)
		}

		var env []string
		if built {
			env = append(env, "RUN_SKIP_BUILD=1") // bin/ is fresh from the first subtest
		}
		m := startMakeRun(t, display, env...)
		m.waitWindow(t, display)
		// The window's first call activated the installed helper.
		var pid int
		waitFor(t, "the helper on the system bus", 20*time.Second, func() bool {
			p, err := nameOwnerPID(api.BusName)
			pid = p
			return err == nil
		})
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != helper {
			t.Errorf("%s is owned by %q, want %s (installed and D-Bus activated)", api.BusName, exe, helper)
		}
		m.closeWindow(t)
		// make uninstall (cleanup) stops the helper: check it here.
		run(t, nil, "make", "-C", repoRoot(t), "--no-print-directory", "uninstall", "PREFIX=/usr/local")
		if _, err := nameOwnerPID(api.BusName); err == nil {
			t.Errorf("helper still on the bus after make uninstall")
		}
	})
}

// processesMentioning lists running processes whose command line contains s.
func processesMentioning(s string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) {
			found = append(found, e.Name()+" "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	return found
}
