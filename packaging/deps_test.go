package packaging

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// depsList prints deps.sh's package list for mode without installing.
func depsList(t *testing.T, mode string) []string {
	t.Helper()
	script := `eval "$(sed -n '/^RUN=(/,/^)/p;/^TEST=(/,/^)/p' packaging/scripts/deps.sh)"
case "$1" in run) echo "${RUN[@]}" ;; all) echo "${RUN[@]}" "${TEST[@]}" ;; esac`
	cmd := exec.Command("bash", "-c", script, "deps", mode)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deps.sh lists: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// TestRunDeps: `make run` (deps.sh run) installs what building and running
// need and none of the tools only the tests, benchmarks, code generation
// and packaging checks use; `make deps` installs both.
func TestRunDeps(t *testing.T) {
	run, all := depsList(t, "run"), depsList(t, "all")
	for _, need := range []string{"gcc", "pkg-config", "libgl-dev", "dbus", "polkitd", "pkexec", "iproute2"} {
		if !slices.Contains(run, need) {
			t.Errorf("deps.sh run lacks %s", need)
		}
	}
	for _, testOnly := range []string{"clang", "llvm", "iperf3", "nethogs", "trickle", "rpm", "xvfb", "imagemagick", "xdotool", "openssh-server", "appstream"} {
		if slices.Contains(run, testOnly) {
			t.Errorf("deps.sh run installs %s, which only tests or benchmarks use", testOnly)
		}
		if !slices.Contains(all, testOnly) {
			t.Errorf("deps.sh (all) lacks %s", testOnly)
		}
	}
	t.Logf("make run installs %d packages, make deps %d", len(run), len(all))
}
