//go:build !linux || no_ebpf

package ebpf

import "github.com/chadthrottle/chadthrottle/backends"

// The eBPF backends are left out of this build (not Linux, or the no_ebpf
// tag): their descriptors are nil and the helper's registry skips them.
var (
	Monitor  *backends.Descriptor[backends.MonitorBackend]
	Upload   *backends.Descriptor[backends.UploadThrottleBackend]
	Download *backends.Descriptor[backends.DownloadThrottleBackend]
	Blocker  *backends.Descriptor[backends.Blocker]
)
