package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestQuotaBudgetAndAction: a quota not reached puts its byte budget on the
// app's target (processes included) and reads back what the kernel left;
// its action replaces the budget; with a rule, per direction the stricter
// rate applies and the rule keeps its traffic type where the quota does
// not count; without a budgeting blocker no budget is applied and the
// budget row says why.
func TestQuotaBudgetAndAction(t *testing.T) {
	b := newBench(t, firefoxProcs)
	bg := QuotaBudget{On: true, Bytes: 5000, Down: true, Gen: 7}
	b.e.SetQuotaLimits([]QuotaLimit{{UID: 1000, Exe: firefox, Budget: bg}})
	got, ok := b.block.Budget(appA)
	if want := (backends.Budget{On: true, Bytes: 5000, Down: true, Gen: 7}); !ok || got != want {
		t.Fatalf("budget %+v %v, want %+v", got, ok, want)
	}
	if tg, _ := b.block.Target(appA); len(tg.PIDs) != 2 {
		t.Errorf("budget target's processes %v, want firefox's two", tg.PIDs)
	}
	b.block.Spend(appA, 4000)
	if left, gen, ok := b.e.QuotaBudgetLeft(1000, firefox); !ok || left != 1000 || gen != 7 {
		t.Errorf("QuotaBudgetLeft = %d, %d, %v; want 1000, 7, true", left, gen, ok)
	}
	if err := b.e.SetAppLimit(asUID(1000), firefox, 1000, api.Limit{Up: 1000, Down: 9000, Traffic: api.TrafficInternet}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.block.Budget(appA); !ok {
		t.Fatal("a rule removed the quota's budget")
	}
	b.e.SetQuotaLimits([]QuotaLimit{{UID: 1000, Exe: firefox, Limit: api.Limit{Down: 500, Traffic: api.TrafficAll}}})
	if _, ok := b.block.Budget(appA); ok {
		t.Error("the quota's action left its budget in place")
	}
	l, _ := b.mgr.Limits(appA)
	if l.Down != (backends.Limit{Rate: 500, Traffic: backends.TrafficAll}) || l.Up != (backends.Limit{Rate: 1000, Traffic: backends.TrafficInternet}) {
		t.Errorf("rule and quota: down %+v up %+v; want the quota's 500 for all, the rule's 1000 internet", l.Down, l.Up)
	}
	b.e.SetQuotaLimits(nil)
	if l, _ := b.mgr.Limits(appA); l.Down != (backends.Limit{Rate: 9000, Traffic: backends.TrafficInternet}) {
		t.Errorf("after the quota: down %+v, want the rule's", l.Down)
	}

	nb := newBench(t, firefoxProcs, withoutBlocker())
	nb.e.SetQuotaLimits([]QuotaLimit{{UID: 1000, Exe: firefox, Budget: bg}})
	if ids := nb.mgr.Targets(); len(ids) != 0 {
		t.Errorf("without a blocker a budget made targets %v", ids)
	}
	if bk := nb.e.Backends(); bk[len(bk)-1].Active || bk[len(bk)-1].Reason == "" {
		t.Errorf("budget row without a blocker: %+v", bk[len(bk)-1])
	}
}

// TestQuotaKeepsRuleSchedule: a quota's rate beside a scheduled rule: out
// of the rule's hours the quota's rate alone, in them the stricter one.
func TestQuotaKeepsRuleSchedule(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.Local)} // a Monday
	b := newBench(t, firefoxProcs, withClock(c))
	if err := b.e.SetAppLimit(admin, firefox, 1000, api.Limit{Down: 50, When: "Mon-Fri 09:00-17:00"}); err != nil {
		t.Fatal(err)
	}
	b.e.SetQuotaLimits([]QuotaLimit{{UID: 1000, Exe: firefox, Limit: api.Limit{Down: 500, Traffic: api.TrafficAll}}})
	for _, at := range []struct {
		hour int
		down backends.Rate
	}{{8, 500}, {10, 50}, {18, 500}} {
		c.t = time.Date(2026, 11, 30, at.hour, 0, 0, 0, time.Local)
		b.scan()
		if l, _ := b.mgr.Limits(appA); l.Down.Rate != at.down {
			t.Errorf("%02d:00: download limit %+v, want %d", at.hour, l.Down, at.down)
		}
	}
}

// TestQuotaBudgetsBounded: users' quotas add targets only within the room
// users' limits have in the kernel's tables; an administrator's always.
func TestQuotaBudgetsBounded(t *testing.T) {
	b := newBench(t, firefoxProcs)
	n := targetCapacity - adminReserve + 2
	ls := make([]QuotaLimit, 0, n+1)
	for i := 0; i < n; i++ {
		ls = append(ls, QuotaLimit{UID: 1000, Exe: fmt.Sprintf("/opt/app%04d", i), Budget: QuotaBudget{On: true, Bytes: 1, Down: true}})
	}
	ls = append(ls, QuotaLimit{UID: 1000, Exe: "/opt/zz-admin", Admin: true, Budget: QuotaBudget{On: true, Bytes: 1, Down: true}})
	b.e.SetQuotaLimits(ls)
	b.e.limMu.Lock()
	without := 0
	for k, q := range b.e.lim.quotas {
		if !q.Budget.On {
			without++
			if q.Admin {
				t.Errorf("an administrator's quota on %s lost its budget", k.exe)
			}
		}
	}
	b.e.limMu.Unlock()
	if without != 2 {
		t.Errorf("%d users' quotas without a budget, want 2 (beyond %d)", without, targetCapacity-adminReserve)
	}
}
