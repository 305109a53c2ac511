package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/daemon/engine"
	"github.com/chadthrottle/chadthrottle/helper/daemon/history"
	"github.com/chadthrottle/chadthrottle/helper/daemon/quota"
	"github.com/chadthrottle/chadthrottle/helper/daemon/server"
)

// historyService is the traffic history and the data quotas of one helper
// run. A database that cannot be opened at all leaves the helper serving
// without them (the methods answer Unavailable); a nil *historyService is
// valid and does nothing.
type historyService struct {
	store  *history.Store
	quotas *quota.Manager
	log    *slog.Logger
}

// usageFeed passes the engine's per-app usage to the quotas once they
// exist (the engine is built first: the quotas act through it).
type usageFeed struct{ m atomic.Pointer[quota.Manager] }

func (f *usageFeed) add(t time.Time, us []engine.AppUsage) {
	if m := f.m.Load(); m != nil {
		m.Add(t, us)
	}
}

// quotaTick is how often quota periods are checked for a rollover when no
// traffic is reported.
const quotaTick = 5 * time.Second

// budgetPoll is how often the kernel's quota budgets are read: a used-up
// budget's action (a throttle) follows within it.
const budgetPoll = 250 * time.Millisecond

func openHistory(cfg config, log *slog.Logger, eng *engine.Engine, feed *usageFeed) *historyService {
	logf := func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }
	st, err := history.Open(history.Config{Dir: cfg.stateDir, Logf: logf})
	if err != nil {
		log.Error("no traffic history or quotas in this run", "err", err)
		return nil
	}
	m, err := quota.New(quota.Config{Store: st, Engine: eng, Logf: logf})
	if err != nil {
		log.Error("no traffic history or quotas in this run", "err", err)
		st.Close()
		return nil
	}
	feed.m.Store(m)
	log.Info("traffic history", "file", st.Path(), "quotas", m.Count())
	return &historyService{store: st, quotas: m, log: log}
}

// server returns what the D-Bus server serves history and quotas from.
func (h *historyService) server() server.History {
	if h == nil {
		return nil
	}
	return h.quotas
}

// run flushes the history every history.FlushInterval and rolls quota
// periods over until ctx is done.
func (h *historyService) run(ctx context.Context) {
	if h == nil {
		return
	}
	go h.store.Run(ctx)
	t := time.NewTicker(quotaTick)
	defer t.Stop()
	poll := time.NewTicker(budgetPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.quotas.Tick()
		case <-poll.C:
			h.quotas.PollBudgets()
		}
	}
}

// idle reports that no quota needs the helper running.
func (h *historyService) idle() bool { return h == nil || h.quotas.Count() == 0 }

func (h *historyService) onChange(fn func()) {
	if h != nil {
		h.quotas.OnChange(fn)
	}
}

// close writes the pending samples (on SIGTERM too) and closes the file.
func (h *historyService) close() {
	if h == nil {
		return
	}
	if err := h.store.Close(); err != nil {
		h.log.Error("write traffic history", "err", err)
	} else {
		h.log.Info("traffic history written", "file", h.store.Path())
	}
}
