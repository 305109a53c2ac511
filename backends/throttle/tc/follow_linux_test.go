//go:build linux

package tc

import (
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/backendtest"
)

// TestFollowAcceptedSockets: connections a server limited after it started
// accepts later are limited once followed (backendtest.RunFollowAccepted).
func TestFollowAcceptedSockets(t *testing.T) {
	for _, d := range directions() {
		t.Run(d.name, func(t *testing.T) {
			e := newEnv(t)
			backendtest.RunFollowAccepted(t, backendtest.FollowHarness{
				New: func(t *testing.T, netns string) backends.Throttler {
					o := e.opts()
					o.NetNS = netns
					if d.dir == egress {
						b, err := NewUpload(o)
						if err != nil {
							t.Fatal(err)
						}
						return b
					}
					b, err := NewDownload(o)
					if err != nil {
						t.Fatal(err)
					}
					return b
				},
				Upload:  d.dir == egress,
				Placer:  e.placer,
				Matched: cookies,
			})
		})
	}
}

// cookies counts the socket cookies in b's classifier map.
func cookies(t *testing.T, b backends.Throttler) int {
	t.Helper()
	var s *shaper
	switch x := b.(type) {
	case *Upload:
		s = x.shaper
	case *Download:
		s = x.shaper
	default:
		t.Fatalf("unexpected backend type %T", b)
	}
	var k uint64
	var v classifyTarget
	n := 0
	for it := s.objs.classifyMaps.Cookies.Iterate(); it.Next(&k, &v); {
		n++
	}
	return n
}
