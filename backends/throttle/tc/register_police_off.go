//go:build !linux || no_tc_police

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// PoliceDownload is nil: tc_police is left out of this build.
var PoliceDownload *backends.Descriptor[backends.DownloadThrottleBackend]
