package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// deps lists the packages pkg links, as the go command sees them.
func deps(t *testing.T, env []string, pkg string) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	m := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		m[l] = true
	}
	return m
}

// TestDeps: the GUI binary runs as the user and must not link the kernel
// libraries the helper uses.
func TestDeps(t *testing.T) {
	d := deps(t, nil, "github.com/chadthrottle/chadthrottle/cmd/chadthrottle")
	if !d["fyne.io/fyne/v2/app"] || !d["github.com/chadthrottle/chadthrottle/helper/client"] {
		t.Fatal("dependency list does not look like the GUI's (no fyne app or helper client)")
	}
	for p := range d {
		for _, banned := range []string{
			"github.com/vishvananda/netlink", "github.com/vishvananda/netns", "github.com/cilium/ebpf",
			"github.com/google/gopacket", "github.com/chadthrottle/chadthrottle/backends",
			"github.com/chadthrottle/chadthrottle/helper/daemon/engine", "github.com/chadthrottle/chadthrottle/helper/daemon/server",
		} {
			if p == banned || strings.HasPrefix(p, banned+"/") {
				t.Errorf("cmd/chadthrottle links %s", p)
			}
		}
	}
}

// TestGUIPackageHeadless: gui builds without cgo and does not import
// Fyne's app package (only this command does), so it tests headless.
func TestGUIPackageHeadless(t *testing.T) {
	d := deps(t, []string{"CGO_ENABLED=0"}, "github.com/chadthrottle/chadthrottle/gui")
	for p := range d {
		if p == "fyne.io/fyne/v2/app" || strings.HasPrefix(p, "fyne.io/fyne/v2/internal/driver/glfw") ||
			strings.HasPrefix(p, "github.com/chadthrottle/chadthrottle/helper/client") {
			t.Errorf("gui imports %s", p)
		}
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "github.com/chadthrottle/chadthrottle/gui")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./gui: %v\n%s", err, out)
	}
}

// compiled lists, by import path, the files (full paths) the build of pkg
// compiles from this module's packages, with build tags.
func compiled(t *testing.T, tags, pkg string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-tags", tags, "-f",
		`{{if .Module}}{{if .Module.Main}}{{.ImportPath}} {{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .CgoFiles}} {{.}}{{end}}{{end}}{{end}}`, pkg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -tags '%s' %s: %v\n%s", tags, pkg, err, out)
	}
	m := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Fatalf("go list printed %q", l)
		}
		m[f[0]] = []string{}
		for _, name := range f[2:] {
			m[f[0]] = append(m[f[0]], filepath.Join(f[1], name))
		}
	}
	return m
}

// TestNoTestHooks: the GUI's test hooks (CHADTHROTTLE_TEST_* variables, one
// of which writes a call log to any path) are compiled in only with the
// testhooks build tag, which the tests here use and production builds
// never do: without it no file the GUI binary compiles from this module
// mentions them, and the binary does not contain their names.
func TestNoTestHooks(t *testing.T) {
	const pkg = "github.com/chadthrottle/chadthrottle/cmd/chadthrottle"
	has := func(files []string, name string) bool {
		return slices.ContainsFunc(files, func(f string) bool { return filepath.Base(f) == name })
	}

	prod := compiled(t, "", pkg)
	if !has(prod[pkg], "main.go") || !has(prod[pkg], "nohooks.go") || has(prod[pkg], "testhooks.go") {
		t.Errorf("production build of cmd/chadthrottle compiles %v: want main.go and nohooks.go, not testhooks.go", prod[pkg])
	}
	for _, files := range prod {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(envHookPrefix)) {
				t.Errorf("the production GUI binary compiles %s, which mentions %s", f, envHookPrefix)
			}
		}
	}

	// and the binary itself (the one TestEndToEnd runs)
	bin, err := os.ReadFile(buildGUI(t))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bin, []byte(envHookPrefix)) {
		t.Errorf("the production GUI binary contains %q", envHookPrefix)
	}

	// the hooks the tests use are there with the tag, under the names the
	// tests set
	hooked := compiled(t, hooksTag, pkg)
	if !has(hooked[pkg], "testhooks.go") || has(hooked[pkg], "nohooks.go") {
		t.Fatalf("-tags %s build of cmd/chadthrottle compiles %v: want testhooks.go, not nohooks.go", hooksTag, hooked[pkg])
	}
	src, err := os.ReadFile("testhooks.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{envSynthetic, envCallLog} {
		if !bytes.Contains(src, []byte(`"`+env+`"`)) {
			t.Errorf("testhooks.go does not read %s, which the tests set", env)
		}
	}
}

// importRules is the layering of the module (docs/architecture.md): for
// each package (by path below the module, longest prefix wins), the
// module's packages its non-test files may import. Test files may also
// import the test support packages (testSupport).
var importRules = []struct {
	pkg   string
	may   []string
	notes string
}{
	{"assets", []string{"assets/internal"}, "icons and the desktop look: no logic"},
	{"backends", nil, "the backend framework: interfaces, selection, the manager"},
	{"backends/kernel", []string{"backends"}, "shared kernel primitives: procfs/sock_diag/netns, cgroup v2"},
	{"backends/ebpf", []string{"backends"}, "a backend: the framework and kernel primitives only"},
	{"backends/monitor", []string{"backends"}, "a backend"},
	{"backends/throttle", []string{"backends"}, "a backend"},
	{"backends/testsupport", []string{"backends"}, "test beds and the conformance suite"},
	{"helper/api", nil, "the D-Bus contract: imported by every client, imports nothing of ours"},
	{"helper/client", []string{"helper/api"}, "the typed client of the contract"},
	{"helper/daemon/polkit", nil, "authorization, knows nothing of the rest"},
	{"helper/daemon/rules", []string{"helper/api"}, "the rules file"},
	{"helper/daemon/engine", []string{"helper/api", "helper/daemon/rules", "backends"}, "the daemon's domain"},
	{"helper/daemon/history", nil, "the traffic history database (SQLite): its own on-disk types"},
	{"helper/daemon/quota", []string{"helper/api", "helper/daemon/history", "helper/daemon/engine"}, "data quotas: the history's usage, actions through the engine"},
	{"helper/daemon/server", []string{"helper/api", "helper/daemon/polkit"}, "the D-Bus server: sees the engine through an interface"},
	{"helper/testsupport", []string{"helper/api", "helper/client", "backends/testsupport"}, "bus, polkit and users for tests"},
	{"gui", []string{"helper/api", "assets"}, "the window and tray: the contract only (headless, no client, no kernel)"},
	{"cmd/chadthrottle", []string{"gui", "helper/api", "helper/client", "assets"}, "the desktop binary"},
	{"cmd/chadthrottlectl", []string{"helper/api", "helper/client"}, "the CLI"},
	{"cmd/chadthrottle-helper", []string{"helper/api", "helper/client", "helper/daemon", "backends"}, "the root helper"},
	{"packaging", []string{"helper/api"}, "packaging checks"},
}

var testSupport = []string{"backends/testsupport", "helper/testsupport"}

// testMay widens what test files may import beyond their layer and the
// test support: end-to-end tests of the binaries and packages run the
// whole product; the helper's tests drive it with backends and the client;
// the backends' tests know nothing of the helper or the GUI.
func testMay(p string) []string {
	switch {
	case under(p, "cmd"), under(p, "packaging"):
		return []string{"assets", "backends", "cmd", "gui", "helper"}
	case under(p, "helper"):
		return []string{"helper", "backends"}
	}
	return nil
}

func under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }

// ruleFor returns the rule of the longest prefix matching p.
func ruleFor(p string) (may []string, ok bool) {
	best := -1
	for i, r := range importRules {
		if under(p, r.pkg) && (best < 0 || len(r.pkg) > len(importRules[best].pkg)) {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	// A package may import its own subtree and the kernel primitives go
	// with every backend.
	may = append([]string{importRules[best].pkg}, importRules[best].may...)
	if under(p, "backends") && !under(p, "backends/kernel") {
		may = append(may, "backends/kernel")
	}
	return may, true
}

// TestImportRules checks every package of the module against importRules,
// and that no product binary links a test support package.
func TestImportRules(t *testing.T) {
	const mod = "github.com/chadthrottle/chadthrottle/"
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .TestImports " "}} {{join .XTestImports " "}}`, mod+"...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 3)
		p := strings.TrimPrefix(f[0], mod)
		may, ok := ruleFor(p)
		if !ok {
			t.Errorf("package %s has no import rule: add it to importRules and docs/architecture.md", p)
			continue
		}
		n++
		check := func(imports string, test bool) {
			for _, imp := range strings.Fields(imports) {
				if !strings.HasPrefix(imp, mod) {
					continue
				}
				imp = strings.TrimPrefix(imp, mod)
				allowed := slices.ContainsFunc(may, func(m string) bool { return under(imp, m) })
				if test && slices.ContainsFunc(append(testMay(p), testSupport...), func(m string) bool { return under(imp, m) }) {
					allowed = true
				}
				if !allowed {
					kind := "imports"
					if test {
						kind = "tests import"
					}
					t.Errorf("%s %s %s; its layer may import only %v", p, kind, imp, may)
				}
			}
		}
		check(f[1], false)
		check(f[2], true)
	}
	if n < 20 {
		t.Fatalf("checked only %d packages", n)
	}
	for _, bin := range []string{"cmd/chadthrottle", "cmd/chadthrottlectl", "cmd/chadthrottle-helper"} {
		for p := range deps(t, nil, mod+bin) {
			if slices.ContainsFunc(testSupport, func(m string) bool { return under(p, mod+m) }) {
				t.Errorf("%s links the test support package %s", bin, p)
			}
		}
	}
}
