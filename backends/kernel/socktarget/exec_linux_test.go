//go:build linux

package socktarget_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestExecTakesNewAppsRule: a process that runs app A (a copy of bash,
// rule 1 MB/s) downloads under A's rule, then execs app B (a copy of
// ctload, rule 3 MB/s), whose new connection runs under B's rule, not A's.
func TestExecTakesNewAppsRule(t *testing.T) {
	requireTagger(t)
	testenv.RequireTool(t, "bash", "head")
	bed := testenv.NewBed(t)
	m, _ := newManager(t, bed, pairs[0])
	bed.StartServer(bed.Peer, "source", "[::]:5201", false)
	bashA := copyExe(t, "/bin/bash")
	ctB := copyExe(t, testenv.Ctload(t))
	const rateA, rateB = 1_000_000, 3_000_000
	appRule(t, m, bashA, backends.Limits{Down: backends.Limit{Rate: rateA}})
	appRule(t, m, ctB, backends.Limits{Down: backends.Limit{Rate: rateB}})
	// As A: 1 MB over a socket bash opens itself (/dev/tcp), read by a
	// child from the inherited descriptor; then exec B.
	script := `exec 3</dev/tcp/` + bed.PeerIP + `/5201 && head -c 1000000 <&3 >/dev/null && exec 3<&- && exec "$0" client -mode recv -connect "$1" -duration 5s -interval 250ms`
	start := time.Now()
	load := testenv.StartLoad(t, bed.Command(bed.Local, bashA, "-c", script, ctB, bed.PeerIP+":5201"))
	asA := time.Since(start)
	t.Logf("1 MB as app A (limit %s) took %.2f s", mb(rateA), asA.Seconds())
	if asA < 800*time.Millisecond {
		t.Errorf("1 MB as app A took %.2f s: A's rule of %s did not bite", asA.Seconds(), mb(rateA))
	}
	if exe := readExe(load.PID); !strings.HasSuffix(exe, "ctload-copy") {
		t.Fatalf("process %d runs %s, not the copy of ctload", load.PID, exe)
	}
	time.Sleep(time.Second)
	checkRate(t, "after exec, under app B's rule", load, rateB)
}
