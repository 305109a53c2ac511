//go:build !linux || no_tc_htb

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// HTBUpload is nil: tc_htb is left out of this build.
var HTBUpload *backends.Descriptor[backends.UploadThrottleBackend]
