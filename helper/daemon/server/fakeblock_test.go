package server

import (
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The fake engine's blocking part: a block is kept in its rules.

func (f *fakeEngine) SetAppBlock(c api.Caller, exe string, uid uint32, traffic, when string) error {
	f.record("SetAppBlock")
	return f.editRule(uid, exe, func(l *api.Limit) { l.Block, l.BlockWhen = traffic, when })
}

func (f *fakeEngine) RemoveAppBlock(c api.Caller, exe string, uid uint32) error {
	f.record("RemoveAppBlock")
	return f.editRule(uid, exe, func(l *api.Limit) { l.Block, l.BlockWhen = "", "" })
}

func (f *fakeEngine) SetProcessBlock(c api.Caller, pid int, start uint64, traffic, when string) error {
	f.record("SetProcessBlock")
	return f.editProcess(pid, func(l *api.Limit) { l.Block, l.BlockWhen = traffic, when })
}

func (f *fakeEngine) RemoveProcessBlock(c api.Caller, pid int, start uint64) error {
	f.record("RemoveProcessBlock")
	return f.edit(func() { delete(f.plimits, pid) })
}
