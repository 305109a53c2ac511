package testenv

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// CopyProgram copies program name (looked up on PATH) to a file of the
// test's own, so a rule, block or quota on it matches this test's runs
// only, not the program other tests run at the same time.
func CopyProgram(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Skip(t, "needs %s on PATH (install it; .ci/run does)", name)
	}
	prog := filepath.Join(t.TempDir(), "ct-"+filepath.Base(name)+"-"+UniqueName("p"))
	if out, err := exec.Command("cp", path, prog).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v %s", name, err, out)
	}
	return prog
}
