package api

import "context"

// Blocking and schedules (issue #16): an app or process may be refused the
// network (all of it, internet or local only), and a rule's rates and block
// may each carry a schedule (ParseSchedule). A block on an app is part of
// its rule (Limit.Block); on a process it lasts as long as the process.
const (
	MethodSetAppBlock        = "SetAppBlock"        // (exe s, uid u, traffic s, when s) → ()
	MethodRemoveAppBlock     = "RemoveAppBlock"     // (exe s, uid u) → ()
	MethodSetProcessBlock    = "SetProcessBlock"    // (pid u, traffic s) → ()
	MethodRemoveProcessBlock = "RemoveProcessBlock" // (pid u) → ()
	// MethodSetAppLimitWhen is SetAppLimit with a schedule for the rates.
	MethodSetAppLimitWhen = "SetAppLimitWhen" // (exe s, uid u, down t, up t, traffic s, when s) → ()
	// MethodSetProcessLimitWhen and MethodSetProcessBlockWhen are
	// SetProcessLimit and SetProcessBlock with a schedule.
	MethodSetProcessLimitWhen = "SetProcessLimitWhen" // (pid u, down t, up t, traffic s, when s) → ()
	MethodSetProcessBlockWhen = "SetProcessBlockWhen" // (pid u, traffic s, when s) → ()
)

func init() {
	Methods = append(Methods,
		Method{MethodSetAppBlock, ActionLimitOwn, true},
		Method{MethodRemoveAppBlock, ActionLimitOwn, true},
		Method{MethodSetProcessBlock, ActionLimitOwn, true},
		Method{MethodRemoveProcessBlock, ActionLimitOwn, true},
		Method{MethodSetAppLimitWhen, ActionLimitOwn, true},
		Method{MethodSetProcessLimitWhen, ActionLimitOwn, true},
		Method{MethodSetProcessBlockWhen, ActionLimitOwn, true},
	)
}

// Limited reports whether l limits or blocks anything.
func (l Limit) Limited() bool { return l.Down > 0 || l.Up > 0 || l.Block != "" || l.Priority != "" }

// validateBlock checks the block part and the schedules of l and spells
// the block's traffic type out.
func validateBlock(l Limit) (Limit, error) {
	if l.Block != "" {
		bt, err := NormalTraffic(l.Block)
		if err != nil {
			return l, Errorf(ErrInvalid, "block: %v", err)
		}
		l.Block = bt
	}
	for _, w := range []string{l.When, l.BlockWhen} {
		if _, err := ParseSchedule(w); err != nil {
			return l, Errorf(ErrInvalid, "%v", err)
		}
	}
	return validatePriority(l) // global.go
}

// AppBlocker is the client side of blocking apps (helper/client implements
// it): the window's Block toggle and the CLI's block and unblock use it.
type AppBlocker interface {
	// SetAppBlock blocks an executable run by uid from all, internet or
	// local traffic (traffic), at the times when says ("" = always).
	SetAppBlock(ctx context.Context, exe string, uid uint32, traffic, when string) error
	// RemoveAppBlock lifts it; the app's limit stays.
	RemoveAppBlock(ctx context.Context, exe string, uid uint32) error
}
