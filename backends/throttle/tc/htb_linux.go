//go:build linux

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// Upload is the tc_htb upload backend: while limits exist, the mark_egress
// filter on each shaped interface's clsact egress redirects the targets'
// packets (socket cookie, then cgroup id) to the IFB ctifbuN, whose HTB root
// (c7a1:) has one class per target.
type Upload struct {
	backends.UploadOnly
	*shaper
}

var _ backends.UploadThrottleBackend = (*Upload)(nil)

// NewUpload returns an uninitialised tc_htb backend.
func NewUpload(opts backends.Options) (*Upload, error) {
	return &Upload{shaper: newShaper("tc_htb", egress, opts)}, nil
}

// Name implements backends.Backend.
func (*Upload) Name() string { return "tc_htb" }

// Priority implements backends.Backend.
func (*Upload) Priority() backends.Priority { return backends.Good }

// Capabilities implements backends.Backend.
func (*Upload) Capabilities() backends.Capabilities { return capabilities() }

func capabilities() backends.Capabilities {
	return backends.Capabilities{
		IPv4: true, IPv6: true, PerProcess: true, PerApp: true,
		TrafficTypes:        []backends.TrafficType{backends.TrafficAll, backends.TrafficInternet, backends.TrafficLocal},
		ExistingConnections: true,
	}
}
