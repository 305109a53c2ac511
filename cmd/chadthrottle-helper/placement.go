package main

import (
	"fmt"
	"log/slog"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
)

// Placement modes, in order of preference (see docs/placement.md):
//   - socket_tags: the kernel tags every socket with its target when it is
//     created (backends/kernel/socktarget); no process changes cgroup.
//   - cgroup: a limited process moves into a child cgroup of its own
//     cgroup (backends/kernel/cgroupv2's Leaf), inside its systemd scope;
//     only for kernels that cannot tag.
const placementCgroup = cgroupv2.LeafMode

// placement returns the placer of mode (--placement): auto is the best
// mode the kernel allows.
func placement(mode string, opts backends.Options, log *slog.Logger) (backends.Placer, error) {
	switch mode {
	case "", "auto", socktarget.Mode:
		err := socktarget.Probe()
		if err == nil {
			return socktarget.NewPlacer(opts), nil
		}
		if mode == socktarget.Mode {
			return nil, fmt.Errorf("placement %s: %w", mode, err)
		}
		log.Warn("the kernel cannot tag sockets at creation: limited processes will be moved into a child cgroup of their own cgroup", "placement", cgroupv2.LeafModeText, "reason", err)
	case placementCgroup:
	default:
		return nil, fmt.Errorf("unknown placement %q (want auto, %s or %s)", mode, socktarget.Mode, placementCgroup)
	}
	p, err := cgroupv2.NewLeaf(opts)
	if err != nil {
		return nil, fmt.Errorf("cgroup placement: %w", err)
	}
	return p, nil
}

// placementStatuses lists the placement modes with their probe results,
// beside the backends (kind "placement").
func placementStatuses(backends.Options) []backends.Status {
	out := []backends.Status{
		{Kind: backends.KindPlacement, Name: socktarget.Mode, Priority: backends.Best, Available: true},
		{Kind: backends.KindPlacement, Name: placementCgroup, Priority: backends.Fallback, Available: true},
	}
	if err := socktarget.Probe(); err != nil {
		out[0].Available, out[0].Reason = false, err.Error()
	}
	if err := cgroupv2.Probe(); err != nil {
		out[1].Available, out[1].Reason = false, err.Error()
	} else {
		// Available: say what it does (status lines show the mode).
		out[1].Reason = "child of each process's own cgroup, inside its systemd unit; only where sockets cannot be tagged"
	}
	return out
}
