package gui

import (
	"context"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The Fake's global limit and priorities: a priority is kept in the app's
// limit, like the helper's rule.

// GlobalLimit implements Backend.
func (f *Fake) GlobalLimit(ctx context.Context) (api.GlobalLimit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.global, f.readErr
}

// SetGlobalLimit implements Backend.
func (f *Fake) SetGlobalLimit(ctx context.Context, g api.GlobalLimit) error {
	return f.record(FakeCall{Method: "SetGlobalLimit", Limit: api.Limit{Down: g.Down, Up: g.Up}}, func() { f.global = g })
}

// RemoveGlobalLimit implements Backend.
func (f *Fake) RemoveGlobalLimit(ctx context.Context) error {
	return f.record(FakeCall{Method: "RemoveGlobalLimit"}, func() { f.global = api.GlobalLimit{} })
}

// SetAppPriority implements Backend.
func (f *Fake) SetAppPriority(ctx context.Context, exe string, uid uint32, priority string) error {
	return f.record(FakeCall{Method: "SetAppPriority", Exe: exe, UID: uid, Limit: api.Limit{Priority: priority}}, func() {
		for i := range f.snap.Apps {
			if a := &f.snap.Apps[i]; a.Exe == exe && a.UID == uid {
				a.Limit.Priority = priority
				if priority == api.PriorityNormal {
					a.Limit.Priority = ""
				}
				a.Rule = a.Limit.Limited()
			}
		}
	})
}
