package api

// Traffic history and data quotas (issue #15).

// Method names of history and quotas.
const (
	// MethodGetHistory (exe s, uid u, from x, until x, by s) → []AppHistory:
	// bytes per app over [from, until) (unix seconds) in buckets of by
	// (HistoryMinute…); exe "" means every app the caller may see.
	MethodGetHistory = "GetHistory"
	// MethodGetQuotas () → []Quota, with usage.
	MethodGetQuotas = "GetQuotas"
	// MethodSetQuota (exe s, uid u, period s, bytes t, direction s,
	// action s, rate t) → (): creates or replaces the quota of an app.
	MethodSetQuota = "SetQuota"
	// MethodRemoveQuota (exe s, uid u) → ().
	MethodRemoveQuota = "RemoveQuota"
)

// Resolutions of GetHistory.
const (
	HistoryMinute = "minute"
	HistoryHour   = "hour"
	HistoryDay    = "day"
	HistoryMonth  = "month"
)

// MaxHistoryBuckets bounds the buckets per app one GetHistory call asks
// for: (until-from) / resolution.
const MaxHistoryBuckets = 4000

// HistoryBucket is one bucket of an app's history.
type HistoryBucket struct {
	Start   int64  `json:"start"` // unix seconds
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
}

// AppHistory is one app's bytes over a range, exited processes and earlier
// helper runs included.
type AppHistory struct {
	Exe     string          `json:"exe"`
	UID     uint32          `json:"uid"`
	Name    string          `json:"name"`
	RxBytes uint64          `json:"rx_bytes"`
	TxBytes uint64          `json:"tx_bytes"`
	Buckets []HistoryBucket `json:"buckets"`
}

// Quota periods, directions, actions and states.
const (
	QuotaDay   = "day"
	QuotaWeek  = "week" // starting Monday, local time
	QuotaMonth = "month"

	QuotaDown = "down"
	QuotaUp   = "up"
	QuotaBoth = "both"

	QuotaThrottle = "throttle" // limit the counted directions to Rate
	QuotaBlock    = "block"    // block the app's traffic

	QuotaOK      = "ok"
	QuotaWarning = "warning" // 80 % used
	QuotaReached = "reached" // the action is on
)

// Quota is a data quota on an app with its usage in the current period.
type Quota struct {
	Exe         string `json:"exe"`
	UID         uint32 `json:"uid"`
	Period      string `json:"period"`
	Bytes       uint64 `json:"cap"`
	Direction   string `json:"direction"`
	Action      string `json:"action"`
	Rate        uint64 `json:"rate"` // B/s of a throttle action
	Admin       bool   `json:"admin"`
	Used        uint64 `json:"used"`
	State       string `json:"state"`
	PeriodStart int64  `json:"period_start"` // unix seconds
	PeriodEnd   int64  `json:"period_end"`
}
