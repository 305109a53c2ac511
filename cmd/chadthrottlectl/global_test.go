package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

func (f *fakeHelper) GlobalLimit(context.Context) (api.GlobalLimit, error) {
	return api.GlobalLimit{}, f.rec("GlobalLimit")
}
func (f *fakeHelper) SetGlobalLimit(_ context.Context, g api.GlobalLimit) error {
	return f.rec(fmtCall("SetGlobalLimit", g))
}
func (f *fakeHelper) RemoveGlobalLimit(context.Context) error { return f.rec("RemoveGlobalLimit") }
func (f *fakeHelper) SetAppPriority(_ context.Context, exe string, uid uint32, p string) error {
	return f.rec(fmtCall("SetAppPriority", exe, uid, p))
}

// TestGlobalCommands: limit --global, unlimit --global and priority as the
// CLI contract spells them; bad combinations are usage errors that call
// nothing.
func TestGlobalCommands(t *testing.T) {
	uid := os.Getuid()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"limit", "--global", "--down", "10MB/s"}, fmtCall("SetGlobalLimit", api.GlobalLimit{Down: 10_000_000})},
		{[]string{"limit", "--global", "--up", "1MiB/s", "--interface", "eth0"},
			fmtCall("SetGlobalLimit", api.GlobalLimit{Up: 1 << 20, Interface: "eth0"})},
		{[]string{"limit", "--global", "--down", "none"}, "RemoveGlobalLimit"},
		{[]string{"unlimit", "--global"}, "RemoveGlobalLimit"},
		{[]string{"priority", "--app", "/opt/game", "high"}, fmtCall("SetAppPriority", "/opt/game", uid, "high")},
		{[]string{"priority", "--app", "/opt/updater", "low", "--uid", "0"}, fmtCall("SetAppPriority", "/opt/updater", 0, "low")},
		{[]string{"priority", "--app", "/opt/game", "normal"}, fmtCall("SetAppPriority", "/opt/game", uid, "normal")},
	} {
		f := &fakeHelper{}
		code, out, errOut := runCLI(t, f, c.args...)
		if code != 0 || len(f.calls) != 1 || f.calls[0] != c.want {
			t.Errorf("%v: code %d calls %v (%s%s), want %s", c.args, code, f.calls, out, errOut, c.want)
		}
	}
	for _, bad := range [][]string{
		{"limit", "--global"}, {"limit", "--global", "--app", "/x", "--up", "1"}, {"limit", "--global", "--down", "1", "--traffic", "local"},
		{"limit", "--app", "/x", "--up", "1", "--interface", "eth0"}, {"limit", "--global", "--up", "1", "--interface", "a/b"},
		{"unlimit", "--global", "--pid", "3"}, {"unlimit", "--global", "--interface", "eth0"},
		{"priority", "high"}, {"priority", "--app", "/x"}, {"priority", "--app", "/x", "urgent"}, {"priority", "--app", "/x", "low", "high"},
	} {
		f := &fakeHelper{}
		code, _, errOut := runCLI(t, f, bad...)
		if code != exitUsage || len(f.calls) != 0 || !strings.Contains(errOut, bad[0]) && errOut == "" {
			t.Errorf("%v: code %d calls %v stderr %q, want usage error", bad, code, f.calls, errOut)
		}
	}
}
