//go:build linux && bench && !no_ebpf

package socktarget_test

import (
	"os"
	"strconv"

	"github.com/chadthrottle/chadthrottle/backends/ebpf"
)

// CT_EBPF_DOWN_BURST_MS sets the ebpf_cgroup download bucket's depth for a
// benchmark run, to compare depths under the receive window clamp, and
// CT_EBPF_DOWN_SECOND_CAP its cap per second (× the limit, 0: none).
func init() {
	if v, err := strconv.ParseInt(os.Getenv("CT_EBPF_DOWN_BURST_MS"), 10, 64); err == nil && v > 0 {
		ebpf.IngressBurstMS = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("CT_EBPF_DOWN_SECOND_CAP"), 64); err == nil && v >= 0 {
		ebpf.IngressSecondCap = v
	}
}
