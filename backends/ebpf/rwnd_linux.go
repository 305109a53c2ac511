//go:build linux

package ebpf

// clampReceive has the socket tagger clamp the receive window of the new
// TCP connections of a download target tagged at creation
// (socktarget.ClampReceive).
func (t *throttler) clampReceive(cur *target, tag uint32) {
	if t.dir != ingress || t.tagger == nil || tag == 0 {
		return
	}
	if t.tagger.ClampReceive(tag, cur.limit.Rate) == nil {
		cur.clamped = tag
	}
}

// unclampReceive stops clamping cur's new connections.
func (t *throttler) unclampReceive(cur *target) {
	if cur.clamped != 0 && t.tagger != nil {
		_ = t.tagger.Unclamp(cur.clamped)
	}
}
