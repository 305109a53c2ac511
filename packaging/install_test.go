package packaging

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// filesUnder lists the regular files below dir (paths relative to dir,
// with a leading /) and their modes.
func filesUnder(t testing.TB, dir string) map[string]fs.FileMode {
	t.Helper()
	got := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		got["/"+strings.TrimPrefix(p, dir+"/")] = info.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestMakeInstall runs `make install` and `make uninstall` into a DESTDIR
// for PREFIX=/usr and /usr/local and checks the installed tree is exactly
// Files at InstallPath, with the helper's path following PREFIX, and that
// uninstall removes all of it.
func TestMakeInstall(t *testing.T) {
	bin := filepath.Join(built(t), "bin")
	for _, prefix := range []string{"/usr", "/usr/local"} {
		t.Run(strings.TrimPrefix(prefix, "/"), func(t *testing.T) {
			dest := t.TempDir()
			vars := []string{"-C", repoRoot(t), "--no-print-directory", "DESTDIR=" + dest, "PREFIX=" + prefix, "BIN=" + bin}
			run(t, nil, "make", append([]string{"install"}, vars...)...)

			got := filesUnder(t, dest)
			want := map[string]fs.FileMode{}
			for _, f := range Files() {
				want[InstallPath(f.Dst, prefix, "/etc")] = f.Mode
			}
			var gotPaths, wantPaths []string
			for p := range got {
				gotPaths = append(gotPaths, p)
			}
			for p := range want {
				wantPaths = append(wantPaths, p)
			}
			sort.Strings(gotPaths)
			sort.Strings(wantPaths)
			if !slices.Equal(gotPaths, wantPaths) {
				t.Fatalf("installed files differ:\n got %q\nwant %q", gotPaths, wantPaths)
			}
			for p, mode := range want {
				if got[p] != mode {
					t.Errorf("%s: mode %v, want %v", p, got[p], mode)
				}
			}
			for _, f := range Files() {
				inst, err := os.ReadFile(filepath.Join(dest, InstallPath(f.Dst, prefix, "/etc")))
				if err != nil {
					t.Fatal(err)
				}
				src := filepath.Join(repoRoot(t), f.Src)
				if strings.HasPrefix(f.Src, "bin/") {
					src = filepath.Join(bin, strings.TrimPrefix(f.Src, "bin/"))
				}
				orig, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				helper := prefix + "/libexec/chadthrottle/chadthrottle-helper"
				if strings.HasSuffix(f.Dst, ".service") {
					// the one permitted change: the helper's path
					orig = bytes.ReplaceAll(orig, []byte("="+HelperPath+" "), []byte("="+helper+" "))
					if !bytes.Contains(inst, []byte("="+helper+" ")) {
						t.Errorf("%s does not start %s", f.Dst, helper)
					}
				}
				if !bytes.Equal(inst, orig) {
					t.Errorf("%s differs from %s", InstallPath(f.Dst, prefix, "/etc"), f.Src)
				}
			}

			run(t, nil, "make", append([]string{"uninstall"}, vars...)...)
			if left := filesUnder(t, dest); len(left) != 0 {
				t.Errorf("make uninstall left %v", left)
			}
			for _, dir := range []string{"libexec/chadthrottle", "share/doc/chadthrottle"} {
				if _, err := os.Stat(filepath.Join(dest, prefix, dir)); !os.IsNotExist(err) {
					t.Errorf("make uninstall left %s/%s (%v)", prefix, dir, err)
				}
			}
		})
	}
}
