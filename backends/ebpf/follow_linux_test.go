//go:build linux && !no_ebpf

package ebpf

import (
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/backendtest"
)

// TestFollowAcceptedSockets: connections a server limited after it started
// accepts later are limited once followed (backendtest.RunFollowAccepted).
func TestFollowAcceptedSockets(t *testing.T) {
	requireEBPF(t)
	for _, d := range []struct {
		name string
		new  func(backends.Options) backends.Throttler
	}{
		{"upload", func(o backends.Options) backends.Throttler { return NewUpload(o) }},
		{"download", func(o backends.Options) backends.Throttler { return NewDownload(o) }},
	} {
		t.Run(d.name, func(t *testing.T) {
			backendtest.RunFollowAccepted(t, backendtest.FollowHarness{
				New: func(t *testing.T, netns string) backends.Throttler {
					return d.new(backends.Options{NetNS: netns})
				},
				Upload:         d.name == "upload",
				Placer:         newPlacer(t),
				Matched:        matchedSockets,
				PacesProcesses: d.name == "upload",
			})
		})
	}
}

// matchedSockets counts the socket cookies b matches for its targets.
func matchedSockets(t *testing.T, b backends.Throttler) int {
	t.Helper()
	var th *throttler
	switch x := b.(type) {
	case uploadThrottler:
		th = x.throttler
	case downloadThrottler:
		th = x.throttler
	default:
		t.Fatalf("unexpected backend type %T", b)
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	n := 0
	for _, tg := range th.targets {
		n += len(tg.cookies)
	}
	return n
}
