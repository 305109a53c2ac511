//go:build fakebackends

package main

import "github.com/chadthrottle/chadthrottle/backends"

// addTestBackends adds the record-only fake backends at the lowest priority,
// for tests of the D-Bus service on machines (or in stages) without real
// throttle backends. Production builds never have this tag.
func addTestBackends(r *backends.Registry) {
	r.Monitors = append(r.Monitors, backends.Descriptor[backends.MonitorBackend]{
		Name: "fake", Priority: backends.Fallback - 1,
		New: func(backends.Options) (backends.MonitorBackend, error) { return backends.NewFakeMonitor(), nil },
	})
	r.Uploads = append(r.Uploads, backends.Descriptor[backends.UploadThrottleBackend]{
		Name: "fake_upload", Priority: backends.Fallback - 1,
		New: func(backends.Options) (backends.UploadThrottleBackend, error) { return backends.NewFakeUpload(), nil },
	})
	r.Downloads = append(r.Downloads, backends.Descriptor[backends.DownloadThrottleBackend]{
		Name: "fake_download", Priority: backends.Fallback - 1,
		New: func(backends.Options) (backends.DownloadThrottleBackend, error) {
			return backends.NewFakeDownload(), nil
		},
	})
}

// testPlacer gives the fake upload backend a placer that touches no
// cgroups.
func testPlacer(up backends.UploadThrottleBackend) backends.Placer {
	if _, ok := up.(*backends.FakeUpload); ok {
		return backends.NewFakePlacer()
	}
	return nil
}
