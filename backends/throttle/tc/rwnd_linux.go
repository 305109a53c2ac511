//go:build linux

package tc

// clampSockets has the socket tagger clamp the buffers of nt's TCP
// connections to its limit: for the IFB shaper's download direction the
// receive window (socktarget.ClampReceive: with autotuned windows the
// shaper's queue overflows and the receiver gets the dropped data late and
// in bursts over the limit), for the upload direction the send buffer
// (socktarget.ClampSend: the redirect to the IFB detaches packets from
// their socket, so TCP fills the queue in slow start and loses its tail).
// New connections get it when established, open ones that got one again
// when the limit changed. Where the kernel cannot clamp, the limit still
// holds, with those bursts.
func (b *base) clampSockets(nt *target) {
	if !b.clamps() || nt.t.Tag == 0 {
		return
	}
	if b.dir == ingress {
		_ = b.tagger.ClampReceive(nt.t.Tag, nt.limit.Rate, b.clampPIDs(nt), true)
	} else {
		_ = b.tagger.ClampSend(nt.t.Tag, nt.limit.Rate, b.clampPIDs(nt))
	}
}

// unclampSockets stops clamping t's new connections and undoes the clamp of
// its open ones.
func (b *base) unclampSockets(t *target) {
	if !b.clamps() || t.t.Tag == 0 {
		return
	}
	if b.dir == ingress {
		_ = b.tagger.Unclamp(t.t.Tag, b.clampPIDs(t))
	} else {
		_ = b.tagger.UnclampSend(t.t.Tag, b.clampPIDs(t))
	}
}

// clampPIDs are the processes whose sockets a re-clamp or an unclamp looks
// at: the target's, and what runs in its cgroups.
func (b *base) clampPIDs(t *target) []int {
	pids, err := livePIDs(t.t)
	if err != nil {
		return t.t.PIDs
	}
	return pids
}

// clamps says whether this backend clamps its connections' buffers: the
// IFB shaper (ifb_tc, tc_htb).
func (b *base) clamps() bool {
	_, shaped := b.lim.(*shaper)
	return shaped && b.tagger != nil
}
