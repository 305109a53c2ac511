//go:build linux

package socktarget_test

import (
	"strings"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/ebpf"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBlockByPidWithTags: with sockets tagged at creation (nobody placed in
// a cgroup), a block on a process refuses the connections its children
// open later: the blocker keys on the socket tag too.
func TestBlockByPidWithTags(t *testing.T) {
	requireTagger(t)
	bed := testenv.NewBed(t)
	var o backends.Options // the manager's: the blocker shares its tagger
	m := managerWith(t, bed, pairs[0], "blk", func(opts backends.Options) backends.Placer {
		o = opts
		return socktarget.NewPlacer(opts)
	})
	if err := ebpf.Blocker.Probe(o); err != nil {
		testenv.KernelLacks(t, "ebpf blocking", err)
	}
	blk, err := ebpf.Blocker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := blk.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blk.Cleanup() })
	m.SetBlocker(blk, nil)
	bed.StartServer(bed.Peer, "sink", "[::]:5201", false)
	sh := bed.Command(bed.Local, "sh", "-c", `read x; exec 2>&1; "$0" client -mode send -connect "$1" -duration 1s -interval 1s`, testenv.Ctload(t), bed.PeerIP+":5201")
	in, _ := sh.StdinPipe()
	var out strings.Builder
	sh.Stdout = &out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(backends.Target{ID: "pid", Kind: backends.TargetProcess, PIDs: []int{sh.Process.Pid}},
		backends.Limits{Block: backends.Block{On: true}}); err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("go\n"))
	err = sh.Wait()
	if err == nil || !strings.Contains(out.String(), "not permitted") {
		t.Errorf("a child of a blocked process connected: %v, %q", err, out.String())
	}
}
