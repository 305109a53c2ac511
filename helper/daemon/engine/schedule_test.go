package engine

import (
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestProcessScheduleSwitches: with an injected clock, a process's
// scheduled limit and scheduled block switch on and off at their
// boundaries on the next scan, like an app rule's (TestScheduleSwitches).
func TestProcessScheduleSwitches(t *testing.T) {
	// Monday 2026-11-30 08:59:59 local time.
	c := &clock{t: time.Date(2026, 11, 30, 8, 59, 59, 0, time.Local)}
	b := newBench(t, firefoxProcs, withClock(c))
	user := asUID(1000)
	if err := b.e.SetProcessLimit(user, 101, 0, api.Limit{Up: 1000, When: "Mon-Fri 09:00-17:00"}); err != nil {
		t.Fatal(err)
	}
	if err := b.e.SetProcessBlock(user, 101, 0, "internet", "Mon 22:00-06:00"); err != nil {
		t.Fatal(err)
	}
	if err := b.e.SetProcessBlock(user, 101, 0, "internet", "Mon 9-10"); err == nil {
		t.Error("a bad schedule was accepted")
	}
	id := pidTargetID(101, 1010)
	check := func(at string, limited, blocked bool) {
		t.Helper()
		b.scan()
		_, hasLimit := b.up.Limit(id)
		_, hasBlock := b.block.Blocked(id)
		if hasLimit != limited || hasBlock != blocked {
			t.Errorf("%s: limited=%v blocked=%v, want %v %v", at, hasLimit, hasBlock, limited, blocked)
		}
	}
	check("Mon 08:59:59", false, false)
	c.t = c.t.Add(time.Second)
	check("Mon 09:00:00", true, false)
	c.t = time.Date(2026, 11, 30, 16, 59, 59, 0, time.Local)
	check("Mon 16:59:59", true, false)
	c.t = c.t.Add(time.Second)
	check("Mon 17:00:00", false, false)
	c.t = time.Date(2026, 11, 30, 22, 0, 0, 0, time.Local)
	check("Mon 22:00", false, true)
	c.t = time.Date(2026, 12, 1, 6, 0, 0, 0, time.Local)
	check("Tue 06:00", false, false)
	c.t = time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local)
	check("Tue 09:30", true, false)
	// The schedule stays with the limit: the engine reports it.
	if err := b.e.RemoveProcessBlock(user, 101, 0); err != nil {
		t.Fatal(err)
	}
	c.t = time.Date(2026, 11, 30, 23, 0, 0, 0, time.Local)
	check("Mon 23:00 after unblock", false, false)
}
