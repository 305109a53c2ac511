package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The history and quota calls of fakeHelper.

func (f *fakeHelper) History(_ context.Context, exe string, uid uint32, from, until time.Time, by string) ([]api.AppHistory, error) {
	return []api.AppHistory{{Exe: "/usr/bin/curl", UID: 1000, Name: "curl\x1b[31m", RxBytes: 2_500_000, TxBytes: 1000,
		Buckets: []api.HistoryBucket{{Start: from.Unix(), RxBytes: 2_500_000, TxBytes: 1000}}}}, f.rec(fmtCall("History", exe, uid, by))
}
func (f *fakeHelper) Quotas(context.Context) ([]api.Quota, error) {
	return []api.Quota{{Exe: "/usr/bin/steam", UID: 1000, Period: "day", Bytes: 2e9, Used: 1.6e9, Direction: "down",
		Action: api.QuotaThrottle, Rate: 500e3, State: api.QuotaWarning}}, f.rec("Quotas")
}
func (f *fakeHelper) SetQuota(_ context.Context, q api.Quota) error {
	return f.rec(fmtCall("SetQuota", q))
}
func (f *fakeHelper) RemoveQuota(_ context.Context, exe string, uid uint32) error {
	return f.rec(fmtCall("RemoveQuota", exe, uid))
}

func TestHistoryCommands(t *testing.T) {
	f := &fakeHelper{}
	code, out, errOut := runCLI(t, f, "quota", "--app", "/bin/sh", "--per", "week", "--bytes", "1.5GB", "--direction", "down", "--then", "100KB/s", "--uid", "1000")
	if code != 0 || !strings.Contains(out, "1.5 GB a week (down), then 100 KB/s") {
		t.Fatalf("quota: %d %q %q", code, out, errOut)
	}
	for _, w := range []string{`"uid":1000`, `"period":"week"`, `"cap":1500000000`, `"direction":"down"`, `"action":"throttle"`, `"rate":100000`} {
		if !strings.Contains(f.calls[0], w) {
			t.Errorf("call %s lacks %s", f.calls[0], w)
		}
	}
	f = &fakeHelper{}
	code, out, _ = runCLI(t, f, "stats", "--since", "7d", "--json")
	var js statsJSON
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || js.Apps[0].Name != "curl\x1b[31m" || js.Apps[0].Buckets[0].Start == "" {
		t.Fatalf("stats --json: %d %q", code, out)
	}
	if f.calls[0] != fmtCall("History", "", uint32(0), "hour") {
		t.Errorf("7 days by %v, want hour", f.calls)
	}
	code, out, _ = runCLI(t, &fakeHelper{}, "stats")
	if code != 0 || !strings.Contains(out, `curl\x1b[31m`) || !strings.Contains(out, "2.5 MB") {
		t.Errorf("stats: %d %q", code, out)
	}
	code, out, _ = runCLI(t, &fakeHelper{}, "quotas")
	if code != 0 || !strings.Contains(out, "1.6 GB") || !strings.Contains(out, "warning") {
		t.Errorf("quotas: %d %q", code, out)
	}
	for _, args := range [][]string{
		{"quota", "--app", "/bin/sh", "--per", "year", "--bytes", "1GB"},
		{"quota", "--app", "/bin/sh", "--per", "day"},
		{"quota", "--app", "/bin/sh", "--per", "day", "--bytes", "5Mb"},
		{"quota", "--app", "/bin/sh", "--per", "day", "--bytes", "1GB", "--then", "0"},
		{"stats", "--since", "yesterday"},
		{"stats", "--since", "1h", "--until", "2h"},
		{"stats", "--by", "fortnight"},
		{"unquota"},
	} {
		f := &fakeHelper{}
		if code, _, errOut := runCLI(t, f, args...); code != 2 || len(f.calls) > 0 {
			t.Errorf("%v: code %d, calls %v, stderr %q; want 2 and no call", args, code, f.calls, errOut)
		}
	}
}
