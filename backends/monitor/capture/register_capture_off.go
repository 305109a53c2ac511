//go:build !linux || no_capture

package capture

import "github.com/chadthrottle/chadthrottle/backends"

// Monitor is nil: the capture monitor is not in this build.
var Monitor *backends.Descriptor[backends.MonitorBackend]
