//go:build linux

package socktarget_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestRuleBeforeStartAtRTT is issue #12's check for the ebpf_cgroup
// download at an internet-like round trip (20 ms, testenv.NewBedRTT): with
// a 2 MB/s rule on curl set before curl starts, every 1-s window of an 8 MB
// download at the receiver, from the first, is at most 1.15 × the limit,
// and the download is not stalled (at most twice the limit's time). A miss
// is measured once more before failing (a loaded CI machine). On the plain
// bed's sub-millisecond round trip the same download, loss-driven, has
// shown later windows up to 1.21 × (docs/placement.md).
func TestRuleBeforeStartAtRTT(t *testing.T) {
	requireTagger(t)
	paths := testenv.RequireTool(t, "curl")
	curl, err := filepath.EvalSymlinks(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	const limit, size = 2_000_000, 8_000_000
	bed := testenv.NewBedRTT(t, 20*time.Millisecond)
	m, pl := newManager(t, bed, pairs[0])
	bed.StartServer(bed.Peer, "http", "[::]:8080", false)
	appRule(t, m, curl, backends.Limits{Down: backends.Limit{Rate: limit}})
	counter := testenv.NewTCPCounter(t, bed.Local)
	for try := 1; ; try++ {
		miss := ruleBeforeStartRun(t, bed, counter, limit, size)
		if miss == "" {
			clamped, failed := pl.Tagger().ClampCounts()
			t.Logf("receive window clamp: %d connections clamped, %d failed", clamped, failed)
			return
		}
		if try == 2 {
			t.Fatalf("twice under a %d B/s rule set before curl started: %s", limit, miss)
		}
		t.Logf("measuring again: %s", miss)
	}
}

// ruleBeforeStartRun downloads size bytes with curl and returns what
// misses issue #12's target, or "".
func ruleBeforeStartRun(t *testing.T, bed *testenv.Bed, counter *testenv.TCPCounter, limit, size float64) string {
	s, took, err := download(bed, counter, "curl", int(size))
	if err != nil {
		t.Fatal(err)
	}
	w := windows(s)
	t.Logf("%.0f MB in %.2f s; 1-s windows ÷ limit %v", size/1e6, took.Seconds(), ratios(w, limit))
	for i, r := range w {
		if r > 1.15*limit {
			return fmt.Sprintf("1-s window %d at %.2f × the limit (windows %v)", i+1, r/limit, ratios(w, limit))
		}
	}
	// Shorter than 1/1.15 of the limit's time: over the limit before any
	// window closed (a rule that missed the first packets); over twice
	// that: stalled.
	if took.Seconds() < size/limit/1.15 || took.Seconds() > 2*size/limit {
		return fmt.Sprintf("%.0f MB took %.2f s (%.2f s at the limit)", size/1e6, took.Seconds(), size/limit)
	}
	return ""
}
