//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// download has prog (a curl) fetch url into a file, giving up after 1 s
// without progress or 4 s in all; it returns the bytes written and curl's
// output.
func download(t *testing.T, bed *testenv.Bed, prog, url string) (int64, fetch) {
	return downloadFor(t, bed, prog, url, "4")
}

// downloadFor is download giving up after maxSeconds.
func downloadFor(t *testing.T, bed *testenv.Bed, prog, url, maxSeconds string) (int64, fetch) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "got")
	out, err := bed.Command(bed.Local, prog, "-v", "-sS", "-m", maxSeconds, "--speed-time", "1", "--speed-limit", "1000",
		"-o", file, url).CombinedOutput()
	f := fetch{stderr: string(out)}
	if err != nil {
		f.code = 1
	}
	st, err := os.Stat(file)
	if err != nil {
		return 0, f
	}
	return st.Size(), f
}

// TestBudget: an app known by its program only (no process running when
// the budget is set) downloads at line rate under a 10 MB download budget:
// it receives at most 10 MB of a 200 MB file, then its connection stops;
// with the block action its next connect fails at once with EPERM, without
// it (a throttle action follows) the connect goes through; a new budget
// (another Gen) starts a new count.
func TestBudget(t *testing.T) {
	bed := testenv.NewBed(t)
	testenv.RequireTool(t, "curl")
	b := newTestBlocker(t, bed)
	prog := testenv.CopyProgram(t, "curl")
	bed.StartServer(bed.Peer, "http", "[::]:8091", false)
	url := fmt.Sprintf("http://%s:8091/200000000", bed.PeerIP)
	const budget = 10_000_000
	tg := backends.Target{ID: "budget", Kind: backends.TargetApp, Exe: prog, UID: 0}
	for gen, refuse := range []bool{true, false} {
		bg := backends.Budget{On: true, Bytes: budget, Down: true, Refuse: refuse, Gen: uint64(gen)}
		if err := b.SetBudget(tg, bg); err != nil {
			t.Fatalf("SetBudget: %v", err)
		}
		if left, ok := b.BudgetLeft(tg.ID); !ok || left != budget {
			t.Fatalf("a new budget has %d bytes left (%v), want %d", left, ok, budget)
		}
		got, f := download(t, bed, prog, url)
		t.Logf("refuse=%v: the app received %d bytes under a %d byte budget (curl exit %d)", refuse, got, budget, f.code)
		if got > budget || got < budget*9/10 {
			t.Errorf("refuse=%v: the app received %d bytes under a %d byte budget", refuse, got, budget)
		}
		if left, _ := b.BudgetLeft(tg.ID); left != 0 {
			t.Errorf("refuse=%v: %d bytes left after the download, want 0", refuse, left)
		}
		_, next := download(t, bed, prog, url)
		if next.refused() != refuse {
			t.Errorf("refuse=%v: the next connect was refused=%v: %s", refuse, next.refused(), next.stderr)
		}
	}
	if _, ok := b.Blocked(tg.ID); ok {
		t.Error("a budget-only target reads as blocked")
	}
	if err := b.RemoveBudget(tg.ID); err != nil {
		t.Fatal(err)
	}
	if got, f := download(t, bed, prog, fmt.Sprintf("http://%s:8091/20000000", bed.PeerIP)); got != 20_000_000 {
		t.Errorf("after the budget was removed the app received %d of 20000000 bytes: %s", got, f.stderr)
	}
	if n := len(b.links); n != 0 {
		t.Errorf("%d programs stay attached with nothing blocked or budgeted", n)
	}
}
