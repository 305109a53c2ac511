// Package api is the D-Bus contract between chadthrottle-helper and its
// clients (the GUI, chadthrottlectl): bus name, object path, interface,
// methods with the polkit action each requires, error names and the wire
// types. It imports only the standard library; packaging files are checked
// against these names by a test.
//
// Wire types are plain structs of D-Bus basic types, marshalled by godbus as
// STRUCTs; the JSON tags are the chadthrottlectl --json format.
package api

// Names on the bus. A breaking change makes Helper2.
const (
	BusName    = "io.github.chadthrottle.Helper1"
	ObjectPath = "/io/github/chadthrottle/Helper1"
	Interface  = "io.github.chadthrottle.Helper1"
)

// polkit action IDs; packaging's .policy file declares exactly these.
const (
	ActionMonitor  = "io.github.chadthrottle.monitor"   // see traffic and limits
	ActionLimitOwn = "io.github.chadthrottle.limit-own" // limit the caller's own processes
	ActionManage   = "io.github.chadthrottle.manage"    // others' processes, global settings, backends
)

// The helper's directories, created and removed by the packages (the
// helper's --state-dir and --run-dir default to them).
const (
	StateDir   = "/var/lib/chadthrottle" // rules.json and what else persists
	RuntimeDir = "/run/chadthrottle"     // the instance lock and crash-recovery records
)

// Actions lists every polkit action.
var Actions = []string{ActionMonitor, ActionLimitOwn, ActionManage}

// D-Bus error names returned by the helper.
const (
	ErrNotAuthorized   = "io.github.chadthrottle.Error.NotAuthorized"   // polkit said no (or the user dismissed the dialog)
	ErrInvalidArgument = "io.github.chadthrottle.Error.InvalidArgument" // bad rate, traffic type, exe, pid…
	ErrNotFound        = "io.github.chadthrottle.Error.NotFound"        // no such process, app or rule
	ErrUnavailable     = "io.github.chadthrottle.Error.Unavailable"     // e.g. download limiting unavailable here
	ErrFailed          = "io.github.chadthrottle.Error.Failed"          // the kernel refused; the message says why
	ErrQuotaExceeded   = "io.github.chadthrottle.Error.QuotaExceeded"   // a user's bound on rules or limits is reached
	ErrTooManyCalls    = "io.github.chadthrottle.Error.TooManyCalls"    // the caller's uid made too many calls; retry later
)

// Caller is who asks the helper's engine for a change: the bus caller's
// uid, and whether this call was authorized with ActionManage (or by uid
// 0). It is not sent on the bus.
type Caller struct {
	UID   uint32
	Admin bool
}

// Signals emitted on Interface.
const (
	// SignalLimitsChanged (no arguments) is emitted when a limit or rule
	// changes, so clients refresh at once instead of on their next poll.
	SignalLimitsChanged = "LimitsChanged"
)

// Method names. Clients poll GetApps at 1 Hz: a snapshot broadcast as a
// signal would reach every peer on the system bus without a polkit check.
const (
	MethodGetStatus          = "GetStatus"          // () → Status
	MethodGetPermissions     = "GetPermissions"     // () → Permissions
	MethodListBackends       = "ListBackends"       // () → []Backend
	MethodGetApps            = "GetApps"            // () → Snapshot
	MethodGetAppDetails      = "GetAppDetails"      // (appID s) → AppDetails
	MethodGetRules           = "GetRules"           // () → []Rule
	MethodSetAppLimit        = "SetAppLimit"        // (exe s, uid u, down t, up t, traffic s) → ()
	MethodRemoveAppLimit     = "RemoveAppLimit"     // (exe s, uid u) → ()
	MethodSetProcessLimit    = "SetProcessLimit"    // (pid u, down t, up t, traffic s) → ()
	MethodRemoveProcessLimit = "RemoveProcessLimit" // (pid u) → ()
	MethodSetPaused          = "SetPaused"          // (paused b) → (): pauses the caller's own limits (all with manage)
)

// Method pairs a method with the polkit action it needs.
type Method struct {
	Name   string
	Action string
	// Escalates: the method needs ActionManage instead of Action when its
	// target is not the caller's own (another uid, a system process, all
	// users' limits).
	Escalates bool
}

// Methods lists every method of the interface with its authorization.
var Methods = []Method{
	{MethodGetStatus, ActionMonitor, false},
	{MethodGetPermissions, "", false}, // tells the caller what it may do; needs no action
	{MethodListBackends, ActionMonitor, false},
	{MethodGetApps, ActionMonitor, false},
	{MethodGetAppDetails, ActionMonitor, false},
	{MethodGetRules, ActionMonitor, false},
	{MethodSetAppLimit, ActionLimitOwn, true},
	{MethodRemoveAppLimit, ActionLimitOwn, true},
	{MethodSetProcessLimit, ActionLimitOwn, true},
	{MethodRemoveProcessLimit, ActionLimitOwn, true},
	{MethodSetPaused, ActionLimitOwn, true},
	{MethodGetHistory, ActionMonitor, true},
	{MethodGetQuotas, ActionMonitor, false},
	{MethodSetQuota, ActionLimitOwn, true},
	{MethodRemoveQuota, ActionLimitOwn, true},
}

// Traffic types of a limit.
const (
	TrafficAll      = "all"
	TrafficInternet = "internet"
	TrafficLocal    = "local"
)

// Limit is a target's limit: rates in payload bytes per second, 0 =
// unlimited.
type Limit struct {
	Down    uint64 `json:"down"`
	Up      uint64 `json:"up"`
	Traffic string `json:"traffic,omitempty"`
	// When is the rates' schedule (ParseSchedule; "" = always).
	When string `json:"when,omitempty"`
	// Block is the traffic the target may not have at all (all, internet,
	// local); "" = not blocked. BlockWhen is its schedule.
	Block     string `json:"block,omitempty"`
	BlockWhen string `json:"block_when,omitempty"`
	// Priority is the target's share of the global limit (low, high,
	// critical); "" = normal.
	Priority string `json:"priority,omitempty"`
	// DownTraffic and UpTraffic are the zones of the download and the
	// upload limit when they differ (issue #16, zones.go); "" = Traffic's.
	DownTraffic string `json:"down_traffic,omitempty"`
	UpTraffic   string `json:"up_traffic,omitempty"`
}

// App is a group of processes of one executable and one user.
type App struct {
	ID      string  `json:"id"`   // "<uid>:<exe>" (exe may be a comm name in brackets for kernel tasks)
	Name    string  `json:"name"` // display name (.desktop Name= where there is one)
	Exe     string  `json:"exe"`
	Icon    string  `json:"icon"` // icon name or path from the .desktop file; "" for none
	UID     uint32  `json:"uid"`
	User    string  `json:"user"`
	PIDs    []int32 `json:"pids"`
	RxRate  uint64  `json:"rx_rate"` // B/s over the last second
	TxRate  uint64  `json:"tx_rate"`
	RxBytes uint64  `json:"rx_bytes"` // since the helper started, exited processes included
	TxBytes uint64  `json:"tx_bytes"`
	Limit   Limit   `json:"limit"`
	Rule    bool    `json:"rule"` // Limit comes from a persisted rule
}

// Snapshot is one 1 Hz view of all apps.
type Snapshot struct {
	Time        int64  `json:"time"` // unix milliseconds
	RxRate      uint64 `json:"rx_rate"`
	TxRate      uint64 `json:"tx_rate"`
	RxBytes     uint64 `json:"rx_bytes"`
	TxBytes     uint64 `json:"tx_bytes"`
	UnknownRate uint64 `json:"unknown_rate"` // B/s that could not be attributed to a process
	Apps        []App  `json:"apps"`
}

// Process is one process of an app.
type Process struct {
	PID     int32  `json:"pid"`
	PPID    int32  `json:"ppid"`
	Comm    string `json:"comm"`
	Cmdline string `json:"cmdline"`
	UID     uint32 `json:"uid"`
	RxRate  uint64 `json:"rx_rate"`
	TxRate  uint64 `json:"tx_rate"`
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
	Limit   Limit  `json:"limit"`
}

// Connection is one connection of a process.
type Connection struct {
	PID     int32  `json:"pid"`
	Proto   string `json:"proto"`   // tcp, udp
	Local   string `json:"local"`   // addr:port
	Remote  string `json:"remote"`  // addr:port
	Traffic string `json:"traffic"` // internet or local
	RxRate  uint64 `json:"rx_rate"`
	TxRate  uint64 `json:"tx_rate"`
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
}

// Sample is one second of history.
type Sample struct {
	RxRate uint64 `json:"rx_rate"`
	TxRate uint64 `json:"tx_rate"`
}

// HistoryLen is the number of 1 s samples of history kept per app and process.
const HistoryLen = 60

// AppDetails is one app expanded: processes, connections, history (oldest
// first, up to HistoryLen samples).
type AppDetails struct {
	App         App          `json:"app"`
	Processes   []Process    `json:"processes"`
	Connections []Connection `json:"connections"`
	History     []Sample     `json:"history"`
}

// Status is the helper's state.
type Status struct {
	Version        string `json:"version"`
	Monitor        string `json:"monitor"`         // active monitor backend
	Upload         string `json:"upload"`          // active upload backend
	Download       string `json:"download"`        // active download backend; "" when unavailable
	DownloadReason string `json:"download_reason"` // why download limiting is unavailable
	Interfaces     string `json:"interfaces"`      // shaped interfaces, comma separated
	Paused         bool   `json:"paused"`          // the caller's limits are paused
}

// Permission answers of GetPermissions.
const (
	PermYes  = "yes"  // authorized now
	PermAuth = "auth" // authorized after authentication
	PermNo   = "no"
)

// Permissions tells the caller what it may do, for the GUI's read-only mode.
type Permissions struct {
	Monitor  string `json:"monitor"`
	LimitOwn string `json:"limit_own"`
	Manage   string `json:"manage"`
}

// Backend is one compiled backend as --list-backends prints it.
type Backend struct {
	Kind      string `json:"kind"` // monitor, upload, download
	Name      string `json:"name"`
	Priority  int32  `json:"priority"`
	Available bool   `json:"available"`
	Active    bool   `json:"active"`
	Reason    string `json:"reason,omitempty"`
}

// Rule is a persisted per-app limit: it applies to the app's running and
// future processes of that uid.
type Rule struct {
	Exe   string `json:"exe"`
	UID   uint32 `json:"uid"`
	Limit Limit  `json:"limit"`
	// Admin: an administrator (manage) set it; only manage may lift or
	// change it, and the owner's pause does not pause it.
	Admin bool `json:"admin"`
}
