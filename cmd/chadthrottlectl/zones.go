package main

import (
	"fmt"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Zones per direction (issue #16): --down-traffic and --up-traffic give
// one direction's limit its own zone; --traffic is both's default.

var (
	fDownTraffic = trafficFlag("down-traffic", "which traffic the download limit applies to (all, internet or local); "+
		"default --traffic's", func(o *opts) *string { return &o.zones[0] })
	fUpTraffic = trafficFlag("up-traffic", "which traffic the upload limit applies to (all, internet or local); "+
		"default --traffic's", func(o *opts) *string { return &o.zones[1] })
)

// trafficFlag is a flag taking a traffic type, stored where dst says.
func trafficFlag(name, help string, dst func(*opts) *string) *flagDef {
	return &flagDef{name: name, arg: "KIND", values: []string{api.TrafficAll, api.TrafficInternet, api.TrafficLocal},
		help: help,
		set: func(o *opts, v string) error {
			switch v {
			case api.TrafficAll, api.TrafficInternet, api.TrafficLocal:
				*dst(o) = v
				return nil
			}
			return fmt.Errorf("%q: want all, internet or local", v)
		}}
}

// withZones gives l the zones --down-traffic and --up-traffic ask for.
func withZones(o *opts, l api.Limit) api.Limit {
	if o.zones == [2]string{} {
		return l
	}
	zone := func(z string) string {
		if z == "" {
			return o.traffic // all unless given
		}
		return z
	}
	return l.SplitZones(zone(o.zones[0]), zone(o.zones[1]))
}
