package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestRPM reads the .rpm that make package built with rpm itself: it holds
// exactly Files and Dirs with their modes, marks the autostart entry as a
// configuration file, carries the install/removal scripts and requires the
// bus and polkit.
func TestRPM(t *testing.T) {
	testenv.RequireTool(t, "rpm")
	pkg := onlyFile(t, filepath.Join(built(t), "dist"), "*.rpm")
	query := func(args ...string) string {
		return run(t, []string{"HOME=" + t.TempDir()}, "rpm", append([]string{"-qp", "--nosignature"}, append(args, pkg)...)...)
	}

	// name mode flags, one line per file ("c" in flags: config)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(query("--qf", `[%{FILENAMES} %{FILEMODES:octal} %{FILEFLAGS:fflags}\n]`)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Fatalf("rpm file line %q", l)
		}
		conf := len(f) > 2 && strings.Contains(f[2], "c")
		got = append(got, fmt.Sprintf("%s %s %v", f[0], f[1], conf))
	}
	var want []string
	for _, f := range Files() {
		want = append(want, fmt.Sprintf("%s %o %v", f.Dst, 0o100000|f.Mode, f.Config))
	}
	for _, d := range Dirs {
		want = append(want, fmt.Sprintf("%s %o %v", d.Path, 0o40000|d.Mode, false))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("rpm contents (path mode config):\n got %q\nwant %q", got, want)
	}

	scripts := query("--scripts")
	for _, s := range []string{"packaging/scripts/prerm.sh", "packaging/scripts/postinst.sh", "packaging/scripts/postrm.sh", "packaging/scripts/posttrans.sh"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), s))
		if err != nil {
			t.Fatal(err)
		}
		body := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[1]) // without the #! line
		if !strings.Contains(scripts, body) {
			t.Errorf("rpm lacks the script %s", s)
		}
	}
	requires := query("--requires")
	for _, r := range []string{"dbus", "polkit"} {
		if !slices.Contains(strings.Fields(requires), r) {
			t.Errorf("rpm does not require %s:\n%s", r, requires)
		}
	}
}
