//go:build linux && bench

package socktarget

import (
	"os"
	"time"
)

// CT_RWND_MS sets RwndTime for a benchmark run (0: no clamp), to compare
// receive window rules.
func init() {
	if v := os.Getenv("CT_RWND_MS"); v != "" {
		if d, err := time.ParseDuration(v + "ms"); err == nil {
			RwndTime = d
		}
	}
}
