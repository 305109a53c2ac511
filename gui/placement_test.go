package gui

import (
	"strings"
	"testing"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestStatusLineNamesPlacement: the status line says whether limited apps
// stay in their cgroups, from the helper's active placement mode.
func TestStatusLineNamesPlacement(t *testing.T) {
	fx := newFixture(t, testApps())
	for _, c := range []struct{ mode, want string }{
		{"socket_tags", "limited apps stay in their cgroups"},
		{"cgroup", "cgroup (child of each process's own cgroup"},
	} {
		fx.fake.SetBackends([]api.Backend{
			{Kind: "upload", Name: "ebpf_cgroup", Active: true},
			{Kind: "placement", Name: "socket_tags", Active: c.mode == "socket_tags"},
			{Kind: "placement", Name: "cgroup", Active: c.mode == "cgroup"},
		})
		fx.ui.needStatus.Store(true)
		fx.poll()
		if !strings.Contains(fx.ui.conn.statusLine.Text, c.want) {
			t.Errorf("placement %s: status line = %q, want %q in it", c.mode, fx.ui.conn.statusLine.Text, c.want)
		}
	}
}
