//go:build linux

package socktarget

import (
	"os"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestTaggerSetUnset: numbers are per target ID, never reused; an app rule
// on a program that is not installed is accepted (nothing to tag yet); a
// process target's entries, children included, go with Unset.
func TestTaggerSetUnset(t *testing.T) {
	tg := testTagger(t, "unit")
	a, err := tg.Set(backends.Target{ID: "app", Kind: backends.TargetApp, Exe: "/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Set(backends.Target{ID: "missing", Kind: backends.TargetApp, Exe: "/no/such/program"}); err != nil {
		t.Errorf("rule on a program not installed: %v", err)
	}
	p, err := tg.Set(backends.Target{ID: "pid", Kind: backends.TargetProcess, PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	if a == 0 || p == 0 || a == p || tg.Number("app") != a {
		t.Fatalf("numbers app %d pid %d", a, p)
	}
	if again, _ := tg.Set(backends.Target{ID: "app", Kind: backends.TargetApp, Exe: "/bin/sh"}); again != a {
		t.Errorf("app got %d on update, had %d", again, a)
	}
	if err := tg.Unset("pid"); err != nil {
		t.Fatal(err)
	}
	var n uint32
	if err := tg.objs.PidTargets.Lookup(uint32(os.Getpid()), &n); err == nil {
		t.Errorf("pid entry left after Unset: %d", n)
	}
	if p2, _ := tg.Set(backends.Target{ID: "pid", Kind: backends.TargetProcess, PIDs: []int{os.Getpid()}}); p2 == p {
		t.Errorf("number %d reused", p)
	}
	for _, id := range []string{"app", "missing", "pid"} {
		if err := tg.Unset(id); err != nil {
			t.Error(err)
		}
	}
	if len(tg.links) != 0 {
		t.Errorf("%d links attached with no target", len(tg.links))
	}
}

// testTagger returns a tagger of its own for the test, closed with it;
// it skips where the kernel cannot tag sockets.
func testTagger(t *testing.T, name string) *Tagger {
	t.Helper()
	testenv.RequireRoot(t)
	if err := Probe(); err != nil {
		testenv.KernelLacks(t, "socket tagging at creation", err)
	}
	tg, err := Acquire(testenv.UniqueName(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}
