//go:build linux

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// sameTree compares the files under dir with want (path → mode).
func sameTree(t *testing.T, dir string, want map[string]os.FileMode) {
	t.Helper()
	got := filesUnder(t, dir)
	var extra, missing []string
	for p, m := range got {
		if w, ok := want[p]; !ok {
			extra = append(extra, p)
		} else if w != m {
			t.Errorf("%s: mode %v, want %v", p, m, w)
		}
	}
	for p := range want {
		if _, ok := got[p]; !ok {
			missing = append(missing, p)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra)+len(missing) > 0 {
		t.Errorf("installed tree differs from the .deb's files: extra %v, missing %v", extra, missing)
	}
}

// TestPKGBUILD runs the Arch PKGBUILD's package() (makepkg is not on
// Debian; its build() is make build, which built(t) did) and checks it
// installs exactly the .deb's files, and that the PKGBUILD names what
// makepkg requires.
func TestPKGBUILD(t *testing.T) {
	bin := filepath.Join(built(t), "bin")
	root := repoRoot(t)
	src, pkg := t.TempDir(), t.TempDir()
	if err := os.Symlink(bin, filepath.Join(src, "bin")); err != nil {
		t.Fatal(err)
	}
	script := `set -e; source packaging/arch/PKGBUILD
for v in pkgname pkgver pkgrel pkgdesc url; do [ -n "${!v}" ] || { echo "PKGBUILD: $v is empty" >&2; exit 1; }; done
[ "${license[*]}" = MIT ] || { echo "PKGBUILD: license ${license[*]}, want MIT" >&2; exit 1; }
[ ${#arch[@]} -gt 0 ] && [ ${#depends[@]} -gt 0 ] && [ ${#makedepends[@]} -gt 0 ]
package`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "startdir="+filepath.Join(root, "packaging/arch"), "srcdir="+src, "pkgdir="+pkg, "_srcroot="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("PKGBUILD package(): %v\n%s", err, out)
	}
	want := map[string]os.FileMode{}
	for _, f := range Files() {
		want[InstallPath(f.Dst, "/usr", "/etc")] = f.Mode
	}
	sameTree(t, pkg, want)
}

// TestNixDerivation runs the Nix derivation's installPhase (nix itself is
// not run: building needs nixpkgs from the network) with $out in a
// temporary directory and checks it installs the .deb's files under $out:
// PREFIX=$out, the system configuration in $out/etc and the polkit actions
// in $out/share/polkit-1/actions, where NixOS's modules look.
func TestNixDerivation(t *testing.T) {
	bin := filepath.Join(built(t), "bin")
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "packaging/nix/default.nix"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)installPhase = ''\n(.*?)\n  '';`).FindSubmatch(b)
	if m == nil {
		t.Fatal("default.nix has no installPhase")
	}
	phase := strings.ReplaceAll(string(m[1]), "runHook preInstall", ":")
	phase = strings.ReplaceAll(phase, "runHook postInstall", ":")
	gopath, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	if err := os.Symlink(bin, filepath.Join(gopath, "bin")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euc", phase)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "out="+out, "GOPATH="+gopath)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installPhase: %v\n%s", err, o)
	}
	want := map[string]os.FileMode{}
	for _, f := range Files() {
		p := InstallPath(f.Dst, out, out+"/etc")
		if strings.HasPrefix(p, "/usr/share/polkit-1/") {
			p = out + strings.TrimPrefix(p, "/usr")
		}
		want[strings.TrimPrefix(p, out)] = f.Mode
	}
	sameTree(t, out, want)
	for _, s := range []string{"io.github.chadthrottle.Helper1.service", "chadthrottle-helper.service"} {
		var found []string
		filepath.Walk(out, func(p string, _ os.FileInfo, _ error) error {
			if filepath.Base(p) == s {
				found = append(found, p)
			}
			return nil
		})
		for _, p := range found {
			b, _ := os.ReadFile(p)
			if !strings.Contains(string(b), out+"/libexec/chadthrottle/chadthrottle-helper") {
				t.Errorf("%s does not start the helper from $out:\n%s", p, b)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s installed %d times", s, len(found))
		}
	}
}
