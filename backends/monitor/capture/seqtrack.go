//go:build !no_capture

package capture

// seqTrack counts a TCP flow's bytes from acknowledgment numbers, so that
// what is shown is what the other end got, whatever a throttler does to the
// packets after (or before) the capture saw them: received is how far the
// local side's acknowledgment number advanced (the payload its TCP took in
// order), sent how far the peer's did. A retransmission, a segment a shaper
// held back in a queue, or one a policer dropped after the capture saw it
// is not acknowledged, so not counted. SYN and FIN take a sequence number
// each but carry no payload: they are not counted.
//
// Each direction starts from the first sequence number seen from its
// sender (or, failing that, the first acknowledgment of it): a flow first
// seen in mid-stream counts from there.
type seqTrack struct {
	sent, recv half
}

// half is one direction of a flow.
type half struct {
	acked  uint32 // highest acknowledgment number seen for it
	fin    uint32 // sequence number of its sender's FIN
	init   bool
	hasFin bool
}

// after reports whether sequence number a is after b (RFC 1982 arithmetic).
func after(a, b uint32) bool { return int32(a-b) > 0 }

// bytes returns the payload bytes p's acknowledgment delivers: received
// (p sent by the local side, tx) or sent (p from the peer).
func (s *seqTrack) bytes(p *packet, tx bool) (rx, sent uint64) {
	if tx {
		s.sent.data(p)
		return s.recv.ack(p), 0
	}
	s.recv.data(p)
	return 0, s.sent.ack(p)
}

// data notes a segment of this direction's sender: its FIN, and where the
// count starts.
func (h *half) data(p *packet) {
	start := p.seq
	if p.flags&flagSYN != 0 {
		start++
	}
	if p.flags&flagFIN != 0 {
		h.fin, h.hasFin = start+uint32(p.payload), true
	}
	if !h.init {
		h.acked, h.init = start, true
	}
}

// ack counts how far p acknowledges this direction's data.
func (h *half) ack(p *packet) uint64 {
	if p.flags&flagACK == 0 {
		return 0
	}
	a := p.ack
	if h.hasFin && a == h.fin+1 {
		a = h.fin
	}
	switch {
	case !h.init:
		h.acked, h.init = a, true
	case after(a, h.acked):
		n := a - h.acked
		h.acked = a
		return uint64(n)
	}
	return 0
}
