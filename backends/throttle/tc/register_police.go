//go:build linux && !no_tc_police

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// PoliceDownload describes the tc_police download backend; nil when built
// with no_tc_police.
var PoliceDownload = &backends.Descriptor[backends.DownloadThrottleBackend]{
	Name:     "tc_police",
	Priority: backends.Fallback,
	Probe:    ProbePolice,
	New: func(o backends.Options) (backends.DownloadThrottleBackend, error) {
		return NewPolice(o)
	},
}
