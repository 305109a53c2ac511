package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	tmpRoot string // removed after the tests

	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	var err error
	tmpRoot, err = os.MkdirTemp("", "chadthrottle-packaging-")
	if err != nil {
		panic(err)
	}
	os.Chmod(tmpRoot, 0o755) // the helper and test users read binaries here
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// built runs `make package` once per test binary with FORMATS (bin/ and
// dist/ in a temporary directory, not the source tree) and returns the
// directory holding bin/ (the three binaries) and dist/ (the packages).
func built(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir = filepath.Join(tmpRoot, "build")
		cmd := exec.Command("make", "-C", repoRoot(t), "package",
			"BIN="+filepath.Join(buildDir, "bin"), "DIST="+filepath.Join(buildDir, "dist"), "FORMATS=deb rpm")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			buildDir = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("make package: %v\n%s", buildErr, buildDir)
	}
	return buildDir
}

// onlyFile returns the one file matching pattern in dir.
func onlyFile(t testing.TB, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) != 1 {
		t.Fatalf("want one %s in %s, have %q (%v)", pattern, dir, m, err)
	}
	return m[0]
}

// run runs a command, failing the test with its output on error.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
