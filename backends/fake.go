package backends

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// FakeMonitor is a MonitorBackend for unit tests: it reports whatever the
// test feeds it with Add.
type FakeMonitor struct {
	NameValue     string
	PriorityValue Priority
	mu            sync.Mutex
	procs         map[int]*ProcessStats
	unknown       Counters
	inited        bool
	// UpdateErr, when set, is returned by Update.
	UpdateErr error
}

// NewFakeMonitor returns a fake monitor named "fake".
func NewFakeMonitor() *FakeMonitor {
	return &FakeMonitor{NameValue: "fake", PriorityValue: Fallback, procs: map[int]*ProcessStats{}}
}

func (f *FakeMonitor) Name() string       { return f.NameValue }
func (f *FakeMonitor) Priority() Priority { return f.PriorityValue }
func (f *FakeMonitor) Init() error        { f.mu.Lock(); f.inited = true; f.mu.Unlock(); return nil }
func (f *FakeMonitor) Cleanup() error     { f.mu.Lock(); f.inited = false; f.mu.Unlock(); return nil }
func (f *FakeMonitor) Capabilities() Capabilities {
	return Capabilities{IPv4: true, IPv6: true, PerProcess: true, PerApp: true, Connections: true}
}

// Add adds traffic to a process (creating it with info when new).
func (f *FakeMonitor) Add(info ProcessInfo, c Counters, conns ...Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.procs[info.PID]
	if !ok {
		p = &ProcessStats{ProcessInfo: info}
		f.procs[info.PID] = p
	}
	p.Counters.Add(c)
	p.Conns = append(p.Conns, conns...)
}

// AddUnknown adds unattributed traffic.
func (f *FakeMonitor) AddUnknown(c Counters) {
	f.mu.Lock()
	f.unknown.Add(c)
	f.mu.Unlock()
}

// Exit marks a process as exited: it is reported once more, then dropped.
func (f *FakeMonitor) Exit(pid int) {
	f.mu.Lock()
	if p, ok := f.procs[pid]; ok {
		p.Exited = true
	}
	f.mu.Unlock()
}

// Update implements MonitorBackend.
func (f *FakeMonitor) Update() (Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.UpdateErr != nil {
		return Snapshot{}, f.UpdateErr
	}
	if !f.inited {
		return Snapshot{}, errors.New("fake monitor: Update before Init")
	}
	s := Snapshot{Time: time.Now(), Unknown: f.unknown}
	s.Total.Add(f.unknown)
	pids := make([]int, 0, len(f.procs))
	for pid := range f.procs {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		p := f.procs[pid]
		c := *p
		c.Conns = append([]Conn(nil), p.Conns...)
		s.Processes = append(s.Processes, c)
		s.Total.Add(p.Counters)
		if p.Exited {
			delete(f.procs, pid)
		}
	}
	return s, nil
}

// FakeThrottler records limits without touching the kernel. Embed it in
// FakeUpload or FakeDownload.
type FakeThrottler struct {
	NameValue     string
	PriorityValue Priority
	Caps          Capabilities
	// SetErr, when set, is returned by SetLimit (and nothing is recorded).
	SetErr  error
	InitErr error
	mu      sync.Mutex
	limits  map[string]fakeLimit
	inited  bool
	Calls   int // SetLimit calls
	// Followed records the PIDs of every FollowSockets call per target id.
	Followed map[string][][]int
}

type fakeLimit struct {
	target Target
	limit  Limit
}

func newFakeThrottler(name string) FakeThrottler {
	return FakeThrottler{NameValue: name, PriorityValue: Fallback, limits: map[string]fakeLimit{},
		Caps: Capabilities{IPv4: true, IPv6: true, PerProcess: true, PerApp: true, ExistingConnections: true,
			TrafficTypes: []TrafficType{TrafficAll, TrafficInternet, TrafficLocal}}}
}

func (f *FakeThrottler) Name() string               { return f.NameValue }
func (f *FakeThrottler) Priority() Priority         { return f.PriorityValue }
func (f *FakeThrottler) Capabilities() Capabilities { return f.Caps }

func (f *FakeThrottler) Init() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.InitErr != nil {
		return f.InitErr
	}
	f.inited = true
	return nil
}

func (f *FakeThrottler) Cleanup() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = map[string]fakeLimit{}
	f.inited = false
	return nil
}

func (f *FakeThrottler) SetLimit(t Target, l Limit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls++
	if !f.inited {
		return fmt.Errorf("%s: SetLimit before Init", f.NameValue)
	}
	if f.SetErr != nil {
		return f.SetErr
	}
	if err := l.Check(); err != nil {
		return fmt.Errorf("%s: %w", f.NameValue, err)
	}
	f.limits[t.ID] = fakeLimit{target: t, limit: l}
	return nil
}

func (f *FakeThrottler) RemoveLimit(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.limits, id)
	return nil
}

func (f *FakeThrottler) Limit(id string) (Limit, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.limits[id]
	return l.limit, ok
}

// FollowSockets records the call (backends.SocketFollower).
func (f *FakeThrottler) FollowSockets(t Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Followed == nil {
		f.Followed = map[string][][]int{}
	}
	f.Followed[t.ID] = append(f.Followed[t.ID], t.PIDs)
	return nil
}

// TargetOf returns the target last passed to SetLimit for id.
func (f *FakeThrottler) TargetOf(id string) (Target, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.limits[id]
	return l.target, ok
}

// FakeUpload is an UploadThrottleBackend for unit tests.
type FakeUpload struct {
	FakeThrottler
	UploadOnly
}

// FakeDownload is a DownloadThrottleBackend for unit tests.
type FakeDownload struct {
	FakeThrottler
	DownloadOnly
}

// NewFakeUpload returns a fake upload throttler named "fake_upload".
func NewFakeUpload() *FakeUpload { return &FakeUpload{FakeThrottler: newFakeThrottler("fake_upload")} }

// NewFakeDownload returns a fake download throttler named "fake_download".
func NewFakeDownload() *FakeDownload {
	return &FakeDownload{FakeThrottler: newFakeThrottler("fake_download")}
}

// FakePlacer is a Placer that records placements without cgroups.
type FakePlacer struct {
	mu     sync.Mutex
	Placed map[string][]int
	next   uint64
	ids    map[string]uint64
	// PlaceErr, when set, is returned by Place.
	PlaceErr error
}

// NewFakePlacer returns an empty fake placer.
func NewFakePlacer() *FakePlacer {
	return &FakePlacer{Placed: map[string][]int{}, ids: map[string]uint64{}, next: 1000}
}

func (p *FakePlacer) Init() error { return nil }

func (p *FakePlacer) Place(id string, pids []int) (Cgroup, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.PlaceErr != nil {
		return Cgroup{}, p.PlaceErr
	}
	if _, ok := p.ids[id]; !ok {
		p.next++
		p.ids[id] = p.next
	}
	p.Placed[id] = append([]int(nil), pids...)
	return Cgroup{Path: "/fake/" + id, ID: p.ids[id]}, nil
}

func (p *FakePlacer) Release(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.Placed, id)
	delete(p.ids, id)
	return nil
}

func (p *FakePlacer) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Placed = map[string][]int{}
	p.ids = map[string]uint64{}
	return nil
}

// FakeTagPlacer is a FakePlacer that recognises targets as the socket
// tagger does (a TargetPlacer): nobody is placed, each target is recorded
// whole and numbered.
type FakeTagPlacer struct {
	*FakePlacer
	tmu     sync.Mutex
	Targets map[string]Target
	tags    map[string]uint32
}

// NewFakeTagPlacer returns an empty fake tagging placer.
func NewFakeTagPlacer() *FakeTagPlacer {
	return &FakeTagPlacer{FakePlacer: NewFakePlacer(), Targets: map[string]Target{}, tags: map[string]uint32{}}
}

// PlaceTarget implements TargetPlacer.
func (p *FakeTagPlacer) PlaceTarget(t Target) (Target, error) {
	p.tmu.Lock()
	defer p.tmu.Unlock()
	if p.PlaceErr != nil {
		return t, p.PlaceErr
	}
	if p.tags[t.ID] == 0 {
		p.tags[t.ID] = uint32(len(p.tags) + 1)
	}
	t.Tag = p.tags[t.ID]
	p.Targets[t.ID] = t
	return t, nil
}

// Mode implements TargetPlacer.
func (p *FakeTagPlacer) Mode() string { return "fake_tags" }

// Release implements Placer.
func (p *FakeTagPlacer) Release(id string) error {
	p.tmu.Lock()
	delete(p.Targets, id)
	delete(p.tags, id)
	p.tmu.Unlock()
	return p.FakePlacer.Release(id)
}

// Target returns the target last placed with this ID.
func (p *FakeTagPlacer) Target(id string) (Target, bool) {
	p.tmu.Lock()
	defer p.tmu.Unlock()
	t, ok := p.Targets[id]
	return t, ok
}

var (
	_ TargetPlacer            = (*FakeTagPlacer)(nil)
	_ MonitorBackend          = (*FakeMonitor)(nil)
	_ UploadThrottleBackend   = (*FakeUpload)(nil)
	_ DownloadThrottleBackend = (*FakeDownload)(nil)
	_ Placer                  = (*FakePlacer)(nil)
)
