// Package testenv gives tests the privileged environment they need: the
// CI skip rule (a privileged test may skip on a laptop, never under CI=true),
// throwaway network-namespace test beds joined by veth, and the ctload
// traffic tool. Only tests import it.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Skip skips the test with reason, except under CI where a missing
// privilege or tool is a failure.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true: privileged test cannot run: %s", msg)
	}
	t.Skipf("skipping: %s (set up the machine or run as root; under CI=true this fails)", msg)
}

// KernelLacks skips a test because the kernel truly lacks a feature, which
// the caller has shown by probing (probeErr). It says so loudly, in CI too.
func KernelLacks(t testing.TB, feature string, probeErr error) {
	t.Helper()
	t.Logf("!!! KERNEL LACKS %s: %v !!!", feature, probeErr)
	fmt.Fprintf(os.Stderr, "!!! %s: kernel lacks %s (probe: %v) — test skipped\n", t.Name(), feature, probeErr)
	t.Skipf("kernel lacks %s: %v", feature, probeErr)
}

// RequireRoot skips (fails under CI) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (euid %d)", os.Geteuid())
	}
}

// RequireTool skips (fails under CI) unless each named program is on PATH
// and returns their paths.
func RequireTool(t testing.TB, names ...string) []string {
	t.Helper()
	var paths []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			Skip(t, "needs %s on PATH (install it; .ci/run does)", n)
		}
		paths = append(paths, p)
	}
	return paths
}

// Run runs a command and fails the test on error, returning its stdout.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Output(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// Output runs a command and returns its stdout; the error includes stderr.
func Output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

var seq atomic.Int64

// UniqueName returns a short name (≤ 15 bytes, fits an interface name) that
// is unique across parallel test processes: prefix + pid + counter.
func UniqueName(prefix string) string {
	n := fmt.Sprintf("%s%x%x", prefix, os.Getpid()%0xfffff, seq.Add(1))
	if len(n) > 15 {
		n = n[len(n)-15:]
	}
	return n
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Ctload builds the ctload traffic tool once per test binary and returns
// its path.
func Ctload(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		dir, err := os.MkdirTemp("", "ctload")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "ctload")
		cmd := exec.Command("go", "build", "-o", buildPath, "./ctload")
		cmd.Dir = filepath.Dir(file)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build ctload: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Buffer is a bytes.Buffer safe for a running command to write while the
// test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Settles checks a rate measured soon after a limit was set on a running
// transfer: it must be within [lo, hi] × limit, or, when that window caught
// the clamp's transient, within it over a second window that again()
// measures. Clamping a free-running TCP transfer swings for seconds: the
// sender loses most of its window at once, and on the receiving side data
// that arrived out of order before the limit is delivered in order later.
// It reports an error naming what and returns false when the rate did not
// settle.
func Settles(t testing.TB, what string, got float64, again func() float64, limit, lo, hi float64) bool {
	t.Helper()
	if got >= lo*limit && got <= hi*limit {
		return true
	}
	later := again()
	t.Logf("%s: %.0f B/s (transient), then %.0f B/s; limit %.0f B/s", what, got, later, limit)
	// A stall in one window and its catch-up in the next (a policer's
	// saved tokens after a retransmission timeout: 0.65 × then 1.31 × once
	// in CI under load) straddle the range; together they hold the limit.
	if mean := (got + later) / 2; (got < lo*limit) != (later < lo*limit) && mean >= lo*limit && mean <= hi*limit {
		t.Logf("%s: a stall and its catch-up; %.0f B/s over both windows", what, mean)
		return true
	}
	if later < lo*limit || later > hi*limit {
		t.Errorf("%s runs at %.0f B/s and then %.0f B/s under a %.0f B/s limit (want %.2f–%.2f ×)", what, got, later, limit, lo, hi)
		return false
	}
	return true
}
