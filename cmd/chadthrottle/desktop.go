package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// The window's session-bus citizenship: one instance per session (it owns
// the bus name AppID and answers org.freedesktop.Application, as GLib
// applications do, so a second launch asks the first to show its window),
// and desktop notifications (org.freedesktop.Notifications).

// sessionBus connects to the session bus, giving up after d: a bus that
// accepts the connection but never answers must not keep the window from
// starting.
func sessionBus(d time.Duration) (*dbus.Conn, error) {
	type result struct {
		conn *dbus.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := dbus.SessionBus()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.conn, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("the session bus did not answer within %v", d)
	}
}

// appPath is the object of org.freedesktop.Application: the app id with
// dots as slashes.
const appPath = dbus.ObjectPath("/io/github/chadthrottle")

const appIface = "org.freedesktop.Application"

// application answers org.freedesktop.Application for the first instance.
type application struct{ activate chan struct{} }

// Activate shows the window (a second launch, a desktop's launcher).
func (a *application) Activate(platformData map[string]dbus.Variant) *dbus.Error {
	select {
	case a.activate <- struct{}{}:
	default: // one is pending already
	}
	return nil
}

// Open is Activate: ChadThrottle opens no files.
func (a *application) Open(uris []string, platformData map[string]dbus.Variant) *dbus.Error {
	return a.Activate(platformData)
}

// ActivateAction: the app has no actions.
func (a *application) ActivateAction(name string, params []dbus.Variant, platformData map[string]dbus.Variant) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.NotSupported", []any{"no action " + name})
}

// errRunning: another instance owns the name; it was asked to show its
// window unless this launch was --hidden.
var errRunning = errors.New("ChadThrottle already runs in this session")

// claimInstance makes this process the session's ChadThrottle: it owns
// name on conn and answers Activate, which sends on the returned channel.
// When another process owns the name, claimInstance asks it to show its
// window (unless hidden: a login autostart while ChadThrottle runs already
// changes nothing) and returns errRunning.
func claimInstance(conn *dbus.Conn, name string, hidden bool) (<-chan struct{}, error) {
	app := &application{activate: make(chan struct{}, 1)}
	// export before owning the name: a launch that sees the name finds the
	// object
	if err := conn.Export(app, appPath, appIface); err != nil {
		return nil, fmt.Errorf("export %s: %w", appIface, err)
	}
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil {
		conn.Export(nil, appPath, appIface)
		return nil, fmt.Errorf("own %s on the session bus: %w", name, err)
	}
	if reply == dbus.RequestNameReplyPrimaryOwner || reply == dbus.RequestNameReplyAlreadyOwner {
		return app.activate, nil
	}
	conn.Export(nil, appPath, appIface)
	if hidden {
		return nil, errRunning
	}
	platform := map[string]dbus.Variant{}
	for _, kv := range [][2]string{{"desktop-startup-id", os.Getenv("DESKTOP_STARTUP_ID")}, {"activation-token", os.Getenv("XDG_ACTIVATION_TOKEN")}} {
		if kv[1] != "" {
			platform[kv[0]] = dbus.MakeVariant(kv[1])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Object(name, appPath).CallWithContext(ctx, appIface+".Activate", 0, platform).Err; err != nil {
		return nil, fmt.Errorf("ChadThrottle already runs in this session but did not answer: %w", err)
	}
	return nil, errRunning
}

// notifier sends desktop notifications over org.freedesktop.Notifications.
// A new notification replaces the previous one rather than piling up.
type notifier struct {
	conn   *dbus.Conn
	mu     sync.Mutex
	last   uint32 // id of the previous notification
	clicks clicks // notifyapp.go
}

const (
	notifyName = "org.freedesktop.Notifications"
	notifyPath = dbus.ObjectPath("/org/freedesktop/Notifications")
)

// Notify implements gui.Notifier.
func (n *notifier) Notify(summary, body string) error {
	_, err := n.send(summary, body, AppID, nil)
	return err
}

// send shows a notification with icon (a name or path) and actions
// (key, label pairs), replacing the previous one, and returns its id.
func (n *notifier) send(summary, body, icon string, actions []string) (uint32, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obj := n.conn.Object(notifyName, notifyPath)
	var caps []string
	if err := obj.CallWithContext(ctx, notifyName+".GetCapabilities", 0).Store(&caps); err != nil {
		return 0, fmt.Errorf("desktop notifications: %w", err)
	}
	for _, c := range caps {
		if c == "body-markup" { // the body is markup there: error texts may hold < and &
			body = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(body)
		}
	}
	hints := map[string]dbus.Variant{
		"desktop-entry": dbus.MakeVariant(AppID),
		"urgency":       dbus.MakeVariant(byte(1)), // normal
	}
	if actions == nil {
		actions = []string{}
	}
	var id uint32
	err := obj.CallWithContext(ctx, notifyName+".Notify", 0,
		"ChadThrottle", n.last, icon, summary, body, actions, hints, int32(-1)).Store(&id)
	if err != nil {
		return 0, fmt.Errorf("desktop notifications: %w", err)
	}
	n.last = id
	return id, nil
}
