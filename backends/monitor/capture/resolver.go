//go:build !no_capture

package capture

import (
	"time"
)

// lookupFunc finds the process owning a flow's local socket; quick asks it
// to skip slow searches (a full /proc scan).
type lookupFunc func(k flowKey, quick bool) resolution

type retryItem struct {
	f  *flow
	at time.Time
}

// runResolver resolves queued flows with lookup until stop is closed.
// Lookups that ask for a retry are tried again after their delay, until the
// flow has been pending for its patience. Several may run at once, so one
// slow lookup (a full /proc scan) does not hold up the others; the one with
// sweep set also re-offers flows that found the queue full.
func (t *table) runResolver(stop <-chan struct{}, lookup lookupFunc, sweep bool) {
	var retries []retryItem
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var sweepC <-chan time.Time
	if sweep {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		sweepC = tk.C
	}
	handle := func(f *flow) {
		first, ok := t.stillPending(f)
		if !ok {
			return
		}
		res := lookup(f.key, false)
		now := time.Now()
		patience := res.patience
		if patience == 0 {
			patience = giveUpAfter
		}
		if res.info.PID == 0 && res.retry > 0 && now.Sub(first) < patience {
			retries = append(retries, retryItem{f, now.Add(res.retry)})
			return
		}
		t.resolved(f, res, now)
	}
	for {
		select {
		case <-stop:
			return
		case f := <-t.queue:
			handle(f)
		case <-timer.C:
			now := time.Now()
			due := retries[:0:0]
			keep := retries[:0]
			for _, r := range retries {
				if !r.at.After(now) {
					due = append(due, r)
				} else {
					keep = append(keep, r)
				}
			}
			retries = keep
			for _, r := range due {
				handle(r.f)
			}
		case <-sweepC:
			t.requeue()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if len(retries) > 0 {
			next := retries[0].at
			for _, r := range retries[1:] {
				if r.at.Before(next) {
					next = r.at
				}
			}
			timer.Reset(max(time.Until(next), 0))
		} else {
			timer.Reset(time.Hour)
		}
	}
}
