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
//   - cgroup: limited processes are moved into a cgroup of the helper's,
//     out of their systemd scope; only for kernels that cannot tag.
const placementCgroup = "cgroup"

// placement returns the placer of mode (--placement): auto is the best
// mode the kernel allows.
func placement(mode string, opts backends.Options, runDir string, log *slog.Logger) (backends.Placer, error) {
	switch mode {
	case "", "auto", socktarget.Mode:
		err := socktarget.Probe()
		if err == nil {
			return socktarget.NewPlacer(opts), nil
		}
		if mode == socktarget.Mode {
			return nil, fmt.Errorf("placement %s: %w", mode, err)
		}
		log.Warn("the kernel cannot tag sockets at creation: limited processes will be moved into the helper's cgroups", "reason", err)
	case placementCgroup:
	default:
		return nil, fmt.Errorf("unknown placement %q (want auto, %s or %s)", mode, socktarget.Mode, placementCgroup)
	}
	p, err := cgroupv2.New(opts, runDir)
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
	}
	return out
}
