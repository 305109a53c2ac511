package testenv

import (
	"strings"
	"testing"
	"time"
)

// TestBed checks the test bed itself: two namespaces joined by veth,
// IPv4 and IPv6, ctload moving data both ways, everything gone afterwards.
func TestBed(t *testing.T) {
	var b *Bed
	t.Run("traffic", func(t *testing.T) {
		b = NewBed(t)
		b.StartServer(b.Peer, "sink", "[::]:5201", false)
		b.StartServer(b.Peer, "source", "[::]:5202", false)
		up := b.StartClient(b.Local, "send", PeerIP+":5201", 2*time.Second, 500*time.Millisecond)
		down := b.StartClient(b.Local, "recv", "["+PeerIP6+"]:5202", 2*time.Second, 500*time.Millisecond)
		for name, l := range map[string]*Load{"upload v4": up, "download v6": down} {
			s := l.Wait()
			if len(s) < 3 || !s[len(s)-1].Done {
				t.Fatalf("%s: reports %+v, stderr %s", name, s, l.Stderr())
			}
			if r := RateBetween(s, 0, 2); r < 1e6 {
				t.Errorf("%s: %.0f B/s; a veth should carry far more", name, r)
			}
		}
	})
	if b == nil {
		return
	}
	out, _ := Output("ip", "netns", "list")
	for _, ns := range []string{b.Local, b.Peer} {
		if strings.Contains(out, ns) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
}

func TestRateBetween(t *testing.T) {
	s := []Sample{{T: 1, Bytes: 100}, {T: 2, Bytes: 300}, {T: 3, Bytes: 500}, {T: 3, Done: true}}
	if r := RateBetween(s, 1, 3); r != 400 {
		t.Fatalf("RateBetween = %v; want 400", r)
	}
	if r := RateBetween(s, 5, 6); r != 0 {
		t.Fatalf("empty window = %v", r)
	}
}

func TestUniqueNameFitsInterface(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		n := UniqueName("veth")
		if len(n) > 15 || seen[n] {
			t.Fatalf("name %q too long or repeated", n)
		}
		seen[n] = true
	}
}

// TestMeanSince: the mean counts from the first read, not from zero.
func TestMeanSince(t *testing.T) {
	n := uint64(5_000_000)
	since := MeanSince(func() uint64 { return n })
	time.Sleep(200 * time.Millisecond)
	n += 100_000
	if got := since(); got < 300_000 || got > 500_000 {
		t.Errorf("100 kB over ~0.2 s after a start at 5 MB: %.0f B/s; want about 500 kB/s", got)
	}
}
