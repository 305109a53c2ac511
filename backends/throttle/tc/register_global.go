//go:build linux && !no_tc_global

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// GlobalShaper describes the tc_global shaper (the global limit with
// priorities); nil when built with no_tc_global.
var GlobalShaper = &backends.Descriptor[backends.GlobalShaper]{
	Name:     "tc_global",
	Priority: backends.Good,
	Probe:    ProbeGlobal,
	New: func(o backends.Options) (backends.GlobalShaper, error) {
		return NewGlobal(o)
	},
}
