//go:build linux && !no_ifb_tc

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// IFBDownload describes the ifb_tc download backend; nil when built with
// no_ifb_tc.
var IFBDownload = &backends.Descriptor[backends.DownloadThrottleBackend]{
	Name:     "ifb_tc",
	Priority: backends.Good,
	Probe:    ProbeDownload,
	New: func(o backends.Options) (backends.DownloadThrottleBackend, error) {
		return NewDownload(o)
	},
}
