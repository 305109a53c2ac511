//go:build linux && bench

package socktarget

import (
	"os"
	"time"
)

// CT_RWND_MS sets RwndTime for a benchmark run (0: no clamp), and
// CT_RWND_POLICER_MS RwndTimePolicer (a policer's window on a near path),
// to compare receive window rules.
func init() {
	for env, d := range map[string]*time.Duration{"CT_RWND_MS": &RwndTime, "CT_RWND_POLICER_MS": &RwndTimePolicer} {
		if v := os.Getenv(env); v != "" {
			if ms, err := time.ParseDuration(v + "ms"); err == nil {
				*d = ms
			}
		}
	}
}
