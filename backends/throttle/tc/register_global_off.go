//go:build !linux || no_tc_global

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// GlobalShaper is nil: tc_global is left out of this build.
var GlobalShaper *backends.Descriptor[backends.GlobalShaper]
