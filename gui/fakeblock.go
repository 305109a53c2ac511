package gui

import (
	"context"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The Fake's blocking part: a block is kept in the app's limit, like the
// helper's rule.

func (f *Fake) setAppBlockLocked(exe string, uid uint32, traffic, when string) {
	for i := range f.snap.Apps {
		if a := &f.snap.Apps[i]; a.Exe == exe && a.UID == uid {
			a.Limit.Block, a.Limit.BlockWhen = traffic, when
			a.Rule = a.Limit.Limited()
		}
	}
}

// SetAppBlock implements Backend.
func (f *Fake) SetAppBlock(ctx context.Context, exe string, uid uint32, traffic, when string) error {
	return f.record(FakeCall{Method: "SetAppBlock", Exe: exe, UID: uid, Limit: api.Limit{Block: traffic, BlockWhen: when}},
		func() { f.setAppBlockLocked(exe, uid, traffic, when) })
}

// RemoveAppBlock implements Backend.
func (f *Fake) RemoveAppBlock(ctx context.Context, exe string, uid uint32) error {
	return f.record(FakeCall{Method: "RemoveAppBlock", Exe: exe, UID: uid}, func() { f.setAppBlockLocked(exe, uid, "", "") })
}
