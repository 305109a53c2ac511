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
	scheduleTimeline(t, b, c, id)
	// Without its block the process's limit still switches.
	if err := b.e.RemoveProcessBlock(user, 101, 0); err != nil {
		t.Fatal(err)
	}
	c.t = time.Date(2026, 12, 1, 17, 0, 0, 0, time.Local)
	b.scan()
	_, hasLimit := b.up.Limit(id)
	_, hasBlock := b.block.Blocked(id)
	if hasLimit || hasBlock {
		t.Errorf("Tue 17:00 after unblock: limited=%v blocked=%v", hasLimit, hasBlock)
	}
}

// scheduleTimeline steps clock c through a Monday and a Tuesday and checks
// that target id has an upload limit on Mon-Fri 09:00-17:00 and a block on
// Mon 22:00-06:00.
func scheduleTimeline(t *testing.T, b *bench, c *clock, id string) {
	t.Helper()
	at := func(day, h, m, s int) time.Time { return time.Date(2026, 11, 29+day, h, m, s, 0, time.Local) }
	for _, st := range []struct {
		name             string
		t                time.Time
		limited, blocked bool
	}{
		{"Mon 08:59:59", at(1, 8, 59, 59), false, false},
		{"Mon 09:00:00", at(1, 9, 0, 0), true, false},
		{"Mon 16:59:59", at(1, 16, 59, 59), true, false},
		{"Mon 17:00:00", at(1, 17, 0, 0), false, false},
		{"Mon 22:00", at(1, 22, 0, 0), false, true},
		{"Tue 05:59:59 (past midnight)", at(2, 5, 59, 59), false, true},
		{"Tue 06:00", at(2, 6, 0, 0), false, false},
		{"Tue 09:30", at(2, 9, 30, 0), true, false},
	} {
		c.t = st.t
		b.scan()
		_, hasLimit := b.up.Limit(id)
		_, hasBlock := b.block.Blocked(id)
		if hasLimit != st.limited || hasBlock != st.blocked {
			t.Errorf("%s: limited=%v blocked=%v, want %v %v", st.name, hasLimit, hasBlock, st.limited, st.blocked)
		}
	}
}
