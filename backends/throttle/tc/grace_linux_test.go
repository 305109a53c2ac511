//go:build linux

package tc

import (
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestReleaseGrace: removing the last limit unshapes at once but keeps the
// IFB device for releaseGrace; a limit set meanwhile reuses it (the same
// device, no teardown and rebuild on the caller's path); Cleanup removes
// it at once, and without a new limit it goes by itself.
func TestReleaseGrace(t *testing.T) {
	defer func(g time.Duration) { releaseGrace = g }(releaseGrace)
	releaseGrace = 1500 * time.Millisecond // the product's 5 s, shorter to keep CI short
	e := newEnv(t)
	for _, dir := range []direction{egress, ingress} {
		b := initBackend(t, e, dir)
		sleeper := e.bed.Command(e.bed.Local, "sleep", "60")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
		target := e.place(t, "grace"+mode(dir), backends.TargetProcess, sleeper.Process.Pid)
		ifb := func() string {
			var out []string
			for _, line := range strings.Split(e.ipOut(t, "-o", "link", "show", "type", "ifb"), "\n") {
				if f := strings.Fields(line); len(f) > 1 {
					out = append(out, f[0]+f[1]) // index and name
				}
			}
			return strings.Join(out, " ")
		}
		if err := b.SetLimit(target, backends.Limit{Rate: 1_000_000}); err != nil {
			t.Fatal(err)
		}
		first := ifb()
		if first == "" {
			t.Fatalf("%s: no IFB device while limited", b.Name())
		}
		if err := b.RemoveLimit(target.ID); err != nil {
			t.Fatal(err)
		}
		if got := ifb(); got != first {
			t.Errorf("%s: right after the last RemoveLimit the IFBs are %q, want %q kept for the grace period", b.Name(), got, first)
		}
		t0 := time.Now()
		if err := b.SetLimit(target, backends.Limit{Rate: 2_000_000}); err != nil {
			t.Fatal(err)
		}
		took := time.Since(t0)
		if got := ifb(); got != first {
			t.Errorf("%s: a limit within the grace period rebuilt the IFB: %q, was %q", b.Name(), got, first)
		}
		t.Logf("%s: limit within the grace period took %v", b.Name(), took)
		if err := b.RemoveLimit(target.ID); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(releaseGrace + 5*time.Second)
		for ifb() != "" && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := ifb(); got != "" {
			t.Errorf("%s: IFBs %q still there %v after the last limit went", b.Name(), got, releaseGrace+5*time.Second)
		}
		if err := b.(interface{ released() error }).released(); err != nil {
			t.Errorf("%s: release: %v", b.Name(), err)
		}
		// Cleanup within the grace period removes at once.
		if err := b.SetLimit(target, backends.Limit{Rate: 1_000_000}); err != nil {
			t.Fatal(err)
		}
		if err := b.RemoveLimit(target.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if got := ifb(); got != "" {
			t.Errorf("%s: IFBs %q left after Cleanup", b.Name(), got)
		}
	}
}

func (e *env) ipOut(t *testing.T, args ...string) string {
	t.Helper()
	return testenv.Run(t, "nsenter", append([]string{"--net=" + testenv.Path(e.bed.Local), "--", "ip"}, args...)...)
}
