package bustest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildMu  sync.Mutex
	builtBin = map[string]string{}
)

// BuildBinary builds a command of this module (pkg relative to the module
// root, e.g. "./cmd/chadthrottlectl") with build tags into a world-readable
// directory (test users run it) and returns its path. A binary is built
// once per test process; RemoveBuilt deletes them.
func BuildBinary(t testing.TB, pkg string, tags ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := pkg + "|" + strings.Join(tags, ",")
	if p, ok := builtBin[key]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "chadthrottle-bin-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	out := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("go build %s %s: %v\n%s", strings.Join(tags, ","), pkg, err, b)
	}
	builtBin[key] = out
	return out
}

// RemoveBuilt deletes what BuildBinary built (from TestMain, after m.Run).
func RemoveBuilt() {
	buildMu.Lock()
	defer buildMu.Unlock()
	for k, p := range builtBin {
		os.RemoveAll(filepath.Dir(p))
		delete(builtBin, k)
	}
}
