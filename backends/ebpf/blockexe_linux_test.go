//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBlockProgramNotRunning: an app target without processes, known by
// its program and owner only, refuses the program's first run at once.
func TestBlockProgramNotRunning(t *testing.T) {
	bed := testenv.NewBed(t)
	testenv.RequireTool(t, "curl")
	b := newTestBlocker(t, bed)
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(t.TempDir(), "ct-curl-"+testenv.UniqueName("b"))
	if out, err := exec.Command("cp", curl, prog).CombinedOutput(); err != nil {
		t.Fatalf("copy curl: %v %s", err, out)
	}
	url := fmt.Sprintf("http://%s:%d/", bed.PeerIP, bed.ServeHTTP(bed.Peer))
	tg := backends.Target{ID: "notrunning", Kind: backends.TargetApp, Exe: prog, UID: 0}
	if err := b.Block(tg, backends.TrafficAll); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		program string
		refused bool
	}{{prog, true}, {curl, false}} {
		out, err := bed.Command(bed.Local, p.program, "-v", "-sS", "-m", "2", "-o", "/dev/null", url).CombinedOutput()
		f := fetch{stderr: string(out)}
		if err != nil {
			f.code = 1
		}
		if f.refused() != p.refused {
			t.Errorf("%s: exit %v, refused=%v, want %v\n%s", p.program, err, f.refused(), p.refused, out)
		}
	}
}
