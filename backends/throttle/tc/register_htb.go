//go:build linux && !no_tc_htb

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// HTBUpload describes the tc_htb upload backend; nil when built with
// no_tc_htb.
var HTBUpload = &backends.Descriptor[backends.UploadThrottleBackend]{
	Name:     "tc_htb",
	Priority: backends.Good,
	Probe:    ProbeUpload,
	New: func(o backends.Options) (backends.UploadThrottleBackend, error) {
		return NewUpload(o)
	},
}
