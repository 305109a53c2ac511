//go:build !no_capture

package capture

// seqTrack counts a TCP flow's bytes from its sequence numbers, so that
// what is shown is what the application got whatever a throttler does to
// the packets after (or before) the capture saw them:
//   - sent: payload beyond the highest sequence number the local side sent
//     so far. A retransmission is not counted twice; a segment a shaper held
//     back never reached the capture.
//   - received: how far the local side's acknowledgment number advanced,
//     i.e. the payload TCP accepted in order. Segments a policer dropped
//     after the capture saw them, and retransmitted duplicates, are not
//     acknowledged, so not counted.
//
// A flow first seen in mid-stream counts from there.
type seqTrack struct {
	txEnd   uint32 // end of the highest payload sent
	rxAcked uint32 // highest acknowledgment number sent
	finEnd  uint32 // sequence number of the peer's FIN
	txInit  bool
	rxInit  bool
	peerFin bool
}

// after reports whether sequence number a is after b (RFC 1982 arithmetic).
func after(a, b uint32) bool { return int32(a-b) > 0 }

// bytes returns the payload bytes p delivers: received (by the local side's
// ACK) and sent. tx says the local side sent p.
func (s *seqTrack) bytes(p *packet, tx bool) (rx, sent uint64) {
	if !tx {
		if p.flags&flagFIN != 0 {
			s.finEnd, s.peerFin = p.seq+uint32(p.payload), true
		}
		return 0, 0
	}
	start := p.seq
	if p.flags&flagSYN != 0 {
		start++ // the SYN takes one sequence number, no payload
	}
	end := start + uint32(p.payload)
	// Segments without payload do not move txEnd: after the local FIN they
	// carry its sequence number + 1.
	switch {
	case !s.txInit:
		s.txEnd, s.txInit = end, true
		sent = p.payload
	case p.payload > 0 && after(end, s.txEnd):
		sent = uint64(end - s.txEnd)
		s.txEnd = end
	}
	if p.flags&flagACK == 0 {
		return 0, sent
	}
	ack := p.ack
	if s.peerFin && ack == s.finEnd+1 {
		ack = s.finEnd // the FIN takes one sequence number, no payload
	}
	switch {
	case !s.rxInit:
		s.rxAcked, s.rxInit = ack, true
	case after(ack, s.rxAcked):
		rx = uint64(ack - s.rxAcked)
		s.rxAcked = ack
	}
	return rx, sent
}
