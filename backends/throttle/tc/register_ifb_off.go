//go:build !linux || no_ifb_tc

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// IFBDownload is nil: ifb_tc is left out of this build.
var IFBDownload *backends.Descriptor[backends.DownloadThrottleBackend]
