//go:build linux

package main

import (
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// TestNotifyAppClick: a quota notification carries the app's icon and a
// default action over a real session bus to a minimal notification
// server; the server's ActionInvoked for it runs the click function (the
// window shows the app's row), for that notification only.
func TestNotifyAppClick(t *testing.T) {
	bus := bustest.StartSessionBus(t)
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv := startNotificationServer(t, bus.Address, "body", "actions")
	n := &notifier{conn: conn}
	clicked := make(chan string, 2)
	if err := n.NotifyApp("Steam reached its quota: throttled to 500 KB/s", "2 of 2 GB today", "steam", func() { clicked <- "steam" }); err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != 1 || got[0].icon != "steam" || got[0].summary != "Steam reached its quota: throttled to 500 KB/s" {
		t.Fatalf("server received %+v", got)
	}
	emitter, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer emitter.Close()
	emitter.Emit(notifyPath, notifyName+".ActionInvoked", uint32(99), "default") // another notification's
	emitter.Emit(notifyPath, notifyName+".ActionInvoked", uint32(1), "default")
	select {
	case who := <-clicked:
		if who != "steam" {
			t.Errorf("clicked %q", who)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the click on the notification did not arrive")
	}
	select {
	case who := <-clicked:
		t.Errorf("a second click ran: %q", who)
	case <-time.After(200 * time.Millisecond):
	}
}
