package backends

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Descriptor describes one compiled backend of type T (MonitorBackend,
// UploadThrottleBackend or DownloadThrottleBackend) before it is built.
type Descriptor[T Backend] struct {
	Name     string
	Priority Priority
	// Probe returns nil when the backend can work here, otherwise an error
	// (wrapping errors.ErrUnsupported) that says what is missing. It probes
	// kernel features; it never compares versions.
	Probe func(Options) error
	// New builds the backend; Init is called by the caller.
	New func(Options) (T, error)
}

// Status is a descriptor's probe result, for --list-backends and the GUI.
type Status struct {
	Kind      Kind
	Name      string
	Priority  Priority
	Available bool
	Reason    string // why it is unavailable; empty when available
}

// Registry is the list of compiled backends, one slice per kind, in the
// order the helper declares them.
type Registry struct {
	Monitors  []Descriptor[MonitorBackend]
	Uploads   []Descriptor[UploadThrottleBackend]
	Downloads []Descriptor[DownloadThrottleBackend]
	Blockers  []Descriptor[Blocker]
	Globals   []Descriptor[GlobalShaper]
}

// Statuses probes every compiled backend and returns the results, sorted by
// kind (monitor, upload, download, block, global) then priority (highest first).
func (r *Registry) Statuses(opts Options) []Status {
	var out []Status
	out = append(out, statuses(KindMonitor, r.Monitors, opts)...)
	out = append(out, statuses(KindUpload, r.Uploads, opts)...)
	out = append(out, statuses(KindDownload, r.Downloads, opts)...)
	out = append(out, statuses(KindBlock, r.Blockers, opts)...)
	out = append(out, statuses(KindGlobal, r.Globals, opts)...)
	return out
}

func statuses[T Backend](kind Kind, list []Descriptor[T], opts Options) []Status {
	out := make([]Status, 0, len(list))
	for _, d := range byPriority(list) {
		s := Status{Kind: kind, Name: d.Name, Priority: d.Priority, Available: true}
		if err := probe(d, opts); err != nil {
			s.Available = false
			s.Reason = err.Error()
		}
		out = append(out, s)
	}
	return out
}

func probe[T Backend](d Descriptor[T], opts Options) (err error) {
	if d.Probe == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("probe of %s panicked: %v", d.Name, r)
		}
	}()
	return d.Probe(opts)
}

// byPriority returns list sorted by priority, highest first, keeping the
// declared order among equals.
func byPriority[T Backend](list []Descriptor[T]) []Descriptor[T] {
	s := append([]Descriptor[T](nil), list...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Priority > s[j].Priority })
	return s
}

// ErrUnknownBackend is wrapped when a name matches no compiled backend.
var ErrUnknownBackend = errors.New("unknown backend")

// Select builds a backend of one kind. With name == "" or "auto" it picks the
// highest-priority backend whose probe passes (auto selection); otherwise the
// named one, failing clearly when it is unknown or unavailable. The returned
// backend is not yet initialised.
func Select[T Backend](kind Kind, list []Descriptor[T], name string, opts Options) (T, error) {
	var zero T
	if name != "" && name != "auto" {
		for _, d := range list {
			if d.Name != name {
				continue
			}
			if err := probe(d, opts); err != nil {
				return zero, fmt.Errorf("%s backend %q is unavailable: %w", kind, name, err)
			}
			b, err := d.New(opts)
			if err != nil {
				return zero, fmt.Errorf("create %s backend %q: %w", kind, name, err)
			}
			return b, nil
		}
		names := make([]string, 0, len(list))
		for _, d := range list {
			names = append(names, d.Name)
		}
		return zero, fmt.Errorf("%w: no %s backend named %q (compiled: %s)", ErrUnknownBackend, kind, name, orNone(names))
	}
	var reasons []string
	for _, d := range byPriority(list) {
		if err := probe(d, opts); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", d.Name, err))
			continue
		}
		b, err := d.New(opts)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", d.Name, err))
			continue
		}
		return b, nil
	}
	if len(list) == 0 {
		return zero, fmt.Errorf("no %s backend compiled in: %w", kind, errors.ErrUnsupported)
	}
	return zero, fmt.Errorf("no %s backend is available (%s): %w", kind, strings.Join(reasons, "; "), errors.ErrUnsupported)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
