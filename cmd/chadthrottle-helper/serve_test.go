package main

import (
	"testing"

	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestDirsAgree: the backends' default run directory is the contract's.
func TestDirsAgree(t *testing.T) {
	if cgroupv2.DefaultRunDir != api.RuntimeDir {
		t.Errorf("cgroupv2.DefaultRunDir %q, api.RuntimeDir %q", cgroupv2.DefaultRunDir, api.RuntimeDir)
	}
}
