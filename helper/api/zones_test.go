package api

import (
	"errors"
	"testing"
)

func TestValidateZones(t *testing.T) {
	for _, c := range []struct {
		in                Limit
		traffic, down, up string
		downZone, upZone  string
	}{
		{Limit{}, "all", "", "", "all", "all"},
		{Limit{Traffic: "Internet"}, "internet", "", "", "internet", "internet"},
		{Limit{Traffic: "internet/all"}, "", "internet", "all", "internet", "all"},
		{Limit{Traffic: "local/local"}, "local", "", "", "local", "local"},
		{Limit{DownTraffic: "internet"}, "", "internet", "all", "internet", "all"},
		{Limit{Traffic: "local", UpTraffic: "internet"}, "", "local", "internet", "local", "internet"},
		{Limit{DownTraffic: "all", UpTraffic: "all"}, "all", "", "", "all", "all"},
	} {
		l, err := ValidateLimit(c.in)
		if err != nil || l.Traffic != c.traffic || l.DownTraffic != c.down || l.UpTraffic != c.up ||
			l.DownZone() != c.downZone || l.UpZone() != c.upZone {
			t.Errorf("%+v: %+v %v", c.in, l, err)
		}
		if again, _ := ValidateLimit(l); again != l {
			t.Errorf("%+v: not canonical: %+v then %+v", c.in, l, again)
		}
		if w, _ := ValidateLimit(Limit{Traffic: l.WireTraffic()}); w.DownZone() != c.downZone || w.UpZone() != c.upZone {
			t.Errorf("%+v: wire form %q reads back as %+v", c.in, l.WireTraffic(), w)
		}
	}
	for _, bad := range []Limit{{Traffic: "lan"}, {Traffic: "internet/"}, {Traffic: "/all"}, {Traffic: "a/b/c"},
		{Traffic: "internet/lan"}, {DownTraffic: "lan"}, {Traffic: "lan", UpTraffic: "all"},
		{Traffic: "internet/all", DownTraffic: "all"}} {
		if _, err := ValidateLimit(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
}
