package main

import (
	"sync"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/gui"
)

// Notifications about an app (quota events) show the app's icon and open
// its row when clicked: the "default" action, reported by the server's
// ActionInvoked signal.

var _ gui.AppNotifier = (*notifier)(nil)

// clicks maps notification ids to what a click on them does.
type clicks struct {
	once sync.Once
	mu   sync.Mutex
	fns  map[uint32]func()
}

// NotifyApp implements gui.AppNotifier.
func (n *notifier) NotifyApp(summary, body, icon string, onClick func()) error {
	if icon == "" {
		icon = AppID
	}
	n.clicks.once.Do(func() { n.watchClicks() })
	id, err := n.send(summary, body, icon, []string{"default", "Show"})
	if err != nil {
		return err
	}
	n.clicks.mu.Lock()
	if n.clicks.fns == nil || len(n.clicks.fns) > 64 {
		n.clicks.fns = map[uint32]func(){}
	}
	n.clicks.fns[id] = onClick
	n.clicks.mu.Unlock()
	return nil
}

// watchClicks runs the click functions of ActionInvoked signals.
func (n *notifier) watchClicks() {
	if err := n.conn.AddMatchSignal(dbus.WithMatchInterface(notifyName), dbus.WithMatchMember("ActionInvoked"),
		dbus.WithMatchObjectPath(notifyPath)); err != nil {
		return
	}
	ch := make(chan *dbus.Signal, 16)
	n.conn.Signal(ch)
	go func() {
		for sig := range ch {
			if sig.Name != notifyName+".ActionInvoked" || len(sig.Body) != 2 {
				continue
			}
			id, _ := sig.Body[0].(uint32)
			n.clicks.mu.Lock()
			fn := n.clicks.fns[id]
			n.clicks.mu.Unlock()
			if fn != nil {
				fn()
			}
		}
	}()
}
