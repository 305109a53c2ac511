//go:build linux

package tc

// clampReceive has the socket tagger clamp the receive window of nt's TCP
// connections to its download limit (socktarget.ClampReceive): new ones
// when established, open ones that got a clamp again when the limit
// changed. It is for the IFB shaper's download direction: with autotuned
// windows the shaper's queue overflows and the receiver gets the dropped
// data late and in bursts over the limit. Where the kernel cannot clamp,
// the limit still holds, with those bursts.
func (b *base) clampReceive(nt *target) {
	if !b.clamps() || nt.t.Tag == 0 {
		return
	}
	_ = b.tagger.ClampReceive(nt.t.Tag, nt.limit.Rate, b.clampPIDs(nt), true)
}

// unclampReceive stops clamping t's new connections and undoes the clamp of
// its open ones.
func (b *base) unclampReceive(t *target) {
	if !b.clamps() || t.t.Tag == 0 {
		return
	}
	_ = b.tagger.Unclamp(t.t.Tag, b.clampPIDs(t))
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

// clamps says whether this backend clamps receive windows: ifb_tc.
func (b *base) clamps() bool {
	_, shaped := b.lim.(*shaper)
	return shaped && b.dir == ingress && b.tagger != nil
}
