package server

import (
	"fmt"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The fake engine's blocking part: a block is kept in its rules.

func (f *fakeEngine) SetAppBlock(c api.Caller, exe string, uid uint32, traffic, when string) error {
	f.record("SetAppBlock")
	f.mu.Lock()
	k := fmt.Sprintf("%d:%s", uid, exe)
	l := f.rules[k]
	l.Block, l.BlockWhen = traffic, when
	f.rules[k] = l
	f.mu.Unlock()
	f.changed()
	return nil
}

func (f *fakeEngine) RemoveAppBlock(c api.Caller, exe string, uid uint32) error {
	f.record("RemoveAppBlock")
	f.mu.Lock()
	k := fmt.Sprintf("%d:%s", uid, exe)
	l := f.rules[k]
	l.Block, l.BlockWhen = "", ""
	f.rules[k] = l
	f.mu.Unlock()
	f.changed()
	return nil
}

func (f *fakeEngine) SetProcessBlock(c api.Caller, pid int, start uint64, traffic, when string) error {
	f.record("SetProcessBlock")
	f.mu.Lock()
	l := f.plimits[pid]
	l.Block, l.BlockWhen = traffic, when
	f.plimits[pid] = l
	f.mu.Unlock()
	f.changed()
	return nil
}

func (f *fakeEngine) RemoveProcessBlock(c api.Caller, pid int, start uint64) error {
	f.record("RemoveProcessBlock")
	f.mu.Lock()
	delete(f.plimits, pid)
	f.mu.Unlock()
	f.changed()
	return nil
}
