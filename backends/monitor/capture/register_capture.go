//go:build linux && !no_capture

package capture

import "github.com/chadthrottle/chadthrottle/backends"

// Monitor describes the capture monitor backend.
var Monitor = &backends.Descriptor[backends.MonitorBackend]{
	Name:     "capture",
	Priority: backends.Good,
	Probe:    Probe,
	New: func(o backends.Options) (backends.MonitorBackend, error) {
		return New(o)
	},
}
