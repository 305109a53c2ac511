//go:build linux && !no_ebpf

package ebpf

import "github.com/chadthrottle/chadthrottle/backends"

// Bucket sizing. A limit is in payload bytes per second; a bucket holds at
// most burst bytes of tokens and starts empty, so a limit bites at once.
//
// Upload: a segment the program stops stays in TCP's write queue and is
// retried on the next ACK; the bucket keeps 600 ms of tokens so none are
// lost while TCP waits, and a packet passes while the bucket is positive
// (a 64 KiB GSO segment may take it into debt). A segment of a socket with
// nothing in flight would wait for TCP's probe timer (no ACK comes): it
// passes into debt while the debt is under 200 ms of the rate (throttle.c,
// take; TestIdleSegmentPasses).
//
// Download: a dropped segment comes back after a loss probe (≥ 10 ms) or
// an RTO (≥ 200 ms, doubling while retransmissions are dropped); 600 ms of
// tokens cover the usual stalls. The policer is strict (a packet passes
// only when the bucket holds all of it): letting a 64 KiB segment take the
// bucket into debt made every retransmission in the next 0.6 s (at
// 100 kB/s) fail too, and TCP's backed-off RTOs then wasted tokens.
// Measured on the test bed (TestBenchEBPF), burst 300 ms / non-strict gave
// 0.85–0.95 of the limit at 100 kB/s and 0.77–0.86 at 100 MB/s; 600 ms /
// strict gave 0.99–1.03 and 0.99–1.005.
const maxSKB = 64 << 10

const egressBurstMS = 600

// IngressBurstMS is the download bucket's depth in milliseconds at the
// limit (a variable for benchmarks that compare depths).
var IngressBurstMS int64 = 600

// IngressSecondCap caps what a download bucket passes in any second at that
// many times the limit (at least the limit plus two 64 KiB segments, so a
// slow limit still takes a large segment; 0: no cap). Without it the
// tokens a bucket saved while the sender sat in a retransmission timeout
// (several a second on a sub-millisecond path) were spent at once, and a
// 1-s window at the receiver ran at up to 1.2–1.3 × the limit (issue #12).
// It binds only packets of sockets tagged at creation, whose connections
// got the policer's small receive window (socktarget.ReceiveWindow); on a
// connection open before the limit it cost goodput (throttle.c).
var IngressSecondCap = 1.08

// secondCap is the cap of what a bucket of direction d at rate r passes in
// any second (0: none).
func secondCap(d direction, r backends.Rate) uint64 {
	if d == egress || IngressSecondCap <= 0 {
		return 0
	}
	return uint64(max(float64(r)*IngressSecondCap, float64(r)+2*maxSKB))
}

func bucketFor(d direction, r backends.Rate) (burst int64, strict bool) {
	rate := int64(r)
	if d == egress {
		return rate/1000*egressBurstMS + 2*maxSKB, false
	}
	return rate/1000*IngressBurstMS + 2*maxSKB, true
}
