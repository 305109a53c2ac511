package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Traffic history (stats) and data quotas (quota, unquota, quotas).

// historyHelper is what these commands need beyond helper.
type historyHelper = api.Stats

// histOpts are the flags of these commands.
type histOpts struct {
	since, until time.Time
	by           string
	per          string
	bytes        uint64
	direction    string
	then         string // "block" or a rate
	rate         uint64
}

var (
	fSince = &flagDef{name: "since", arg: "WHEN", values: []string{"1h", "24h", "7d", "30d"},
		help: "start of the range: a duration back from now (90m, 24h, 7d, 2w) or a local date or time (2026-12-01, 2026-12-01T08:00); default 24h",
		set:  func(o *opts, v string) (err error) { o.hist.since, err = parseWhen(v, time.Now()); return err }}
	fUntil = &flagDef{name: "until", arg: "WHEN", values: []string{"1h", "24h"},
		help: "end of the range, as --since; default now",
		set:  func(o *opts, v string) (err error) { o.hist.until, err = parseWhen(v, time.Now()); return err }}
	fBy = &flagDef{name: "by", arg: "STEP", values: []string{api.HistoryMinute, api.HistoryHour, api.HistoryDay, api.HistoryMonth},
		help: "bucket size: minute (kept 48 h), hour (90 days), day (5 years) or month; default: by the range's length",
		set:  oneOf(func(o *opts) *string { return &o.hist.by }, api.HistoryMinute, api.HistoryHour, api.HistoryDay, api.HistoryMonth)}
	fPer = &flagDef{name: "per", arg: "PERIOD", values: []string{api.QuotaDay, api.QuotaWeek, api.QuotaMonth},
		help: "the quota's period: a calendar day, week (from Monday) or month, in local time",
		set:  oneOf(func(o *opts) *string { return &o.hist.per }, api.QuotaDay, api.QuotaWeek, api.QuotaMonth)}
	fBytes = &flagDef{name: "bytes", arg: "SIZE", values: []string{"500MB", "1GB", "10GB"},
		help: "the cap: 500MB, 1.5GB (×1000), 2GiB (×1024), a bare number of bytes",
		set:  func(o *opts, v string) (err error) { o.hist.bytes, err = api.ParseSize(v); return err }}
	fDirection = &flagDef{name: "direction", arg: "DIR", values: []string{api.QuotaDown, api.QuotaUp, api.QuotaBoth},
		help: "what counts: down (received), up (sent) or both (default)",
		set:  oneOf(func(o *opts) *string { return &o.hist.direction }, api.QuotaDown, api.QuotaUp, api.QuotaBoth)}
	fThen = &flagDef{name: "then", arg: "ACTION", values: []string{api.QuotaBlock, "100KB/s", "1MB/s"},
		help: "what happens at the cap until the period ends: block (default) or a RATE the counted directions are throttled to",
		set: func(o *opts, v string) error {
			if v == api.QuotaBlock {
				o.hist.then, o.hist.rate = v, 0
				return nil
			}
			r, err := api.ParseRate(v)
			if err != nil {
				return err
			}
			if r == 0 {
				return fmt.Errorf("%q: a throttle needs a rate above 0 (or block)", v)
			}
			o.hist.then, o.hist.rate = api.QuotaThrottle, r
			return nil
		}}
)

// historyCommands are the table's history and quota commands.
func historyCommands() []*command {
	return []*command{
		{name: "stats", synopsis: "[--app EXE] [--since 24h|7d|DATE] [--until …] [--by minute|hour|day|month] [--json]",
			summary: "traffic history: bytes per app over a range",
			help: "Shows the bytes each app received and sent over a range, from the helper's history (exited processes and " +
				"earlier helper runs included): per minute for 48 hours, per hour for 90 days, per day for 5 years. Your own " +
				"apps, or every user's with the manage permission; --app for one app (another user's with --uid and manage). " +
				"--json adds the buckets.",
			examples: []string{"chadthrottlectl stats", "chadthrottlectl stats --since 7d --by day",
				"chadthrottlectl stats --app firefox --since 2026-12-01 --json"},
			flags: []*flagDef{fApp, fUID, fSince, fUntil, fBy, fJSON}, check: checkStats, run: cmdStats},
		{name: "quota", synopsis: "--app EXE --per day|week|month --bytes SIZE [--direction down|up|both] [--then block|RATE] [--uid N]",
			summary: "cap an app's data per day, week or month (a rule)",
			help: "Sets a data quota on an app: when its traffic in the current calendar period reaches SIZE, the app is " +
				"throttled to RATE (or blocked) until the period ends, the quota is raised or removed. Usage survives " +
				"restarts; the quota persists and follows the app's new processes. Blocking needs a kernel that lets the " +
				"helper block apps (see 'backends'); 80 % and 100 % show in 'quotas' and as desktop notifications.",
			examples: []string{"chadthrottlectl quota --app steam --per day --bytes 2GB --direction down --then 500KB/s",
				"chadthrottlectl quota --app /usr/bin/curl --per month --bytes 10GiB --then 100KB/s"},
			flags: []*flagDef{fApp, fPer, fBytes, fDirection, fThen, fUID}, check: checkQuota, run: cmdQuota},
		{name: "unquota", synopsis: "--app EXE [--uid N]", summary: "remove an app's data quota",
			help:     "Removes the quota of an app; a throttle it started ends at once.",
			examples: []string{"chadthrottlectl unquota --app steam"},
			flags:    []*flagDef{fApp, fUID}, check: checkUnquota, run: cmdUnquota},
		{name: "quotas", synopsis: "[--json]", summary: "the data quotas with their usage",
			help:  "Lists the quotas (yours, or every user's with the manage permission): period, cap, bytes used this period, action and state (ok, warning at 80 %, reached).",
			flags: []*flagDef{fJSON}, run: cmdQuotas},
	}
}

// parseWhen reads a duration back from now ("90m", "24h", "7d", "2w") or
// a local date ("2026-12-01") or time ("2026-12-01T08:00").
func parseWhen(v string, now time.Time) (time.Time, error) {
	if n := len(v); n > 1 {
		if k, err := strconv.ParseFloat(v[:n-1], 64); err == nil && k >= 0 && k <= 100*366 {
			unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[v[n-1]]
			if unit > 0 {
				return now.Add(-time.Duration(k * float64(unit))), nil
			}
		}
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a duration back from now (90m, 24h, 7d, 2w) or a date (2026-12-01[T08:00])", v)
}

func checkStats(o *opts) error {
	if o.seen["uid"] && !o.seen["app"] {
		return usageErr("--uid goes with --app")
	}
	now := time.Now()
	if !o.seen["since"] {
		o.hist.since = now.Add(-24 * time.Hour)
	}
	if !o.seen["until"] {
		o.hist.until = now
	}
	if !o.hist.until.After(o.hist.since) {
		return usageErr("--until (%s) is not after --since (%s)", o.hist.until.Format(time.DateTime), o.hist.since.Format(time.DateTime))
	}
	if o.hist.by == "" {
		o.hist.by = autoStep(o.hist.until.Sub(o.hist.since))
	}
	return nil
}

// autoStep picks a bucket size that gives a readable number of buckets.
func autoStep(d time.Duration) string {
	switch {
	case d <= 6*time.Hour:
		return api.HistoryMinute
	case d <= 14*24*time.Hour:
		return api.HistoryHour
	case d <= 366*24*time.Hour:
		return api.HistoryDay
	}
	return api.HistoryMonth
}

func checkQuota(o *opts) error {
	for _, f := range []string{"app", "per", "bytes"} {
		if !o.seen[f] {
			return usageErr("quota needs --app, --per and --bytes (missing --%s)", f)
		}
	}
	if o.hist.then == "" {
		o.hist.then = api.QuotaBlock
	}
	if o.hist.direction == "" {
		o.hist.direction = api.QuotaBoth
	}
	return nil
}

func checkUnquota(o *opts) error {
	if !o.seen["app"] {
		return usageErr("unquota needs --app")
	}
	return nil
}

func historyOf(c *call) (historyHelper, error) {
	h, ok := c.h.(historyHelper)
	if !ok {
		return nil, fmt.Errorf("this connection cannot ask for history or quotas")
	}
	return h, nil
}

// insertBefore inserts cmds into table before the command named name (at
// the end when there is none).
func insertBefore(table []*command, name string, cmds []*command) []*command {
	i := slices.IndexFunc(table, func(c *command) bool { return c.name == name })
	if i < 0 {
		i = len(table)
	}
	return slices.Insert(table, i, cmds...)
}

// oneOf is a flag's set function for a value out of a list, stored where
// field says.
func oneOf(field func(o *opts) *string, values ...string) func(o *opts, v string) error {
	return func(o *opts, v string) error {
		if slices.Contains(values, v) {
			*field(o) = v
			return nil
		}
		return fmt.Errorf("%q: want %s", v, strings.Join(values, ", "))
	}
}
