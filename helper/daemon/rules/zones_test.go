package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Zones per direction (version 5): a rule whose download covers internet
// traffic and whose upload covers all survives a reopen; a version 4 file's
// one traffic type still covers both directions; a bad zone is rejected
// with the other rules kept.
func TestZonesPerDirectionPersist(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	l := api.Limit{Down: 1_000_000, Up: 200_000, DownTraffic: "internet", UpTraffic: "all"}
	if err := s.Set(api.Rule{Exe: "/usr/bin/game", UID: 1000, Limit: l}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	if !strings.Contains(string(b), `"version": 5`) || !strings.Contains(string(b), `"down_traffic": "internet"`) {
		t.Errorf("written file:\n%s", b)
	}
	got := open(t, dir).All()
	if len(got) != 1 || got[0].Limit.DownZone() != "internet" || got[0].Limit.UpZone() != "all" || got[0].Limit.Traffic != "" {
		t.Errorf("reopened: %+v", got)
	}

	v4 := `{"version":4,"rules":[{"exe":"/usr/bin/curl","uid":1000,"limit":{"down":100,"up":50,"traffic":"internet"}},` +
		`{"exe":"/usr/bin/bad","uid":1000,"limit":{"down":100,"up":0,"down_traffic":"lan","up_traffic":"all"}}]}`
	dir4 := t.TempDir()
	os.WriteFile(filepath.Join(dir4, FileName), []byte(v4), 0o644)
	s4 := open(t, dir4)
	rs := s4.All()
	if len(rs) != 1 || rs[0].Exe != "/usr/bin/curl" || rs[0].Limit.DownZone() != "internet" || rs[0].Limit.UpZone() != "internet" {
		t.Errorf("v4 file: %+v", rs)
	}
	if len(s4.Problems()) == 0 || !strings.Contains(s4.Problems()[0], "lan") {
		t.Errorf("the bad zone is not reported: %v", s4.Problems())
	}
}
