//go:build linux

package tc

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/backendtest"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestPoliceProbe: the probe tries to create a police action in a scratch
// namespace; when it fails it says act_police is missing and wraps
// errors.ErrUnsupported, and Init refuses for the same reason.
func TestPoliceProbe(t *testing.T) {
	testenv.RequireRoot(t)
	err := ProbePolice(backends.Options{})
	if err == nil {
		t.Log("act_police is available on this kernel")
		return
	}
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "act_police") {
		t.Fatalf("probe error %q does not say act_police is missing (or does not wrap ErrUnsupported)", err)
	}
	p, _ := NewPolice(backends.Options{})
	if ierr := p.Init(); ierr == nil || !strings.Contains(ierr.Error(), "act_police") {
		t.Fatalf("Init = %v; want the probe's reason", ierr)
	}
	if err := p.Cleanup(); err != nil {
		t.Fatalf("Cleanup after a refused Init: %v", err)
	}
}

// TestPoliceConformance runs the suite on tc_police where act_police
// exists; elsewhere it reports the kernel gap.
func TestPoliceConformance(t *testing.T) {
	testenv.RequireRoot(t)
	if err := ProbePolice(backends.Options{}); err != nil {
		testenv.KernelLacks(t, "act_police", err)
	}
	e := newEnv(t)
	backendtest.RunThrottler(t, backendtest.ThrottlerHarness{
		New: func(t *testing.T) backends.Throttler {
			p, err := NewPolice(e.opts())
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		Target: func(t *testing.T) backends.Target {
			l := e.client(t, ingress, false, 30*time.Second)
			return backends.Target{ID: "police", Kind: backends.TargetProcess, PIDs: []int{l.PID}}
		},
		Placer: e.placer,
		Measure: func(t *testing.T, target backends.Target, dur time.Duration) float64 {
			return e.rate(t, ingress, dur, target.PIDs...)
		},
		Tolerance: 0.4,
	})
}
