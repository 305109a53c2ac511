package main

import (
	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/ebpf"
	"github.com/chadthrottle/chadthrottle/backends/monitor/capture"
	"github.com/chadthrottle/chadthrottle/backends/throttle/tc"
)

// registry is the one visible list of compiled backends, highest priority
// first within each kind. Build tags leave a backend out (its package then
// exports a nil descriptor):
//
//	no_ebpf       monitor ebpf, upload ebpf_cgroup, download ebpf_cgroup, block ebpf_block
//	no_capture    monitor capture
//	no_tc_htb     upload tc_htb
//	no_ifb_tc     download ifb_tc
//	no_tc_police  download tc_police
//	no_tc_global  global tc_global (the global limit with priorities)
func registry() *backends.Registry {
	return &backends.Registry{
		Monitors: compiled[backends.MonitorBackend](
			// BACKENDS:monitor (one line per backend, e.g. capture.Monitor,)
			ebpf.Monitor,
			capture.Monitor,
		),
		Uploads: compiled[backends.UploadThrottleBackend](
			// BACKENDS:upload
			ebpf.Upload,
			tc.HTBUpload,
		),
		Downloads: compiled[backends.DownloadThrottleBackend](
			// BACKENDS:download
			ebpf.Download,
			tc.IFBDownload,
			tc.PoliceDownload,
		),
		Blockers: compiled[backends.Blocker](
			// BACKENDS:block
			ebpf.Blocker,
		),
		Globals: compiled[backends.GlobalShaper](
			// BACKENDS:global
			tc.GlobalShaper,
		),
	}
}

// compiled drops the descriptors of backends left out of the build.
func compiled[T backends.Backend](ds ...*backends.Descriptor[T]) []backends.Descriptor[T] {
	var out []backends.Descriptor[T]
	for _, d := range ds {
		if d != nil {
			out = append(out, *d)
		}
	}
	return out
}
