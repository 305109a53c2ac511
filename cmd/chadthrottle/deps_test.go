package main

import (
	"os"
	"os/exec"
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
			"github.com/chadthrottle/chadthrottle/helper/engine", "github.com/chadthrottle/chadthrottle/helper/server",
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
