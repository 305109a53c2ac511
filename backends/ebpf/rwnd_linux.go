//go:build linux && !no_ebpf

package ebpf

// clampReceive has the socket tagger clamp the receive window of the TCP
// connections of a download target tagged at creation
// (socktarget.ClampReceive): new ones when established, open ones that got
// a clamp again when the limit changed from old's.
func (t *throttler) clampReceive(cur, old *target, tag uint32) {
	if t.dir != ingress || t.tagger == nil || tag == 0 {
		return
	}
	// A failure to re-clamp an open connection leaves the new clamp set.
	if err := t.tagger.ClampReceive(tag, cur.limit.Rate, cur.pids, false); err == nil || (old != nil && old.clamped != 0) {
		cur.clamped = tag
	}
}

// unclampReceive stops clamping cur's new connections and undoes the clamp
// of its open ones.
func (t *throttler) unclampReceive(cur *target) {
	if cur.clamped != 0 && t.tagger != nil {
		_ = t.tagger.Unclamp(cur.clamped, cur.pids)
	}
}
