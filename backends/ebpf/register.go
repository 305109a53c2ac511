//go:build linux && !no_ebpf

package ebpf

import "github.com/chadthrottle/chadthrottle/backends"

// Monitor is the descriptor of the "ebpf" monitor backend.
var Monitor = &backends.Descriptor[backends.MonitorBackend]{
	Name:     "ebpf",
	Priority: backends.Best,
	Probe:    probeMonitor,
	New:      func(o backends.Options) (backends.MonitorBackend, error) { return NewMonitor(o), nil },
}

// Upload is the descriptor of the "ebpf_cgroup" upload backend.
var Upload = &backends.Descriptor[backends.UploadThrottleBackend]{
	Name:     "ebpf_cgroup",
	Priority: backends.Best,
	Probe:    func(backends.Options) error { return probeThrottle(egress) },
	New: func(o backends.Options) (backends.UploadThrottleBackend, error) {
		return NewUpload(o), nil
	},
}

// Download is the descriptor of the "ebpf_cgroup" download backend.
var Download = &backends.Descriptor[backends.DownloadThrottleBackend]{
	Name:     "ebpf_cgroup",
	Priority: backends.Best,
	Probe:    func(backends.Options) error { return probeThrottle(ingress) },
	New: func(o backends.Options) (backends.DownloadThrottleBackend, error) {
		return NewDownload(o), nil
	},
}

// Blocker is the descriptor of the "ebpf_block" blocker.
var Blocker = &backends.Descriptor[backends.Blocker]{
	Name:     "ebpf_block",
	Priority: backends.Best,
	Probe:    func(backends.Options) error { return probeBlock() },
	New: func(o backends.Options) (backends.Blocker, error) {
		return NewBlocker(o), nil
	},
}
