// Package backends holds ChadThrottle's pluggable backend framework: the
// MonitorBackend, UploadThrottleBackend and DownloadThrottleBackend
// interfaces (the design of the first ChadThrottle, kept), their priorities and capabilities, selection
// (automatic by priority or manual by name) and the ThrottleManager that
// coordinates one required upload backend with an optional download backend.
//
// Implementations live in sub-packages (backends/monitor/<name>,
// backends/throttle/<name>); they are listed, in priority order, in one
// visible place: cmd/chadthrottle-helper. This package imports only the
// standard library.
package backends

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Priority ranks backends for automatic selection: the highest available
// priority wins.
type Priority int

// The four priorities, lowest first; auto selection takes the highest
// available.
const (
	Fallback Priority = 1 // works but limited (/proc parsing, policing)
	Good     Priority = 2 // solid (tc HTB + IFB, packet capture)
	Better   Priority = 3 // modern, efficient
	Best     Priority = 4 // optimal (eBPF cgroup hooks)
)

func (p Priority) String() string {
	switch p {
	case Fallback:
		return "fallback"
	case Good:
		return "good"
	case Better:
		return "better"
	case Best:
		return "best"
	}
	return fmt.Sprintf("priority(%d)", int(p))
}

// Kind says which of the three backend roles a backend plays.
type Kind string

// The three backend kinds.
const (
	KindMonitor  Kind = "monitor"
	KindUpload   Kind = "upload"
	KindDownload Kind = "download"
	// KindPlacement is not a backend but how targets are recognised
	// (Manager.PlacementMode), listed with the backends so status shows it.
	KindPlacement Kind = "placement"
)

// TrafficType restricts a limit to some destinations (NetLimiter calls them zones).
type TrafficType int

// Traffic types. Local means loopback, RFC 1918, link-local, CGNAT-free
// private ranges and IPv6 ULA; Internet is everything else.
const (
	TrafficAll TrafficType = iota
	TrafficInternet
	TrafficLocal
)

func (t TrafficType) String() string {
	switch t {
	case TrafficAll:
		return "all"
	case TrafficInternet:
		return "internet"
	case TrafficLocal:
		return "local"
	}
	return fmt.Sprintf("traffic(%d)", int(t))
}

// ParseTrafficType parses "all", "internet" or "local" ("" means all).
func ParseTrafficType(s string) (TrafficType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "all":
		return TrafficAll, nil
	case "internet":
		return TrafficInternet, nil
	case "local":
		return TrafficLocal, nil
	}
	return TrafficAll, fmt.Errorf("unknown traffic type %q (want all, internet or local)", s)
}

// IsLocal reports whether addr is a Local destination: loopback, RFC 1918,
// link-local (v4 and v6), IPv6 unique-local (fc00::/7), unspecified, or an
// IPv4-mapped IPv6 form of any of these.
func IsLocal(addr netip.Addr) bool {
	addr = addr.Unmap()
	return addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsUnspecified() || addr.IsInterfaceLocalMulticast()
}

// Matches reports whether traffic to or from remote falls under t.
func (t TrafficType) Matches(remote netip.Addr) bool {
	switch t {
	case TrafficInternet:
		return !IsLocal(remote)
	case TrafficLocal:
		return IsLocal(remote)
	}
	return true
}

// Capabilities says what a backend can do.
type Capabilities struct {
	IPv4       bool
	IPv6       bool
	PerProcess bool // limits or counts single processes
	PerApp     bool // one shared bucket for a group of processes
	// TrafficTypes lists the traffic types a throttler can restrict a limit
	// to; TrafficAll is always supported.
	TrafficTypes []TrafficType
	// ExistingConnections: a throttler's limit also bites on sockets that
	// were open before the limit was set.
	ExistingConnections bool
	// Connections: a monitor reports per-connection figures.
	Connections bool
}

// Supports reports whether t is among the capabilities' traffic types.
func (c Capabilities) Supports(t TrafficType) bool {
	if t == TrafficAll {
		return true
	}
	for _, x := range c.TrafficTypes {
		if x == t {
			return true
		}
	}
	return false
}

// Options configures backends when they are probed and constructed.
type Options struct {
	// Interfaces to shape; empty means the interfaces carrying the default
	// route(s) in NetNS.
	Interfaces []string
	// NetNS is the path of the network namespace to work in (for example
	// /run/netns/NAME); empty means the caller's own.
	NetNS string
	// CgroupParent is the cgroup v2 directory (absolute path) under which the
	// throttlers' placer creates its subtree; empty means the cgroup2 mount
	// found in /proc/self/mountinfo.
	CgroupParent string
	// Tag distinguishes kernel objects of parallel instances (tests); it is
	// appended to the product's names. Empty in production.
	Tag string
}

// Unavailable returns a probe error saying why a backend cannot work here.
// Its message is just the reason; errors.Is(err, errors.ErrUnsupported)
// holds.
func Unavailable(format string, args ...any) error {
	return unavailableError(fmt.Sprintf(format, args...))
}

type unavailableError string

func (e unavailableError) Error() string        { return string(e) }
func (e unavailableError) Is(target error) bool { return target == errors.ErrUnsupported }

// Backend is what every backend has.
type Backend interface {
	// Name is the short, stable name used on the command line (tc_htb).
	Name() string
	// Priority ranks the backend for automatic selection.
	Priority() Priority
	// Capabilities says what the backend can do.
	Capabilities() Capabilities
	// Init prepares the kernel state the backend needs and removes leftovers
	// carrying the product's mark from an earlier run that died.
	Init() error
	// Cleanup removes everything Init and later calls created. It is safe to
	// call more than once.
	Cleanup() error
}

// Counters are cumulative byte and packet counts.
type Counters struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
}

// Add adds o to c.
func (c *Counters) Add(o Counters) {
	c.RxBytes += o.RxBytes
	c.TxBytes += o.TxBytes
	c.RxPackets += o.RxPackets
	c.TxPackets += o.TxPackets
}

// Proto is a transport protocol.
type Proto string

// Transport protocols the monitors report.
const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// Conn is one connection of a process as a monitor saw it. Addresses are
// normalised: IPv4-mapped IPv6 addresses are reported as IPv4.
type Conn struct {
	Proto  Proto
	Local  netip.AddrPort
	Remote netip.AddrPort
	Counters
}

// ProcessInfo identifies a process; monitors fill it when they first
// attribute traffic to it, so it survives the process's exit.
type ProcessInfo struct {
	PID       int
	PPID      int
	UID       uint32
	Comm      string
	Exe       string // resolved /proc/PID/exe; empty for kernel threads or when unreadable
	Cmdline   []string
	StartTime uint64 // clock ticks since boot (stat field 22): with PID, identifies a process
	Cgroup    string // cgroup v2 path relative to the cgroup2 root
}

// ProcessStats is a process's cumulative traffic since the monitor started.
type ProcessStats struct {
	ProcessInfo
	Counters
	Conns  []Conn // open or recently closed connections with their own counters
	Exited bool   // the process has exited; it will not be reported again
}

// Snapshot is one Update of a monitor.
type Snapshot struct {
	Time time.Time
	// Processes holds every process with traffic since Init; processes that
	// exited are reported once more with Exited set, then dropped.
	Processes []ProcessStats
	// Unknown counts traffic that could not be attributed to a process.
	Unknown Counters
	// Total counts all traffic the monitor saw.
	Total Counters
}

// MonitorBackend measures traffic per process.
type MonitorBackend interface {
	Backend
	// Update returns the cumulative counters since Init. It is called about
	// once a second from one goroutine.
	Update() (Snapshot, error)
}

// TargetKind says whether a target is one process or one app.
type TargetKind int

// Target kinds.
const (
	TargetProcess TargetKind = iota // one process and its children
	TargetApp                       // a group of processes sharing one bucket
)

// Target is the unit of throttling: one process (and its children) or one
// app (a group of processes sharing one bucket).
type Target struct {
	// ID is stable for the life of the target and safe in kernel object
	// names once sanitised (for example "pid-1234" or "app-1000-firefox").
	ID   string
	Kind TargetKind
	// PIDs are the target's processes now. SetLimit is called again with a
	// new list when processes join (children follow by themselves).
	PIDs []int
	// Cgroup is the target's own cgroup, filled in by the manager's Placer
	// before the throttlers see the target.
	Cgroup Cgroup
	// Cgroups are all of the target's cgroups when a CgroupsPlacer gives
	// it several (one child cgroup in each cgroup its processes came
	// from); Cgroup is then the first. Throttlers read AllCgroups.
	Cgroups []Cgroup
	// Exe and UID name an app target's program (as /proc/PID/exe names it)
	// and owner (the effective uid its processes run as): a Blocker uses
	// them to refuse the app's processes before they are placed, even while
	// none runs, and a placer that recognises apps in the kernel (the
	// socket tagger) by the program's file. Empty for a process target.
	Exe string
	UID uint32
	// Tag is the target's number in the socket tagger
	// (backends/kernel/socktarget), filled in by a TargetPlacer that tags
	// sockets when they are created; 0 when sockets are not tagged.
	// Throttlers key on it: a packet whose socket carries the tag is the
	// target's.
	Tag uint32
}

// AllCgroups returns every cgroup of the target: Cgroups, else Cgroup
// when it is set, else none.
func (t Target) AllCgroups() []Cgroup {
	if len(t.Cgroups) > 0 {
		return t.Cgroups
	}
	if t.Cgroup.ID != 0 {
		return []Cgroup{t.Cgroup}
	}
	return nil
}

// CgroupIDs returns the ids of AllCgroups.
func (t Target) CgroupIDs() []uint64 {
	var out []uint64
	for _, cg := range t.AllCgroups() {
		if cg.ID != 0 {
			out = append(out, cg.ID)
		}
	}
	return out
}

// Cgroup is a cgroup v2 directory.
type Cgroup struct {
	Path string // absolute path in the cgroup2 mount
	ID   uint64 // the cgroup id (inode number), as bpf_skb_cgroup_id returns
}

// Rate is a payload rate in bytes per second; 0 means unlimited.
type Rate uint64

// MaxRate is the highest rate accepted: 100 Gbit/s.
const MaxRate Rate = 100_000_000_000 / 8

// Limit is one direction's limit of a target.
type Limit struct {
	Rate    Rate // payload bytes per second the application sees; > 0
	Traffic TrafficType
}

// Throttler is what upload and download backends share: limits per target.
type Throttler interface {
	Backend
	// SetLimit creates or updates the target's limit. It must bite within a
	// second on the target's connections, including those already open.
	SetLimit(t Target, l Limit) error
	// RemoveLimit removes the target's limit; unknown IDs are not an error.
	RemoveLimit(id string) error
	// Limit returns the target's limit, if any.
	Limit(id string) (Limit, bool)
}

// SocketFollower is implemented by throttlers that match a target's open
// sockets by identity besides its cgroup. A socket keeps the cgroup it was
// created in, so a connection accepted later from a listener opened before
// the limit is not caught by the target's cgroup. FollowSockets matches the
// sockets the target's processes hold now and forgets those they no longer
// hold; it is cheap when nothing changed, and callers run it about once a
// second for every limited target. Unknown IDs are not an error.
type SocketFollower interface {
	FollowSockets(t Target) error
}

// UploadThrottleBackend limits egress traffic.
type UploadThrottleBackend interface {
	Throttler
	upload()
}

// DownloadThrottleBackend limits ingress traffic.
type DownloadThrottleBackend interface {
	Throttler
	download()
}

// UploadOnly marks an implementation as an upload backend; embed it.
type UploadOnly struct{}

func (UploadOnly) upload() {}

// DownloadOnly marks an implementation as a download backend; embed it.
type DownloadOnly struct{}

func (DownloadOnly) download() {}

// Placer puts a target's processes into the target's own cgroup and back.
type Placer interface {
	// Init finds the cgroup2 mount and removes leftovers of a previous run
	// (moving their processes back where they came from when that is known).
	Init() error
	// Place creates the target's cgroup if needed and moves pids into it,
	// remembering where each came from. Idempotent.
	Place(id string, pids []int) (Cgroup, error)
	// Release moves the target's processes back where they came from and
	// removes its cgroup.
	Release(id string) error
	// Cleanup releases every target.
	Cleanup() error
}

// CgroupsPlacer is a Placer that may give one target several cgroups
// (backends/kernel/cgroupv2's Leaf: a child cgroup inside each cgroup the
// target's processes are in). The manager prefers PlaceCgroups to Place
// and fills Target.Cgroups.
type CgroupsPlacer interface {
	Placer
	PlaceCgroups(id string, pids []int) ([]Cgroup, error)
	// Mode names how targets are recognised, for status lines.
	Mode() string
}

// TargetPlacer is a Placer that needs the whole target (kind, executable)
// and marks it instead of moving processes: PlaceTarget returns the target
// with Tag (or Cgroup) filled in. The manager prefers it to Place.
type TargetPlacer interface {
	Placer
	PlaceTarget(t Target) (Target, error)
	// Mode names how targets are recognised, for status lines.
	Mode() string
}

// SafeName makes s usable in kernel object and file names (cgroups, target
// ids): letters, digits, '-', '_' and '.' are kept, anything else becomes
// '_'; never empty, "." or "..", at most 200 bytes.
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || out == "." || out == ".." {
		out = "_" + out
	}
	if len(out) > 200 {
		out = out[:200]
	}
	return out
}
