//go:build !fakebackends

package main

import "github.com/chadthrottle/chadthrottle/backends"

func addTestBackends(*backends.Registry) {}

func testPlacer(backends.UploadThrottleBackend) backends.Placer { return nil }
