package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

func (f *fakeHelper) SetAppBlock(_ context.Context, exe string, uid uint32, traffic, when string) error {
	return f.rec(fmtCall("SetAppBlock", exe, uid, traffic, when))
}
func (f *fakeHelper) RemoveAppBlock(_ context.Context, exe string, uid uint32) error {
	return f.rec(fmtCall("RemoveAppBlock", exe, uid))
}
func (f *fakeHelper) SetProcessBlock(_ context.Context, pid int32, traffic, when string) error {
	return f.rec(fmtCall("SetProcessBlock", pid, traffic, when))
}
func (f *fakeHelper) RemoveProcessBlock(_ context.Context, pid int32) error {
	return f.rec(fmtCall("RemoveProcessBlock", pid))
}

func TestBlockCommands(t *testing.T) {
	uid := os.Getuid()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"block", "--pid", "42"}, fmtCall("SetProcessBlock", 42, "all", "")},
		{[]string{"block", "--pid", "42", "--when", "Mon 09:00-10:00"}, fmtCall("SetProcessBlock", 42, "all", "Mon 09:00-10:00")},
		{[]string{"limit", "--pid", "42", "--up", "1", "--when", "Mon 09:00-10:00"},
			fmtCall("SetProcessLimit", 42, api.Limit{Up: 1, Traffic: "all", When: "Mon 09:00-10:00"})},
		{[]string{"block", "--app", "/usr/bin/sleep", "--traffic", "internet", "--when", "Mon-Fri 09:00-17:00"},
			fmtCall("SetAppBlock", "/usr/bin/sleep", uid, "internet", "Mon-Fri 09:00-17:00")},
		{[]string{"block", "--app", "/usr/bin/sleep", "--uid", "1234"}, fmtCall("SetAppBlock", "/usr/bin/sleep", 1234, "all", "")},
		{[]string{"unblock", "--pid", "42"}, fmtCall("RemoveProcessBlock", 42)},
		{[]string{"unblock", "--app", "/opt/not/installed"}, fmtCall("RemoveAppBlock", "/opt/not/installed", uid)},
		{[]string{"limit", "--app", "/opt/x", "--down", "1MB/s", "--when", "Sat+Sun 00:00-24:00"},
			fmtCall("SetAppLimit", "/opt/x", uid, api.Limit{Down: 1_000_000, Traffic: "all", When: "Sat+Sun 00:00-24:00"})},
	} {
		f := &fakeHelper{}
		code, out, errOut := runCLI(t, f, c.args...)
		if code != 0 || len(f.calls) != 1 || f.calls[0] != c.want {
			t.Errorf("%v: code %d calls %v (%s%s), want %s", c.args, code, f.calls, out, errOut, c.want)
		}
	}
	for _, bad := range [][]string{
		{"block"}, {"block", "--pid", "1", "--app", "/x"}, {"block", "--pid", "42", "--when", "Mon 9-10"},
		{"block", "--app", "/x", "--when", "Mon 9-10"}, {"block", "--app", "/x", "--traffic", "lan"},
		{"limit", "--global", "--up", "1", "--when", "Mon 09:00-10:00"}, {"unblock", "--pid", "42", "--uid", "3"},
	} {
		f := &fakeHelper{}
		code, _, errOut := runCLI(t, f, bad...)
		if code != exitUsage || len(f.calls) != 0 || !strings.Contains(errOut, bad[0]) && errOut == "" {
			t.Errorf("%v: code %d calls %v stderr %q, want usage error", bad, code, f.calls, errOut)
		}
	}
}

// Zones per direction: --down-traffic and --up-traffic give each direction
// its own zone (--traffic the default of both), and the output says so.
func TestLimitZonesPerDirection(t *testing.T) {
	uid := os.Getuid()
	for _, c := range []struct {
		args []string
		want string
		out  string
	}{
		{[]string{"limit", "--app", "/opt/x", "--down", "1MB/s", "--down-traffic", "internet", "--up", "200KB/s"},
			fmtCall("SetAppLimit", "/opt/x", uid, api.Limit{Down: 1_000_000, Up: 200_000, DownTraffic: "internet", UpTraffic: "all"}),
			"(internet traffic), up 200 KB/s (all traffic)"},
		{[]string{"limit", "--pid", "42", "--up", "1", "--traffic", "local", "--down-traffic", "all"},
			fmtCall("SetProcessLimit", 42, api.Limit{Up: 1, DownTraffic: "all", UpTraffic: "local"}), "(local traffic)"},
		{[]string{"limit", "--pid", "42", "--up", "1", "--up-traffic", "internet", "--down-traffic", "internet"},
			fmtCall("SetProcessLimit", 42, api.Limit{Up: 1, Traffic: "internet"}), "internet traffic only"},
	} {
		f := &fakeHelper{}
		code, out, errOut := runCLI(t, f, c.args...)
		if code != 0 || len(f.calls) != 1 || f.calls[0] != c.want || !strings.Contains(out, c.out) {
			t.Errorf("%v: code %d calls %v (%s%s), want %s and %q", c.args, code, f.calls, out, errOut, c.want, c.out)
		}
	}
	for _, bad := range [][]string{
		{"limit", "--app", "/x", "--down", "1", "--down-traffic", "lan"},
		{"limit", "--global", "--down", "1", "--up-traffic", "local"},
	} {
		f := &fakeHelper{}
		if code, _, _ := runCLI(t, f, bad...); code != exitUsage || len(f.calls) != 0 {
			t.Errorf("%v: code %d calls %v, want a usage error", bad, code, f.calls)
		}
	}
}
