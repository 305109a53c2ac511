package main

import (
	"fmt"
	"os"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
)

// trayMenuPath is where fyne.io/systray exports the tray's dbusmenu.
const trayMenuPath = "/StatusNotifierMenu"

// trayOpened merges every sign that the tray menu is about to show:
// systray's own (a host's dbusmenu Event "opened") and the AboutToShow /
// AboutToShowGroup calls hosts such as xfce4-panel's status tray make
// instead, which systray answers without telling the app. Those are seen
// on a second session-bus connection that becomes a monitor of calls to
// this process's menu (allowed for the session bus's own user). Without a
// monitor, only systray's signal is used.
func trayOpened() <-chan struct{} {
	out := make(chan struct{}, 1)
	send := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		for range systray.TrayOpenedCh {
			send()
		}
	}()
	if err := monitorMenuCalls(send); err != nil {
		fmt.Fprintf(os.Stderr, "chadthrottle: tray menu opens are seen only through the dbusmenu opened event: %v\n", err)
	}
	return out
}

// monitorMenuCalls calls opened for every AboutToShow or AboutToShowGroup
// call a tray host makes on this process's menu.
func monitorMenuCalls(opened func()) error {
	own, err := dbus.SessionBus()
	if err != nil {
		return err
	}
	names := own.Names()
	if len(names) == 0 {
		return fmt.Errorf("no unique name on the session bus")
	}
	mon, err := dbus.SessionBusPrivate()
	if err != nil {
		return err
	}
	if err := mon.Auth(nil); err != nil {
		mon.Close()
		return err
	}
	if err := mon.Hello(); err != nil {
		mon.Close()
		return err
	}
	var rules []string
	for _, m := range []string{"AboutToShow", "AboutToShowGroup"} {
		rules = append(rules, fmt.Sprintf("type='method_call',destination='%s',path='%s',interface='com.canonical.dbusmenu',member='%s'",
			names[0], trayMenuPath, m))
	}
	if call := mon.BusObject().Call("org.freedesktop.DBus.Monitoring.BecomeMonitor", 0, rules, uint32(0)); call.Err != nil {
		mon.Close()
		return fmt.Errorf("become a monitor of the tray menu's calls: %w", call.Err)
	}
	ch := make(chan *dbus.Message, 16)
	mon.Eavesdrop(ch)
	go func() {
		for m := range ch {
			if m.Type == dbus.TypeMethodCall {
				opened()
			}
		}
	}()
	return nil
}
