//go:build linux

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// Download is the ifb_tc download backend: while limits exist, each shaped
// interface's ingress is redirected (u32 + act_mirred on clsact ingress) to
// an IFB device of the product's (ctifbN) with an HTB root (c7a2:), whose
// filter is the classify_ingress BPF classifier: it looks up the receiving
// socket and maps its address tuple or cgroup id to the target's class.
type Download struct {
	backends.DownloadOnly
	*shaper
}

var _ backends.DownloadThrottleBackend = (*Download)(nil)

// NewDownload returns an uninitialised ifb_tc backend.
func NewDownload(opts backends.Options) (*Download, error) {
	return &Download{shaper: newShaper("ifb_tc", ingress, opts)}, nil
}

// Name implements backends.Backend.
func (*Download) Name() string { return "ifb_tc" }

// Priority implements backends.Backend.
func (*Download) Priority() backends.Priority { return backends.Good }

// Capabilities implements backends.Backend.
func (*Download) Capabilities() backends.Capabilities { return capabilities() }
