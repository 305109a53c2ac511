//go:build !no_capture

package capture

import "testing"

// TestSeqTrack: bytes are counted once, when the other end acknowledges
// them; retransmissions, unacknowledged segments, SYN and FIN count nothing.
func TestSeqTrack(t *testing.T) {
	var s seqTrack
	step := func(name string, p packet, tx bool, wantRx, wantTx uint64) {
		t.Helper()
		if rx, sent := s.bytes(&p, tx); rx != wantRx || sent != wantTx {
			t.Errorf("%s: rx %d tx %d; want rx %d tx %d", name, rx, sent, wantRx, wantTx)
		}
	}
	step("SYN", packet{seq: 1000, flags: flagSYN}, true, 0, 0)
	step("SYN-ACK", packet{seq: 5000, ack: 1001, flags: flagSYN | flagACK}, false, 0, 0)
	step("ACK", packet{seq: 1001, ack: 5001, flags: flagACK}, true, 0, 0)
	step("data", packet{seq: 1001, ack: 5001, payload: 100, flags: flagACK}, true, 0, 0)
	step("retransmission", packet{seq: 1001, ack: 5001, payload: 100, flags: flagACK}, true, 0, 0)
	step("peer acknowledges 50", packet{seq: 5001, ack: 1051, flags: flagACK}, false, 0, 50)
	step("peer data, acknowledges all", packet{seq: 5001, ack: 1101, payload: 300, flags: flagACK}, false, 0, 50)
	step("peer data dropped later", packet{seq: 5301, ack: 1101, payload: 300, flags: flagACK}, false, 0, 0)
	step("ACK of the first", packet{seq: 1101, ack: 5301, flags: flagACK}, true, 300, 0)
	step("duplicate ACK", packet{seq: 1101, ack: 5301, flags: flagACK}, true, 0, 0)
	step("peer FIN", packet{seq: 5301, ack: 1101, payload: 10, flags: flagACK | flagFIN}, false, 0, 0)
	step("ACK of FIN", packet{seq: 1101, ack: 5312, flags: flagACK}, true, 10, 0)
	step("own FIN", packet{seq: 1101, ack: 5312, flags: flagACK | flagFIN}, true, 0, 0)
	step("ACK of own FIN", packet{seq: 5312, ack: 1102, flags: flagACK}, false, 0, 0)

	s = seqTrack{}
	step("first seen mid-stream", packet{seq: 77, ack: 900, payload: 40, flags: flagACK}, true, 0, 0)
	step("peer acknowledges it", packet{seq: 900, ack: 117, payload: 0, flags: flagACK}, false, 0, 40)
	s = seqTrack{}
	step("before the wrap", packet{seq: 0xffffff00, ack: 1, payload: 0x100, flags: flagACK}, true, 0, 0)
	step("across the wrap", packet{seq: 1, ack: 0, payload: 0, flags: flagACK}, false, 0, 0x100)
}
