//go:build linux

package tc

// clampReceive has the socket tagger clamp the receive window of nt's new
// TCP connections to its download limit (socktarget.ClampReceive), for the
// IFB shaper's download direction: with autotuned windows the shaper's
// queue overflows and the receiver gets the dropped data late and in
// bursts over the limit. Where the kernel cannot clamp, the limit still
// holds, with those bursts.
func (b *base) clampReceive(nt *target) {
	if !b.clamps() || nt.t.Tag == 0 {
		return
	}
	_ = b.tagger.ClampReceive(nt.t.Tag, nt.limit.Rate)
}

// unclampReceive stops clamping t's new connections.
func (b *base) unclampReceive(t *target) {
	if !b.clamps() || t.t.Tag == 0 {
		return
	}
	_ = b.tagger.Unclamp(t.t.Tag)
}

// clamps says whether this backend clamps receive windows: ifb_tc.
func (b *base) clamps() bool {
	_, shaped := b.lim.(*shaper)
	return shaped && b.dir == ingress && b.tagger != nil
}
