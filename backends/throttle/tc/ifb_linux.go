//go:build linux

package tc

import "github.com/chadthrottle/chadthrottle/backends"

// Download is the ifb_tc download backend: while limits exist, the
// mark_ingress filter on each shaped interface's clsact ingress looks up the
// receiving socket of every packet (bpf_sk_lookup_tcp/udp), reads its cookie
// and cgroup id and redirects a target's packets to the IFB ctifbdN, whose
// HTB root (c7a2:) has one class per target.
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

// Init implements backends.Backend; the global limit may then nest this
// backend's app limits (globalnest_linux.go).
func (d *Download) Init() error {
	if err := d.shaper.Init(); err != nil {
		return err
	}
	d.mu.Lock()
	nestShaper(d.opts.Tag, d.objs)
	d.mu.Unlock()
	return nil
}

// Cleanup implements backends.Backend.
func (d *Download) Cleanup() error {
	nestShaper(d.opts.Tag, nil)
	return d.shaper.Cleanup()
}

// Priority implements backends.Backend.
func (*Download) Priority() backends.Priority { return backends.Good }

// Capabilities implements backends.Backend.
func (*Download) Capabilities() backends.Capabilities { return capabilities() }
