//go:build linux && !no_ebpf && !no_tc_htb && !no_ifb_tc && !no_capture

package ebpf

import (
	"testing"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/monitor/capture"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/backends/throttle/tc"
)

func list[T backends.Backend](ds ...*backends.Descriptor[T]) []backends.Descriptor[T] {
	var out []backends.Descriptor[T]
	for _, d := range ds {
		out = append(out, *d)
	}
	return out
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}

// TestSelection builds the helper's registry lists (eBPF first, then tc and
// capture, as in cmd/chadthrottle-helper/registry.go): with all of them
// compiled and available, automatic selection picks eBPF whatever the
// declared order, and a backend asked for by name is still the one built.
func TestSelection(t *testing.T) {
	requireEBPF(t)
	bed := testenv.NewBed(t)
	opts := backends.Options{NetNS: testenv.Path(bed.Local), Interfaces: []string{bed.LocalDev}, Tag: bed.Local}
	reg := backends.Registry{
		Monitors:  list(Monitor, capture.Monitor),
		Uploads:   list(Upload, tc.HTBUpload),
		Downloads: list(Download, tc.IFBDownload),
	}
	for _, s := range reg.Statuses(opts) {
		if !s.Available {
			t.Fatalf("%s %s unavailable here: %s", s.Kind, s.Name, s.Reason)
		}
	}
	check := func(kind backends.Kind, got backends.Backend, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("select %s %q: %v", kind, want, err)
		}
		if got.Name() != want {
			t.Fatalf("selected %s backend %s; want %s", kind, got.Name(), want)
		}
	}
	for _, order := range []string{"declared", "reversed"} {
		ups, downs, mons := reg.Uploads, reg.Downloads, reg.Monitors
		if order == "reversed" {
			ups, downs, mons = reversed(ups), reversed(downs), reversed(mons)
		}
		u, err := backends.Select(backends.KindUpload, ups, "", opts)
		check(backends.KindUpload, u, err, "ebpf_cgroup")
		d, err := backends.Select(backends.KindDownload, downs, "auto", opts)
		check(backends.KindDownload, d, err, "ebpf_cgroup")
		m, err := backends.Select(backends.KindMonitor, mons, "", opts)
		check(backends.KindMonitor, m, err, "ebpf")
	}
	u, err := backends.Select(backends.KindUpload, reg.Uploads, "tc_htb", opts)
	check(backends.KindUpload, u, err, "tc_htb")
	d, err := backends.Select(backends.KindDownload, reg.Downloads, "ifb_tc", opts)
	check(backends.KindDownload, d, err, "ifb_tc")
	m, err := backends.Select(backends.KindMonitor, reg.Monitors, "capture", opts)
	check(backends.KindMonitor, m, err, "capture")
	// The manual choice is a working backend: tc_htb initialises and cleans up in the bed.
	if err := u.Init(); err != nil {
		t.Fatalf("tc_htb Init: %v", err)
	}
	if err := u.Cleanup(); err != nil {
		t.Fatalf("tc_htb Cleanup: %v", err)
	}
}
