package api

import "strings"

// Zones per direction (issue #16): a limit's download and upload part may
// each cover their own zone — all traffic, internet or local — so an app
// can have its downloads from the internet limited while its uploads are
// limited everywhere. A limit whose two zones agree keeps them in Traffic
// alone (the form of every limit before, and of older rules files); when
// they differ, DownTraffic and UpTraffic hold them and Traffic is "".
//
// On the bus a limit's traffic argument (SetAppLimit, SetProcessLimit…)
// is one zone for both directions, or "DOWN/UP" (WireTraffic), so the
// methods keep their signatures.

// DownZone is the zone the download limit covers (all, internet, local).
func (l Limit) DownZone() string { return zoneOr(l.DownTraffic, l.Traffic) }

// UpZone is the zone the upload limit covers.
func (l Limit) UpZone() string { return zoneOr(l.UpTraffic, l.Traffic) }

func zoneOr(dir, both string) string {
	if dir == "" {
		dir = both
	}
	if dir == "" {
		return TrafficAll
	}
	return dir
}

// SplitZones returns l with its download zone down and upload zone up, in
// the canonical form (one Traffic when they agree). Neither is checked.
func (l Limit) SplitZones(down, up string) Limit {
	if down == up {
		l.Traffic, l.DownTraffic, l.UpTraffic = down, "", ""
	} else {
		l.Traffic, l.DownTraffic, l.UpTraffic = "", down, up
	}
	return l
}

// WithRates returns l with the rates' part of r — rates, zones and
// schedule; l's block and priority stay.
func (l Limit) WithRates(r Limit) Limit {
	l.Down, l.Up, l.When = r.Down, r.Up, r.When
	l.Traffic, l.DownTraffic, l.UpTraffic = r.Traffic, r.DownTraffic, r.UpTraffic
	return l
}

// WireTraffic is l's traffic argument on the bus: its zone, or "DOWN/UP"
// when the directions' zones differ.
func (l Limit) WireTraffic() string {
	if d, u := l.DownZone(), l.UpZone(); d != u {
		return d + "/" + u
	}
	return l.Traffic
}

// validateZones checks l's zones — Traffic may be "DOWN/UP" — and returns
// l with them spelled out in the canonical form.
func validateZones(l Limit) (Limit, error) {
	both, down, up := l.Traffic, l.DownTraffic, l.UpTraffic
	if d, u, ok := strings.Cut(both, "/"); ok {
		if down != "" || up != "" {
			return l, Errorf(ErrInvalid, "traffic %q names both directions' zones, and so do down_traffic and up_traffic", both)
		}
		both, down, up = "", d, u
		if d == "" || u == "" {
			return l, Errorf(ErrInvalid, "traffic %q: want DOWN/UP, each all, internet or local", l.Traffic)
		}
	}
	if down == "" && up == "" {
		t, err := NormalTraffic(both)
		return l.SplitZones(t, t), err
	}
	var zones [2]string
	for i, z := range []string{zoneOr(down, both), zoneOr(up, both)} {
		n, err := NormalTraffic(z)
		if err != nil {
			return l, Errorf(ErrInvalid, "%s: %v", [2]string{"download", "upload"}[i], err)
		}
		zones[i] = n
	}
	if both != "" {
		if _, err := NormalTraffic(both); err != nil {
			return l, err
		}
	}
	return l.SplitZones(zones[0], zones[1]), nil
}
